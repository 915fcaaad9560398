#!/usr/bin/env node
// A fixed SDK workload for counting instructions (scripts/bench/
// serve_instructions.sh): WAVES waves of CONCURRENCY concurrent `get`s of one
// 100-byte item through Momento's JS SDK, each wave after the last one's
// answers, so that every run hands the server the same calls in the same
// batches. Prints "waves: HITS hits of CALLS calls".
//   node sdk_waves.js --port P [WAVES [CONCURRENCY]]
'use strict';
const {sdk, parseArgs, client} = require('../momento/sdk');

async function main() {
  const o = parseArgs(process.argv);
  const waves = Number(o.rest[0] || 40), conc = Number(o.rest[1] || 50);
  const c = await client(o.port, null, false, 60000); // slow under valgrind
  await c.createCache('bench');
  await c.set('bench', 'k', 'v'.repeat(100), {ttl: 600});
  let hits = 0;
  for (let w = 0; w < waves; w++) {
    const rs = await Promise.all(Array.from({length: conc}, () => c.get('bench', 'k')));
    hits += rs.filter((r) => r instanceof sdk.CacheGet.Hit).length;
  }
  console.log(`waves: ${hits} hits of ${waves * conc} calls`);
  c.close();
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
