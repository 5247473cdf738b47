#!/usr/bin/env bash
# The API contract test: schemathesis (every check, a fixed seed, bounded examples) against a real
# `mediagw serve` over `/openapi.json`, once without credentials and once with the service and upload
# tokens; destructive operations only touch data this test created. Its own PostgreSQL schema and RADOS
# namespace. Run by Deploy/local/run-tests with the stack's environment; fails on any failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
: "${MEDIAGW_STACK_DIR:?run this through Deploy/local/stack test}"
st=$MEDIAGW_STACK_DIR/venv/bin/st
[ -x "$st" ] || { echo "schemathesis: $st is missing (Deploy/local/stack up installs it)" >&2; exit 1; }
bin=${MEDIAGW_BIN:-.build/debug/mediagw}
slice=t_schemathesis_$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
port=$((20000 + RANDOM % 10000))
url=http://127.0.0.1:$port
log=$(mktemp)
work=$(mktemp -d)
fail() { echo "schemathesis: FAIL: $*" >&2; echo "--- gateway log:" >&2; tail -30 "$log" >&2; exit 1; }

# a community set takes many photos here, so that most uploads of the run are judged on their content
MEDIAGW_DATABASE_SCHEMA=$slice MEDIAGW_CEPH_NAMESPACE=$slice MEDIAGW_PORT=$port MEDIAGW_WORKERS=1 \
    MEDIAGW_LIMIT_COMMUNITY_PHOTO=10000:1MiB "$bin" serve >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$log" "$work"' EXIT
for _ in $(seq 100); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.2; done
curl -sf "$url/readyz" >/dev/null || fail "gateway not ready"

# the data the operations are pinned to
export TOKEN=${MEDIAGW_SERVICE_TOKENS%%,*}
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
open_set() { curl -sf -X POST "$url/internal/v1/upload-sets" -H "Authorization: Bearer $TOKEN" -d "{\"owner_id\": \"schemathesis\", \"context\": \"$1\", \"context_id\": \"c-$RANDOM\"}"; }
upload() { curl -sf -X POST "$url/v1/upload-sets/$1/media" -H "Authorization: Bearer $2" -F "file=@$3" | json '["media"][0]["id"]'; }
draft=$(open_set community)
export SET_DRAFT UPLOAD_TOKEN
SET_DRAFT=$(json '["id"]' <<<"$draft")
UPLOAD_TOKEN=$(json '["upload_token"]' <<<"$draft")
committed=$(open_set post)
export SET_COMMITTED MEDIA_PHOTO MEDIA_DELETABLE
SET_COMMITTED=$(json '["id"]' <<<"$committed")
MEDIA_PHOTO=$(upload "$SET_COMMITTED" "$(json '["upload_token"]' <<<"$committed")" Tests/Fixtures/corpus/images/orientation-1.jpg)
MEDIA_DELETABLE=$(upload "$SET_DRAFT" "$UPLOAD_TOKEN" Tests/Fixtures/corpus/images/webp-lossy.webp)
curl -sf -X POST "$url/internal/v1/upload-sets/$SET_COMMITTED/commit" -H "Authorization: Bearer $TOKEN" >/dev/null
# a resumable upload of each protocol, for the operations on uploads
location() { tr -d '\r' | awk 'tolower($1) == "location:" {print $2}' | sed 's#.*/##'; }
export UPLOAD_TUS UPLOAD_DRAFT
UPLOAD_TUS=$(curl -sf -D - -o /dev/null -X POST "$url/v1/upload-sets/$SET_DRAFT/tus" -H "Authorization: Bearer $UPLOAD_TOKEN" \
    -H "Tus-Resumable: 1.0.0" -H "Upload-Length: 100000" | location)
UPLOAD_DRAFT=$(curl -sf -D - -o /dev/null -X POST "$url/v1/upload-sets/$SET_DRAFT/resumable" -H "Authorization: Bearer $UPLOAD_TOKEN" \
    -H "Upload-Draft-Interop-Version: 6" -H "Upload-Complete: ?0" | location)
[ -n "$UPLOAD_TUS" ] && [ -n "$UPLOAD_DRAFT" ] || fail "could not create the resumable uploads"
for _ in $(seq 300); do
    [ "$(curl -sf "$url/internal/v1/media/$MEDIA_PHOTO" -H "Authorization: Bearer $TOKEN" | json '["state"]')" = ready ] && break
    sleep 0.2
done

common=(--url "$url" --checks all --seed 20261129 --max-examples 30 --workers 1 --no-color)
# the resumable-upload bodies are byte strings of the protocols' own media types
export PYTHONPATH=$PWD/Tests/api SCHEMATHESIS_HOOKS=schemathesis_hooks
echo "schemathesis: without credentials"
"$st" --config-file Tests/api/schemathesis-anonymous.toml run "$url/openapi.json" "${common[@]}" --report junit --report-dir "$work/anonymous" \
    || fail "schemathesis found failures (no credentials)"
echo "schemathesis: with the service and upload tokens, on this test's data"
"$st" --config-file Tests/api/schemathesis.toml run "$url/openapi.json" "${common[@]}" --report junit --report-dir "$work/tokens" \
    || fail "schemathesis found failures (with tokens)"
kill -TERM $server
wait $server || fail "gateway exit status $?"
echo "schemathesis: ok"
