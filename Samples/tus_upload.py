#!/usr/bin/env python3
"""Resumable upload of one file with tuspy (a tus 1.0 client from PyPI: `pip install tuspy`), the way a
phone client on a flaky network would: 1 MiB chunks, each one acknowledged; after a failure the upload goes
on from the offset the gateway reports (any gateway: the state is shared), never from zero.

    python3 Samples/tus_upload.py [--url http://127.0.0.1:8080] [--token SERVICE_TOKEN] FILE

It opens a post set through the internal API (as the posts service would), uploads FILE into it with the
set's upload token, commits the set and prints the media item. The service token defaults to the first of
MEDIAGW_SERVICE_TOKENS (`eval "$(Deploy/local/stack env)"`).
"""
import argparse
import os
import sys
import time

import requests
from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError, TusUploadFailed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=os.environ.get("MEDIAGW_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--token", default=os.environ.get("MEDIAGW_SERVICE_TOKENS", "").split(",")[0])
    parser.add_argument("--chunk", type=int, default=1 << 20, help="bytes per PATCH")
    parser.add_argument("file")
    args = parser.parse_args()
    base = args.url.rstrip("/")
    service = {"Authorization": "Bearer " + args.token}

    # the posts service opens a set for the draft and hands its upload token to the user's client
    opened = requests.post(base + "/internal/v1/upload-sets", headers=service,
                           json={"owner_id": "tus-sample", "context": "post", "context_id": "post-%d" % time.time()})
    opened.raise_for_status()
    upload_set = opened.json()

    # the client: create the upload, then send it chunk by chunk, resuming from the server's offset on failure
    client = tus.TusClient(base + "/v1/upload-sets/%s/tus" % upload_set["id"],
                           headers={"Authorization": "Bearer " + upload_set["upload_token"]})
    uploader = client.uploader(args.file, chunk_size=args.chunk, upload_checksum=True,
                               metadata={"filename": os.path.basename(args.file)}, retries=5, retry_delay=2)
    size = os.path.getsize(args.file)
    while uploader.offset < size:
        try:
            uploader.upload_chunk()
        except (TusCommunicationError, TusUploadFailed, requests.ConnectionError) as error:
            print("interrupted (%s); resuming from the server's offset" % error, file=sys.stderr)
            time.sleep(2)
            uploader.offset = uploader.get_offset()
        print("%d / %d bytes" % (uploader.offset, size), file=sys.stderr)
    done = requests.head(uploader.url, headers={**client.headers, "Tus-Resumable": "1.0.0"})
    media_id = done.headers["Media-Id"]

    committed = requests.post(base + "/internal/v1/upload-sets/%s/commit" % upload_set["id"], headers=service)
    committed.raise_for_status()
    media = requests.get(base + "/internal/v1/media/" + media_id, headers=service).json()
    print("stored %s: %s, %d bytes, sha256 %s, %s" % (media["id"], media["mime"], media["size"], media["sha256"], media["state"]))


if __name__ == "__main__":
    main()
