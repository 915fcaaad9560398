// A plaintext HTTP/2 server (h2c, prior knowledge only) on loopback for
// tests/unit/test_http.c: GET /stream answers {"stream": ID, "session": N}
// after a short pause, so concurrent requests overlap; N counts the
// connections (sessions) seen, which shows whether requests were
// multiplexed. /trailers sends a trailer, as gRPC does (grpc-status).
// usage: node h2server.js PORT_FILE [KEY CERT]   (writes "PORT PID" once
// listening; with KEY and CERT it speaks TLS with ALPN h2; exits when its
// parent process is gone)
"use strict";
const http2 = require("http2");
const fs = require("fs");

let sessions = 0;
const [file, keyFile, certFile] = process.argv.slice(2);
const server = keyFile
  ? http2.createSecureServer({ key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) })
  : http2.createServer();
server.on("session", () => { sessions++; });
server.on("stream", (stream, headers) => {
  const path = headers[":path"];
  if (path === "/trailers") {
    stream.respond({ ":status": 200, "content-type": "text/plain" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "x-trailer": "yes" }));
    stream.end("body");
    return;
  }
  setTimeout(() => {
    stream.respond({ ":status": 200, "content-type": "application/json" });
    stream.end(JSON.stringify({ stream: stream.id, session: sessions }));
  }, 20);
});
server.listen(0, "127.0.0.1", () => {
  const text = `${server.address().port} ${process.pid}\n`;
  if (file) {
    fs.writeFileSync(file + ".tmp", text);
    fs.renameSync(file + ".tmp", file);
  } else {
    process.stdout.write(text);
  }
});
const parent = process.ppid;
setInterval(() => {
  try { process.kill(parent, 0); } catch (e) { process.exit(0); }
}, 500).unref();
setTimeout(() => process.exit(0), 600000).unref();
