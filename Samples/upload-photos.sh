#!/usr/bin/env bash
# Creates a post upload set, uploads photos into it with curl -F, and commits it.
#
#   Samples/upload-photos.sh [photo ...]      (default: five valid photos of the test corpus)
#
# Reads MEDIAGW_URL (default http://127.0.0.1:8080) and MEDIAGW_SERVICE_TOKENS (the first token is used);
# `eval "$(Deploy/local/stack env)"` sets the latter for the local stack. Needs curl and python3 (for JSON).
set -euo pipefail
url=${MEDIAGW_URL:-http://127.0.0.1:8080}
token=${MEDIAGW_SERVICE_TOKENS%%,*}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

photos=("$@")
if [ ${#photos[@]} -eq 0 ]; then
    photos=("$here"/../Tests/Fixtures/corpus/images/orientation-{1,3,6}.jpg "$here"/../Tests/Fixtures/corpus/images/webp-lossy.webp "$here"/../Tests/Fixtures/corpus/images/png-palette-trns.png)
fi

# 1. the posts service opens an upload set for its user's draft (internal API, service token)
set_json=$(curl -sS --fail-with-body -X POST "$url/internal/v1/upload-sets" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"owner_id\": \"user-42\", \"context\": \"post\", \"context_id\": \"draft-$RANDOM\"}")
set_id=$(json "['id']" <<<"$set_json")
upload_token=$(json "['upload_token']" <<<"$set_json")
echo "upload set $set_id"

# 2. the user's client uploads with the upload token only, one multipart request
form=()
for photo in "${photos[@]}"; do form+=(-F "file=@$photo"); done
status=$(curl -sS -o /tmp/mediagw-upload.$$ -w '%{http_code}' -X POST "$url/v1/upload-sets/$set_id/media" \
    -H "Authorization: Bearer $upload_token" "${form[@]}")
echo "upload: HTTP $status"
python3 -c "import json,sys
for r in json.load(open(sys.argv[1]))['media']:
    print('  part %d %s: %s' % (r['part'], r.get('filename'), r.get('id') and '%s %s %d bytes sha256 %s' % (r['kind'], r['mime'], r['size'], r['sha256'][:12]) or r['error']['code']))" /tmp/mediagw-upload.$$
rm -f /tmp/mediagw-upload.$$
[ "$status" = 201 ] || exit 1

# 3. the post is published: the set is committed (idempotent)
committed=$(curl -sS --fail-with-body -X POST "$url/internal/v1/upload-sets/$set_id/commit" -H "Authorization: Bearer $token")
echo "commit: $(json "['state']" <<<"$committed"), $(json "['media'].__len__()" <<<"$committed") media"
