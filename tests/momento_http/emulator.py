#!/usr/bin/env python3
"""A Momento HTTP API emulator for kura's tests (backend "momento-http").

Data plane, as Momento's HTTP API documents it:
  GET    /cache/NAME?key_base64=K             200 the value | 404
  PUT    /cache/NAME?key_base64=K&ttl_seconds=S  (body: the value)  204
  DELETE /cache/NAME?key_base64=K             204
  (key=K, the key as text, is accepted instead of key_base64)
Status codes:
  400 bad request: no key, or a PUT without a positive integer ttl_seconds
  401 the Authorization header is missing or not the emulator's key
  403 the key is the read-only key (--readonly-key) and the call writes
  404 with body "Cache not found" when the cache does not exist, and with
      body "Key not found" for a missing item (GET). The two bodies are what
      tells a client a missing cache from a miss (src/core/backends/backend_momento_http.c).
  413 the item is larger than 5 MiB
  429 / 5xx only when injected (below)
Bodies of errors never echo the Authorization header.

Emulator-only control endpoints (not Momento's), for tests:
  POST   /_emulator/caches/NAME   create a cache (201, 409 when it exists)
  DELETE /_emulator/caches/NAME   delete it (204, 404)
  POST   /_emulator/fail?status=S&count=N   the next N data-plane calls answer S
  POST   /_emulator/break?kind=K&count=N    the next N answer broken HTTP (K: http09,
                                            badstatus, version; see ../http/server.py)
  POST   /_emulator/delay?ms=M&count=N  the next N data-plane calls wait M ms first
  GET    /_emulator/stats          {"requests": n, "auth": [distinct Authorization values seen]}

Options: --api-key KEY (default "emulator-key"), --readonly-key KEY,
--cache NAME (repeatable), and those of tests/http/server.py (--port-file,
--parent).
"""
import argparse
import base64
import binascii
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs, unquote, urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
from server import BROKEN, Handler as BaseHandler, serve  # noqa: E402

MAX_ITEM = 5 * 1024 * 1024


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.api_key = args.api_key
        self.readonly_key = args.readonly_key
        self.caches = {name: {} for name in args.cache}
        self.fail_status = 0
        self.fail_count = 0
        self.break_kind = "http09"
        self.break_count = 0
        self.delay_ms = 0
        self.delay_count = 0
        self.requests = 0
        self.seen_auth = set()


class Emulator(BaseHandler):
    state = None

    def route(self):
        u = urlsplit(self.path)
        parts = [unquote(p) for p in u.path.split("/") if p]
        query = parse_qs(u.query, keep_blank_values=True)
        body = self.read_body()
        if parts[:1] == ["_emulator"]:
            return self.control(parts[1:], query)
        if len(parts) != 2 or parts[0] != "cache":
            return self.send(404, b"Not found")
        with self.state.lock:
            delay = self.state.delay_ms if self.state.delay_count > 0 else 0
            self.state.delay_count -= 1 if delay else 0
        if delay:
            time.sleep(delay / 1000.0)
        with self.state.lock:
            return self.data(parts[1], query, body)

    def control(self, parts, query):
        st = self.state
        with st.lock:
            if parts[:1] == ["caches"] and len(parts) == 2:
                name = parts[1]
                if self.command == "POST":
                    if name in st.caches:
                        return self.send(409, b"Cache already exists")
                    st.caches[name] = {}
                    return self.send(201, b"")
                if self.command == "DELETE":
                    if st.caches.pop(name, None) is None:
                        return self.send(404, b"Cache not found")
                    return self.send(204)
            if parts == ["fail"] and self.command == "POST":
                st.fail_status = int(query.get("status", ["503"])[0])
                st.fail_count = int(query.get("count", ["1"])[0])
                return self.send(204)
            if parts == ["break"] and self.command == "POST":
                st.break_kind = query.get("kind", ["http09"])[0]
                st.break_count = int(query.get("count", ["1"])[0])
                return self.send(204)
            if parts == ["delay"] and self.command == "POST":
                st.delay_ms = int(query.get("ms", ["1000"])[0])
                st.delay_count = int(query.get("count", ["1"])[0])
                return self.send(204)
            if parts == ["stats"]:
                doc = {"requests": st.requests, "auth": sorted(st.seen_auth)}
                return self.send(200, json.dumps(doc).encode(), "application/json")
        return self.send(404, b"Not found")

    def key_of(self, query):
        if "key_base64" in query:
            try:
                text = query["key_base64"][0]
                return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_"
                                        if ("-" in text or "_" in text) else None,
                                        validate=True)
            except (binascii.Error, ValueError):
                return None
        if "key" in query:
            return query["key"][0].encode()
        return None

    def data(self, cache, query, body):
        st = self.state
        st.requests += 1
        auth = self.headers.get("Authorization")
        if auth:
            st.seen_auth.add(auth)
        if auth not in (st.api_key, st.readonly_key) or auth is None:
            return self.send(401, b"Unauthorized: invalid or missing authorization")
        if self.command in ("PUT", "DELETE") and auth == st.readonly_key:
            return self.send(403, b"Forbidden: the key may not write")
        if st.fail_count > 0:
            st.fail_count -= 1
            return self.send(st.fail_status, b"injected failure")
        if st.break_count > 0:
            st.break_count -= 1
            self.wfile.write(BROKEN[st.break_kind])
            self.close_connection = True
            return None
        key = self.key_of(query)
        if key is None:
            return self.send(400, b"Bad request: key_base64 is missing or not base64")
        items = st.caches.get(cache)
        if items is None:
            return self.send(404, b"Cache not found")
        now = time.monotonic()
        if self.command == "GET":
            item = items.get(key)
            if item is None or item[1] <= now:
                items.pop(key, None)
                return self.send(404, b"Key not found")
            return self.send(200, item[0], "application/octet-stream")
        if self.command == "PUT":
            ttl = query.get("ttl_seconds", [""])[0]
            if not ttl.isdigit() or int(ttl) <= 0:
                return self.send(400, b"Bad request: ttl_seconds must be a positive integer")
            if len(key) + len(body) > MAX_ITEM:
                return self.send(413, b"Item too large")
            items[key] = (body, now + int(ttl))
            return self.send(204)
        if self.command == "DELETE":
            items.pop(key, None)
            return self.send(204)
        return self.send(405, b"Method not allowed")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = route


def main():
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--api-key", default="emulator-key")
    ap.add_argument("--readonly-key")
    ap.add_argument("--cache", action="append", default=[])
    args, rest = ap.parse_known_args()
    Emulator.state = State(args)
    sys.argv = [sys.argv[0]] + rest
    serve(Emulator, __doc__)


if __name__ == "__main__":
    main()
