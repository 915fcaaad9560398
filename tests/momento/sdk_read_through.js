#!/usr/bin/env node
// kura serve with tests/serve/on_miss.lua (kura.serve.on_miss): what the
// SDK and the HTTP API see of server-side read-through.
//   node sdk_read_through.js --port P
'use strict';
const {sdk, parseArgs, client, isA, eq, ok, errCode, run} = require('./sdk');

const E = sdk.MomentoErrorCode;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const loadNo = (v) => Number(v.split(':').pop());

run(async () => {
  const o = parseArgs(process.argv);
  const c = await client(o.port, null);
  isA('the script made the cache', await c.createCache('rt'), sdk.CreateCache.AlreadyExists);
  eq('the script stored before serving', (await c.get('rt', 'preloaded')).valueString(),
     'from the script');
  // 50 gets of one missing key at once: one load, one value for all.
  const rs = await Promise.all(Array.from({length: 50}, () => c.get('rt', 'slow:a')));
  rs.forEach((r, i) => isA(`concurrent get #${i}`, r, sdk.CacheGet.Hit));
  const values = new Set(rs.map((r) => r.valueString()));
  eq('one value for the 50 gets', values.size, 1);
  const a = [...values][0];
  ok('the value is the loader\'s', a.startsWith('v:slow:a:'));
  eq('stored: the next get hits without a load', (await c.get('rt', 'slow:a')).valueString(), a);
  const b = (await c.get('rt', 'slow:b')).valueString();
  eq('the next key is the next load', loadNo(b), loadNo(a) + 1);
  const t = isA('loaded with the default TTL', await c.itemGetTtl('rt', 'slow:b'),
                sdk.CacheItemGetTtl.Hit);
  ok('default TTL (30 s)', t.remainingTtlMillis() > 25000 && t.remainingTtlMillis() <= 30000);
  isA('nil is a miss', await c.get('rt', 'none'), sdk.CacheGet.Miss);
  errCode('an error in on_miss', await c.get('rt', 'boom'), E.INTERNAL_SERVER_ERROR);
  errCode('a table from on_miss', await c.get('rt', 'table'), E.INTERNAL_SERVER_ERROR);
  eq('a number is its text', (await c.get('rt', 'num')).valueString(), '42');
  const s1 = (await c.get('rt', 'short')).valueString();
  await sleep(1600);
  const s2 = (await c.get('rt', 'short')).valueString();
  ok('the loader\'s TTL: reloaded after it', loadNo(s2) > loadNo(s1));
  errCode('a missing cache is not loaded', await c.get('rt-none', 'k'), E.NOT_FOUND_ERROR);
  // The HTTP API reads through too.
  const res = await fetch(`http://127.0.0.1:${o.port}/cache/rt?key=over-http`);
  eq('HTTP API: 200', res.status, 200);
  ok('HTTP API: loaded', (await res.text()).startsWith('v:over-http:'));
  c.close();
});
