#!/usr/bin/env node
// For tests/serve/test_serve_faults.sh: N gets of keys that kura serve's
// on_miss (tests/serve/on_miss.lua) loads slowly, all at once; exits 0 when
// every one came back a hit with its loaded value (answered through the
// server's drain), else prints what came back and exits 1.
//   node sdk_drain.js --port P [N]
'use strict';
const {sdk, parseArgs, client} = require('./sdk');

(async () => {
  const o = parseArgs(process.argv);
  const n = Number(o.rest[0] || 20);
  const c = await client(o.port, null);
  console.log('started');
  const rs = await Promise.all(Array.from({length: n}, (_, i) => c.get('rt', `slower:${i}`)));
  const bad = rs.filter((r, i) => !(r instanceof sdk.CacheGet.Hit &&
                                     r.valueString().startsWith(`v:slower:${i}:`)));
  c.close();
  if (bad.length) {
    console.log(`${bad.length} of ${n} not answered: ${bad.map(String).slice(0, 3).join('; ')}`);
    process.exit(1);
  }
  console.log(`all ${n} answered`);
  process.exit(0);
})();
