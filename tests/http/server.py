#!/usr/bin/env python3
"""A small HTTP/1.1 server on loopback for kura's tests (tests/lua/test_http.lua).

Endpoints (GET unless said):
  /json               {"hello": "world", "n": 42}
  /status/CODE        that status, body "status CODE"
  /bytes/N            N bytes "0123456789..." with Content-Length
  /chunked/N          N bytes, chunked (no Content-Length)
  /slow/MS            answers after MS milliseconds
  /slow-bytes/N       N bytes with Content-Length, the last after 300 ms
  /close-later/MS     answers (keep-alive), then closes the idle connection MS
                      milliseconds later
  /echo               any method: {"method", "path", "headers", "body"} as JSON
                      (the body as latin-1 text, and as hex: "body_hex")
  /headers            sets X-Multi twice and X-One once
  /lines?h=N:V&h=...  sends those header lines, in that order (after
                      Content-Type and Content-Length)
  /once               answers "once" (keep-alive), then reads the next request
                      on that connection and closes it unanswered
  /page/I?last=L      paging: {"items": [...], "next": "/page/I+1?last=L" or null}
  /endless/I          paging that never ends: every page names the next one
  /repeat/N           N header lines "R: v" (one name, repeated)
  /distinct/N         N header lines "R<i>: v" (as many names)
  /huge-header/N      one header line of N bytes ("X-Huge: xxx...")
  /broken/KIND        a broken answer, then the connection closes: KIND is
                      http09 (no status line), badstatus ("HTTP/1.1 abc"),
                      or version ("HTTP/3.7 200 OK")
  /count/NAME         how many requests /broken/... and /counted/NAME got
                      (/counted/NAME answers "counted")

--port-file F writes "PORT PID" once listening; --parent PID makes the
server exit when that process is gone, so a test that dies leaves nothing.
"""
import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DIGITS = b"0123456789" * 6554  # 65540 bytes, sliced per write

BROKEN = {
    "http09": b"this is not HTTP at all\r\n",
    "badstatus": b"HTTP/1.1 abc Broken\r\nContent-Length: 2\r\n\r\nok",
    "version": b"HTTP/3.7 200 OK\r\nContent-Length: 2\r\n\r\nok",
}
COUNTS = {}
COUNTS_LOCK = threading.Lock()


def count(name):
    with COUNTS_LOCK:
        COUNTS[name] = COUNTS.get(name, 0) + 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body=b"", ctype="text/plain", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def write_digits(self, n, chunked):
        left = n
        try:
            while left > 0:
                part = DIGITS[: min(left, 65530)]
                if chunked:
                    self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
                else:
                    self.wfile.write(part)
                left -= len(part)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def route(self):
        u = urlsplit(self.path)
        parts = [p for p in u.path.split("/") if p]
        body = self.read_body()
        head = parts[0] if parts else ""
        if getattr(self, "drop_next", False):  # after /once: no answer, close
            self.close_connection = True
            return None
        if head == "once":
            self.drop_next = True
            return self.send(200, b"once")
        if head == "json":
            return self.send(200, json.dumps({"hello": "world", "n": 42}).encode(),
                             "application/json")
        if head == "status" and len(parts) == 2:
            code = int(parts[1])
            return self.send(code, b"" if code in (204, 304) else b"status %d" % code)
        if head in ("bytes", "chunked") and len(parts) == 2:
            n = int(parts[1])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if head == "bytes":
                self.send_header("Content-Length", str(n))
            else:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            return self.write_digits(n, head == "chunked")
        if head == "slow-bytes" and len(parts) == 2:
            n = int(parts[1])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            self.wfile.write(b"s" * (n - 1))
            self.wfile.flush()
            time.sleep(0.3)
            self.wfile.write(b"s")
            return None
        if head == "slow" and len(parts) == 2:
            time.sleep(int(parts[1]) / 1000.0)
            return self.send(200, b"slow")
        if head == "close-later" and len(parts) == 2:
            self.send(200, b"bye")
            self.wfile.flush()
            time.sleep(int(parts[1]) / 1000.0)
            self.close_connection = True
            return None
        if head == "echo":
            doc = {"method": self.command, "path": self.path,
                   "headers": {k.lower(): v for k, v in self.headers.items()},
                   "body": body.decode("latin-1"), "body_hex": body.hex()}
            return self.send(200, json.dumps(doc).encode(), "application/json")
        if head == "headers":
            return self.send(200, b"h", extra=(("X-Multi", "a"), ("X-Multi", "b"),
                                               ("X-One", "1")))
        if head == "lines":
            lines = [h.split(":", 1) for h in parse_qs(u.query, keep_blank_values=True).get("h", [])]
            return self.send(200, b"l", extra=[(n, v) for n, v in lines])
        if head == "broken" and len(parts) >= 2:
            count(parts[1])
            self.wfile.write(BROKEN.get(parts[1], b"?"))
            self.wfile.flush()
            self.close_connection = True
            return None
        if head == "counted" and len(parts) == 2:
            count(parts[1])
            return self.send(200, b"counted")
        if head == "count" and len(parts) == 2:
            with COUNTS_LOCK:
                n = COUNTS.get(parts[1], 0)
            return self.send(200, str(n).encode())
        if head == "repeat" and len(parts) == 2:
            n = int(parts[1])
            self.wfile.write(b"HTTP/1.1 200 OK\r\n" + b"R: v\r\n" * n +
                             b"Content-Length: 1\r\n\r\nr")
            return None
        if head == "distinct" and len(parts) == 2:
            n = int(parts[1])
            lines = b"".join(b"R%d: v\r\n" % i for i in range(n))
            self.wfile.write(b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: 1\r\n\r\nd")
            return None
        if head == "huge-header" and len(parts) == 2:
            n = int(parts[1])
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"x" * n +
                             b"\r\nContent-Length: 1\r\n\r\nh")
            return None
        if head == "endless" and len(parts) == 2:
            i = int(parts[1])
            doc = {"items": [{"key": "e%d" % i, "value": "v%d" % i}],
                   "next": "/endless/%d" % (i + 1)}
            return self.send(200, json.dumps(doc).encode(), "application/json")
        if head == "page" and len(parts) == 2:
            i = int(parts[1])
            last = int(parse_qs(u.query).get("last", ["3"])[0])
            doc = {"items": [{"key": "k%d-%d" % (i, j), "value": "v%d-%d" % (i, j)}
                             for j in range(3)],
                   "next": "/page/%d?last=%d" % (i + 1, last) if i < last else None}
            return self.send(200, json.dumps(doc).encode(), "application/json")
        return self.send(404, b"no such endpoint")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = route


def watch_parent(pid):
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass
        time.sleep(0.5)


def serve(handler, description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--parent", type=int)
    ap.add_argument("--max-seconds", type=float, default=900)
    args, rest = ap.parse_known_args()
    ThreadingHTTPServer.request_queue_size = 1024
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.handle_error = lambda self, request, address: None  # resets are fine
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    srv.args = rest
    port = srv.server_address[1]
    if args.parent:
        threading.Thread(target=watch_parent, args=(args.parent,), daemon=True).start()
    threading.Timer(args.max_seconds, lambda: os._exit(0)).start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d %d\n" % (port, os.getpid()))
        os.rename(tmp, args.port_file)
    else:
        print(port, os.getpid(), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    serve(Handler, __doc__)
