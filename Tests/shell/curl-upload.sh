#!/usr/bin/env bash
# Shell test: a real `mediagw serve` driven with curl -F and the Python sample client.
# Run by Deploy/local/run-tests with the stack's environment.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin=${MEDIAGW_BIN:-.build/debug/mediagw}
corpus=Tests/Fixtures/corpus
port=$((20000 + RANDOM % 10000))
export MEDIAGW_URL=http://127.0.0.1:$port
log=$(mktemp)
fail() { echo "curl-upload: FAIL: $*" >&2; echo "--- gateway log:" >&2; tail -20 "$log" >&2; exit 1; }

MEDIAGW_PORT=$port "$bin" serve >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do curl -sf "$MEDIAGW_URL/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$MEDIAGW_URL/readyz" >/dev/null || fail "gateway not ready"

# the sample: create a set, upload five photos with curl -F, commit
out=$(Samples/upload-photos.sh) || fail "sample script: $out"
grep -q "upload: HTTP 201" <<<"$out" || fail "upload not 201: $out"
grep -q "commit: committed, 5 media" <<<"$out" || fail "commit: $out"

token=${MEDIAGW_SERVICE_TOKENS%%,*}
set_json=$(curl -sS -X POST "$MEDIAGW_URL/internal/v1/upload-sets" -H "Authorization: Bearer $token" \
    -d '{"owner_id": "shell", "context": "post", "context_id": "shell-1"}')
set_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$set_json")
upload=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["upload_token"])' <<<"$set_json")
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# the declared type never decides: an SVG sent as image/jpeg is still refused, a PNG named .jpg is a PNG
[ "$(code -X POST "$MEDIAGW_URL/v1/upload-sets/$set_id/media" -H "Authorization: Bearer $upload" \
    -F "file=@$corpus/images/svg-inkscape.svg;type=image/jpeg;filename=photo.jpg")" = 415 ] || fail "svg not 415"
mime=$(curl -s -X POST "$MEDIAGW_URL/v1/upload-sets/$set_id/media" -H "Authorization: Bearer $upload" \
    -F "file=@$corpus/bad-images/wrong-ext-png-named.jpg;type=image/jpeg" | python3 -c 'import json,sys; print(json.load(sys.stdin)["media"][0]["mime"])')
[ "$mime" = image/png ] || fail "sniffed $mime"
# too large for a photo
head -c 2000000 /dev/urandom | { printf '\xff\xd8\xff\xe0'; cat; } >"$log.big"
[ "$(code -X POST "$MEDIAGW_URL/v1/upload-sets/$set_id/media" -H "Authorization: Bearer $upload" -F "file=@$log.big;filename=big.jpg")" = 413 ] \
    || fail "oversize not 413"
rm -f "$log.big"
# no token, wrong token
[ "$(code -X POST "$MEDIAGW_URL/v1/upload-sets/$set_id/media" -F "file=@$corpus/images/webp-lossy.webp")" = 401 ] || fail "no token"
[ "$(code "$MEDIAGW_URL/internal/v1/upload-sets/$set_id" -H 'Authorization: Bearer nope')" = 401 ] || fail "bad service token"

# the Python sample client
py=$(python3 Samples/client.py --url "$MEDIAGW_URL" "$corpus/images/orientation-2.jpg" "$corpus/images/gif-animated.gif") \
    || fail "python client: $py"
grep -q "2 photos stored" <<<"$py" || fail "python client: $py"

# the tus sample (tuspy, from the stack's virtual environment): a photo in 64 KiB chunks
tus=$("$MEDIAGW_STACK_DIR/venv/bin/python" Samples/tus_upload.py --url "$MEDIAGW_URL" --chunk 65536 "$corpus/images/orientation-6.jpg" 2>&1) \
    || fail "tus sample: $tus"
grep -q "stored .*image/jpeg, 251800 bytes" <<<"$tus" || fail "tus sample: $tus"

kill -TERM $server
wait $server || fail "gateway exit status $?"
echo "curl-upload: ok"
