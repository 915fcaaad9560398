#!/usr/bin/env node
// A gRPC server that answers wrongly on purpose (plaintext HTTP/2, prior
// knowledge), for faults.lua hostile: prints "listening PORT" once bound.
//   Set        status OK, but the answer message is not a _SetResponse
//   Get        NOT_FOUND with a grpc-message of 60,000 bytes
//   Increment  FAILED_PRECONDITION with a grpc-message of 200,000 bytes:
//              over the 64 KiB an HTTP/2 header field may take in libcurl,
//              whose trailers never reach kura
//   anything else: UNIMPLEMENTED
'use strict';
const http2 = require('http2');

function reply(stream, status, message, body) {
  stream.respond({':status': 200, 'content-type': 'application/grpc'}, {waitForTrailers: true});
  stream.on('wantTrailers', () => stream.sendTrailers({'grpc-status': String(status),
                                                      'grpc-message': message}));
  stream.end(body || Buffer.alloc(0));
}

const server = http2.createServer({maxSendHeaderBlockLength: 1 << 24});
server.on('stream', (stream, headers) => {
  stream.on('error', () => {});
  stream.resume(); // the request body is not read
  const method = headers[':path'];
  if (method === '/cache_client.Scs/Set') {
    // one gRPC frame of 4 bytes that no protobuf message can be: field 0
    const frame = Buffer.from([0, 0, 0, 0, 4, 0x00, 0xff, 0xff, 0xff]);
    reply(stream, 0, '', frame);
  } else if (method === '/cache_client.Scs/Get') {
    reply(stream, 5, 'x'.repeat(60000));
  } else if (method === '/cache_client.Scs/Increment') {
    reply(stream, 9, 'y'.repeat(200000));
  } else {
    reply(stream, 12, 'not here');
  }
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
