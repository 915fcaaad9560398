#!/usr/bin/env python3
"""For tests/serve/test_serve_faults.sh: stores a 4 MiB value through kura
serve's HTTP API, then, ROUNDS times, opens a connection that goes away
while the server still answers on it: pipelined GETs of the big value and
a reset (SO_LINGER 0) once the first answer starts, or 2 MB of pipelined
small GETs and a close without reading any answer. The server's writes
then meet a peer that is gone. Exits 0 when every round is done.
  reset_peer.py PORT [ROUNDS]"""
import socket
import struct
import sys

port = int(sys.argv[1])
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
value = b"r" * (4 << 20)

with socket.create_connection(("127.0.0.1", port)) as s:
    s.sendall(b"PUT /cache/resets?key=big&ttl_seconds=60 HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: %d\r\n\r\n" % len(value) + value)
    head = s.recv(4096)
    if not head.startswith(b"HTTP/1.1 204"):
        sys.exit("PUT failed: %r" % head[:200])
get = b"GET /cache/resets?key=big HTTP/1.1\r\nHost: x\r\n\r\n"
small = b"GET /cache/resets?key=none HTTP/1.1\r\nHost: x\r\n\r\n"
for i in range(rounds):
    s = socket.create_connection(("127.0.0.1", port))
    if i % 2:  # big answers: reset while one is being written
        s.sendall(get * 8)
        s.recv(1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    else:  # many small ones: the server reads and answers on after the peer left
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
        s.sendall(small * 40000)
    s.close()
print("reset %d connections in mid-answer" % rounds)
