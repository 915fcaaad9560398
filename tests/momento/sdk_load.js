#!/usr/bin/env node
// Load through Momento's JS SDK, for tests/serve/test_serve_faults.sh:
// CONCURRENCY workers per client alternate set and get of SIZE-byte values
// for SECONDS, on CLIENTS clients (connections). Every call ends (the SDK's
// deadline bounds it); prints "started" once connected, then one JSON line
// when every call has ended:
//   {"ok": N, "errors": {"CODE": n, ...}, "pending": 0}
//   node sdk_load.js --port P [--clients 1] [--concurrency 16] [--seconds 3] [--size 100]
'use strict';
const {sdk, parseArgs, client} = require('./sdk');

async function main() {
  const o = parseArgs(process.argv);
  const opt = (name, def) => {
    const i = o.rest.indexOf('--' + name);
    return i >= 0 ? Number(o.rest[i + 1]) : def;
  };
  const clients = opt('clients', 1), conc = opt('concurrency', 16);
  const seconds = opt('seconds', 3), size = opt('size', 100);
  const cs = await Promise.all(Array.from({length: clients}, () => client(o.port, o.key)));
  await cs[0].createCache('load');
  console.log('started'); // for the test: the load is on from here
  const value = Buffer.alloc(size, 'v');
  const out = {ok: 0, errors: {}, pending: 0};
  const stop = Date.now() + seconds * 1000;
  const worker = async (c, w) => {
    for (let i = 0; Date.now() < stop; i++) {
      out.pending++;
      const key = `k${w % 50}`;
      let code = null;
      try { // once the server is gone the SDK may throw instead of answering
        const r = i % 2 ? await c.get('load', key) : await c.set('load', key, value);
        if (!(r instanceof sdk.CacheSet.Success || r instanceof sdk.CacheGet.Hit ||
              r instanceof sdk.CacheGet.Miss)) code = r.errorCode();
      } catch (e) {
        code = 'THROWN ' + (e.errorCode ? e.errorCode() : e.message);
      }
      out.pending--;
      if (code === null) out.ok++;
      else out.errors[code] = (out.errors[code] || 0) + 1;
    }
  };
  await Promise.all(cs.flatMap((c, j) => Array.from({length: conc}, (_, w) => worker(c, j * conc + w))));
  cs.forEach((c) => c.close());
  console.log(JSON.stringify(out));
}
main().then(() => process.exit(0), (e) => { console.error(e.stack || e); process.exit(1); });
