#!/usr/bin/env node
// A server that accepts connections and never answers (for the timeout
// test): prints "listening PORT" once bound to a free loopback port.
'use strict';
const net = require('net');
const held = [];
const server = net.createServer((sock) => {
  held.push(sock);
  sock.on('data', () => {});
  sock.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
