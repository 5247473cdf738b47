#!/usr/bin/env python3
"""A real tus client (tuspy, from PyPI) against real gateways, driven by ResumableClientTests.

Each scenario prints one JSON line with what it saw; the Swift test checks the stored media and objects.

  kill-and-resume  upload in 1 MiB chunks through the first gateway, SIGKILL it in the middle of a
                   chunk once more than 4 MiB have landed, then the same uploader resumes through the
                   second gateway from the offset that gateway reports
  checksum         a chunk whose Upload-Checksum does not match: 460, the offset does not move
  expire           an upload left unfinished past its expiry: HEAD answers 404
  terminate        an unfinished upload terminated: 204, then 404
"""
import argparse
import base64
import hashlib
import json
import os
import signal
import sys
import threading
import time
from urllib.parse import urlparse

import requests
from tusclient import client as tus

CHUNK = 1 << 20


def parse():
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["kill-and-resume", "checksum", "expire", "terminate"])
    parser.add_argument("--gateway", required=True, help="base URL of the (first) gateway")
    parser.add_argument("--second", help="base URL of the second gateway")
    parser.add_argument("--pid", type=int, help="pid of the first gateway, to SIGKILL")
    parser.add_argument("--set", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--wait", type=float, default=0, help="expire: seconds to wait before asking")
    return parser.parse_args()


def headers(args):
    return {"Authorization": "Bearer " + args.token}


def uploader(args, base):
    client = tus.TusClient(base + "/v1/upload-sets/" + args.set + "/tus", headers=headers(args))
    return client.uploader(
        args.file, chunk_size=CHUNK, metadata={"filename": os.path.basename(args.file)}, upload_checksum=True
    )


def head(url, args):
    return requests.head(url, headers={**headers(args), "Tus-Resumable": "1.0.0"}, timeout=30)


def offset(url, args):
    return int(head(url, args).headers["Upload-Offset"])


def kill_and_resume(args):
    up = uploader(args, args.gateway)
    for _ in range(4):
        up.upload_chunk()
    assert up.offset == 4 * CHUNK, up.offset
    path = urlparse(up.url).path
    second_url = args.second + path

    # the fifth chunk goes slowly: its first MiB lands, then the gateway dies mid-request
    with open(args.file, "rb") as f:
        f.seek(up.offset)
        rest = f.read(CHUNK + CHUNK // 2)
    landed = threading.Event()

    def body():
        yield rest[:CHUNK]
        yield rest[CHUNK : CHUNK + 4096]
        landed.wait(60)
        yield rest[CHUNK + 4096 :]

    def send():
        try:
            requests.patch(
                up.url,
                data=body(),
                headers={
                    **headers(args),
                    "Tus-Resumable": "1.0.0",
                    "Upload-Offset": str(up.offset),
                    "Content-Type": "application/offset+octet-stream",
                },
                timeout=60,
            )
        except requests.RequestException:
            pass  # the gateway was killed under it

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.time() + 60
    while offset(second_url, args) < 5 * CHUNK:
        if time.time() > deadline:
            raise SystemExit("the first MiB of the fifth chunk never landed")
        time.sleep(0.05)
    os.kill(args.pid, signal.SIGKILL)
    killed_at = offset(second_url, args)
    landed.set()
    sender.join()

    # the same uploader resumes through the second gateway (the first gateway's claim lapses first)
    up.set_url(second_url)
    up.retries = 30
    up.retry_delay = 1
    up.offset = up.get_offset()
    resumed_at = up.offset
    up.upload()
    final = head(second_url, args)
    print(json.dumps({
        "killed_at": killed_at,
        "resumed_at": resumed_at,
        "offset": int(final.headers["Upload-Offset"]),
        "media_id": final.headers.get("Media-Id"),
    }))


def checksum(args):
    up = uploader(args, args.gateway)
    up.upload_chunk()
    with open(args.file, "rb") as f:
        f.seek(up.offset)
        chunk = f.read(CHUNK)
    wrong = base64.b64encode(hashlib.sha1(chunk[::-1]).digest()).decode()
    refused = requests.patch(
        up.url,
        data=chunk,
        headers={
            **headers(args),
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": str(up.offset),
            "Content-Type": "application/offset+octet-stream",
            "Upload-Checksum": "sha1 " + wrong,
        },
        timeout=30,
    )
    after = offset(up.url, args)
    up.upload()
    final = head(up.url, args)
    print(json.dumps({
        "status": refused.status_code,
        "code": refused.json()["error"]["code"],
        "offset_after_refusal": after,
        "offset": int(final.headers["Upload-Offset"]),
        "media_id": final.headers.get("Media-Id"),
    }))


def expire(args):
    up = uploader(args, args.gateway)
    up.upload_chunk()
    before = head(up.url, args).status_code
    time.sleep(args.wait)
    print(json.dumps({"upload": urlparse(up.url).path, "before": before, "after": head(up.url, args).status_code}))


def terminate(args):
    up = uploader(args, args.gateway)
    up.upload_chunk()
    deleted = requests.delete(up.url, headers={**headers(args), "Tus-Resumable": "1.0.0"}, timeout=30)
    print(json.dumps({"upload": urlparse(up.url).path, "status": deleted.status_code, "after": head(up.url, args).status_code}))


if __name__ == "__main__":
    arguments = parse()
    {"kill-and-resume": kill_and_resume, "checksum": checksum, "expire": expire, "terminate": terminate}[arguments.scenario](arguments)
    sys.stdout.flush()
