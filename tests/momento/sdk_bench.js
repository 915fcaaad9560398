#!/usr/bin/env node
// The SDK's half of scripts/bench/momento.sh: CONCURRENCY promises doing
// `get` for SECONDS through Momento's JS SDK; prints one line
//   sdk: CALLS calls in S s = RPS calls/s, cpu C s = U us/call, errors E
//   node sdk_bench.js --port P --key KEY [--tls] [CONCURRENCY [SECONDS]]
'use strict';
const {sdk, parseArgs, client} = require('./sdk');

async function main() {
  const o = parseArgs(process.argv);
  const conc = Number(o.rest[0] || 50), seconds = Number(o.rest[1] || 3);
  const c = await client(o.port, o.key, o.tls);
  await c.createCache('bench');
  await c.set('bench', 'k', 'v'.repeat(100), {ttl: 600});
  if (!((await c.get('bench', 'k')) instanceof sdk.CacheGet.Hit)) throw new Error('no hit');
  let calls = 0, errors = 0;
  const cpu0 = process.cpuUsage(), t0 = process.hrtime.bigint();
  const stop = Date.now() + seconds * 1000;
  const worker = async () => {
    while (Date.now() < stop) {
      const r = await c.get('bench', 'k');
      if (r instanceof sdk.CacheGet.Hit) calls++; else errors++;
    }
  };
  await Promise.all(Array.from({length: conc}, worker));
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const u = process.cpuUsage(cpu0), cpu = (u.user + u.system) / 1e6;
  console.log(`sdk: ${calls} calls in ${dt.toFixed(2)} s = ${(calls / dt).toFixed(0)} calls/s, ` +
              `cpu ${cpu.toFixed(2)} s = ${(cpu / Math.max(calls, 1) * 1e6).toFixed(1)} us/call, ` +
              `errors ${errors}`);
  c.close();
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
