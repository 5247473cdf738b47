#!/usr/bin/env python3
"""A real browser uploads through CORS: headless Chromium (Debian's chromium and chromium-driver) driven by
Selenium (PyPI) opens Samples/browser/index.html served from another origin than the gateway's, uploads a
photo with fetch and FormData, then with XMLHttpRequest (upload progress), and waits for the page to show
the negotiated w320 rendition; the same page from an origin the gateway does not allow must fail. Driven by
BrowserTests, which checks the stored media. Prints one JSON line.
"""
import argparse
import functools
import http.server
import json
import os
import tempfile
import threading
import time
from urllib.parse import urlencode

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

PAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Samples", "browser")


def serve(port):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=PAGES)
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def browser(profile):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1000,1000",
                     "--user-data-dir=" + profile, "--no-first-run", "--disable-background-networking"]:
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def run(driver, page, args, button, timeout=180):
    fragment = urlencode({"gateway": args.gateway, "set": args.set, "token": args.token})
    driver.get(page + "/index.html#" + fragment)
    driver.find_element(By.ID, "file").send_keys(os.path.abspath(args.file))
    driver.find_element(By.ID, button).click()
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = driver.find_element(By.ID, "status").text
        if status.startswith("ready") or status.startswith("error"):
            break
        time.sleep(0.2)
    width = driver.execute_script("const i = document.getElementById('w320'); return i && i.complete ? i.naturalWidth : 0;")
    events = driver.execute_script("return Number(document.getElementById('progress').dataset.events || 0);")
    return {"status": status, "width": width, "progress_events": events}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--set", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--allowed-port", type=int, required=True)
    parser.add_argument("--other-port", type=int, required=True)
    parser.add_argument("--screenshot", required=True)
    args = parser.parse_args()
    servers = [serve(args.allowed_port), serve(args.other_port)]
    profile = tempfile.mkdtemp(prefix="mediagw-chromium-")
    driver = browser(profile)
    try:
        allowed = "http://127.0.0.1:%d" % args.allowed_port
        result = {"fetch": run(driver, allowed, args, "with-fetch")}
        result["xhr"] = run(driver, allowed, args, "with-xhr")
        driver.save_screenshot(args.screenshot)
        result["refused"] = run(driver, "http://127.0.0.1:%d" % args.other_port, args, "with-fetch", timeout=30)
        print(json.dumps(result))
    finally:
        driver.quit()
        for server in servers:
            server.shutdown()


if __name__ == "__main__":
    main()
