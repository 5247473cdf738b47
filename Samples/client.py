#!/usr/bin/env python3
"""A small client of the mediagw API with `requests`: create an upload set, upload the corpus' photos,
commit, then read the set back and follow the event outbox.

    python3 Samples/client.py [--url http://127.0.0.1:8080] [--token SERVICE_TOKEN] [photo ...]

The service token defaults to the first of MEDIAGW_SERVICE_TOKENS (`eval "$(Deploy/local/stack env)"`).
"""
import argparse
import glob
import os
import sys

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "Tests", "Fixtures", "corpus", "images")


class MediaGateway:
    def __init__(self, url, service_token):
        self.url = url.rstrip("/")
        self.internal = requests.Session()
        self.internal.headers["Authorization"] = f"Bearer {service_token}"

    def _check(self, response, *expected):
        if response.status_code not in expected:
            error = response.json().get("error", {}) if response.headers.get("content-type", "").startswith("application/json") else {}
            raise RuntimeError(f"HTTP {response.status_code} {error.get('code')}: {error.get('message')}")
        return response.json() if response.content else None

    def open_set(self, owner_id, context, context_id):
        return self._check(self.internal.post(f"{self.url}/internal/v1/upload-sets",
                                              json={"owner_id": owner_id, "context": context, "context_id": context_id}), 201)

    def upload(self, upload_set, paths):
        """Uploads files in one multipart request, with the set's upload token (what a user's client holds)."""
        files = [("file", (os.path.basename(p), open(p, "rb"))) for p in paths]
        try:
            response = requests.post(f"{self.url}{upload_set['upload_url']}", files=files,
                                     headers={"Authorization": f"Bearer {upload_set['upload_token']}"})
        finally:
            for _, (_, handle) in files:
                handle.close()
        return response.status_code, response.json()

    def commit(self, set_id):
        return self._check(self.internal.post(f"{self.url}/internal/v1/upload-sets/{set_id}/commit"), 200)

    def get_set(self, set_id):
        return self._check(self.internal.get(f"{self.url}/internal/v1/upload-sets/{set_id}"), 200)

    def events(self, after=0, limit=100):
        return self._check(self.internal.get(f"{self.url}/internal/v1/events", params={"after": after, "limit": limit}), 200)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("MEDIAGW_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--token", default=os.environ.get("MEDIAGW_SERVICE_TOKENS", "").split(",")[0])
    parser.add_argument("photos", nargs="*")
    args = parser.parse_args()
    if not args.token:
        sys.exit("no service token: pass --token or set MEDIAGW_SERVICE_TOKENS")
    photos = args.photos or sorted(p for p in glob.glob(os.path.join(CORPUS, "*"))
                                   if p.endswith((".jpg", ".png", ".webp", ".gif", ".heic", ".avif")))

    gateway = MediaGateway(args.url, args.token)
    stored = []
    # a post takes at most 5 photos: one set per five
    for start in range(0, len(photos), 5):
        batch = photos[start:start + 5]
        upload_set = gateway.open_set("user-42", "post", f"sample-{os.getpid()}-{start}")
        status, result = gateway.upload(upload_set, batch)
        for part in result["media"]:
            if "error" in part:
                print(f"  refused {part.get('filename')}: {part['error']['code']} ({part['error']['message']})")
            else:
                print(f"  stored  {part['filename']}: {part['kind']} {part['mime']} {part['size']} bytes")
                stored.append(part["id"])
        committed = gateway.commit(upload_set["id"])
        print(f"set {upload_set['id']}: HTTP {status}, {committed['state']} with {len(committed['media'])} media")

    # what the other services see: media.stored / upload_set.committed events, read with a cursor
    seen = {event["media_id"] for event in gateway.events(limit=1000)["events"] if event["type"] == "media.stored"}
    print(f"{len(stored)} photos stored; {len(seen & set(stored))} of them already visible in the first 1000 events")
    return 0 if stored else 1


if __name__ == "__main__":
    sys.exit(main())
