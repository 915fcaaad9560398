#!/usr/bin/env node
// The SDK's half of the cross-check with kura (tests/momento/cross.lua):
//
//   node sdk_cross.js --port P --key KEY read-kura CACHE   reads what kura wrote
//   node sdk_cross.js --port P --key KEY write CACHE       writes for kura to read
'use strict';

const {sdk, parseArgs, client, isA, eq, ok, run} = require('./sdk');

async function readKura(c, cache) {
  eq('kura:str', isA('get kura:str', await c.get(cache, 'kura:str'), sdk.CacheGet.Hit)
    .valueString(), 'hello from kura');
  eq('kura:bin', [...(await c.get(cache, 'kura:bin')).valueUint8Array()], [0, 1, 2, 255]);
  eq('kura:n', (await c.get(cache, 'kura:n')).valueString(), '42');
  eq('kura:n + 1', (await c.increment(cache, 'kura:n', 1)).value(), 43);
  const t = isA('kura:ttl', await c.itemGetTtl(cache, 'kura:ttl'), sdk.CacheItemGetTtl.Hit);
  ok('kura:ttl remaining', t.remainingTtlMillis() > 80000 && t.remainingTtlMillis() <= 100000);
  const gb = isA('getBatch', await c.getBatch(cache, ['kura:b1', 'kura:b2', 'kura:none']),
                 sdk.CacheGetBatch.Success);
  eq('kura batch', gb.values(), {'kura:b1': 'one', 'kura:b2': 'two'});
  eq('kura:cond', (await c.get(cache, 'kura:cond')).valueString(), 'second');
  isA('kura:deleted', await c.get(cache, 'kura:deleted'), sdk.CacheGet.Miss);
}

async function write(c, cache) {
  isA('set sdk:str', await c.set(cache, 'sdk:str', 'hello from the SDK'), sdk.CacheSet.Success);
  isA('set sdk:bin', await c.set(cache, 'sdk:bin', new Uint8Array([0, 1, 2, 255])),
      sdk.CacheSet.Success);
  eq('sdk:n', (await c.increment(cache, 'sdk:n', 7)).value(), 7);
  isA('set sdk:ttl', await c.set(cache, 'sdk:ttl', 'x', {ttl: 100}), sdk.CacheSet.Success);
  isA('setBatch', await c.setBatch(cache, {'sdk:b1': 'uno', 'sdk:b2': 'dos'}),
      sdk.CacheSetBatch.Success);
  isA('setIfAbsent', await c.setIfAbsent(cache, 'sdk:cond', 'first'), sdk.CacheSetIfAbsent.Stored);
}

run(async () => {
  const o = parseArgs(process.argv);
  const c = await client(o.port, o.key);
  try {
    if (o.rest[0] === 'read-kura') await readKura(c, o.rest[1]);
    else if (o.rest[0] === 'write') await write(c, o.rest[1]);
    else throw new Error('usage: sdk_cross.js --port P [--key K] read-kura|write CACHE');
  } finally {
    c.close();
  }
});
