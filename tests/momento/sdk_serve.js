#!/usr/bin/env node
// Momento's official JS SDK against `kura serve` (tests/serve/test_serve.sh):
// the cheat sheet's calls and what an application leans on: caches that
// exist or not, TTL expiry, conditional sets, batches, binary keys, values
// of 1 and 4 MiB, 300 concurrent increments that must sum exactly, many
// concurrent calls on one connection and on many, flush, delete, list.
//
//   node sdk_serve.js --port P [--key KEY]
//
// Without --key the SDK connects as forMomentoLocal does (no key); with
// --key it presents that key (a server started with --auth-token).
'use strict';

const crypto = require('crypto');
const {sdk, parseArgs, client, isA, eq, ok, errCode, run} = require('./sdk');

const E = sdk.MomentoErrorCode;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function caches(c, name) {
  isA('createCache', await c.createCache(name), sdk.CreateCache.Success);
  isA('createCache exists', await c.createCache(name), sdk.CreateCache.AlreadyExists);
  isA('createCache other', await c.createCache(name + '-x'), sdk.CreateCache.Success);
  const names = isA('listCaches', await c.listCaches(), sdk.ListCaches.Success)
    .getCaches().map((x) => x.getName());
  ok('listCaches has both', names.includes(name) && names.includes(name + '-x'));
  eq('listCaches is sorted', names, [...names].sort());
  isA('deleteCache', await c.deleteCache(name + '-x'), sdk.DeleteCache.Success);
  const after = (await c.listCaches()).getCaches().map((x) => x.getName());
  ok('deleted cache not listed', !after.includes(name + '-x'));
  errCode('deleteCache missing', await c.deleteCache(name + '-x'), E.NOT_FOUND_ERROR);
  errCode('flushCache missing', await c.flushCache(name + '-x'), E.NOT_FOUND_ERROR);
  errCode('get on a missing cache', await c.get(name + '-x', 'k'), E.NOT_FOUND_ERROR);
  errCode('set on a missing cache', await c.set(name + '-x', 'k', 'v'), E.NOT_FOUND_ERROR);
  errCode('increment on a missing cache', await c.increment(name + '-x', 'n'),
          E.NOT_FOUND_ERROR);
}

async function items(c, name) {
  isA('set', await c.set(name, 'greeting', 'hello'), sdk.CacheSet.Success);
  eq('get hit', isA('get', await c.get(name, 'greeting'), sdk.CacheGet.Hit).valueString(),
     'hello');
  isA('get miss', await c.get(name, 'nobody'), sdk.CacheGet.Miss);
  isA('set empty value', await c.set(name, 'empty', ''), sdk.CacheSet.Success);
  eq('get empty value', isA('get empty', await c.get(name, 'empty'), sdk.CacheGet.Hit)
    .valueString(), '');
  isA('delete', await c.delete(name, 'greeting'), sdk.CacheDelete.Success);
  isA('get deleted', await c.get(name, 'greeting'), sdk.CacheGet.Miss);
  await c.set(name, 'word', 'abc');
  errCode('increment a word', await c.increment(name, 'word', 1), E.FAILED_PRECONDITION_ERROR);
  eq('increment new', (await c.increment(name, 'n', 5)).value(), 5);
  eq('increment down', (await c.increment(name, 'n', -7)).value(), -2);
}

async function binary(c, name) {
  const key = Uint8Array.from({length: 256}, (_, i) => i);
  const val = crypto.randomBytes(1000);
  isA('set binary key', await c.set(name, key, val), sdk.CacheSet.Success);
  const got = isA('get binary key', await c.get(name, key), sdk.CacheGet.Hit).valueUint8Array();
  ok('binary value round-trips', Buffer.compare(Buffer.from(got), val) === 0);
  eq('keyExists binary', (await c.keyExists(name, key)).exists(), true);
  const key2 = Uint8Array.from([0, 0, 1]);
  isA('a key differing by a byte misses', await c.get(name, key2), sdk.CacheGet.Miss);
}

async function large(c, name) {
  for (const size of [1 << 20, 4 << 20]) {
    const val = crypto.randomBytes(size);
    isA(`set ${size} bytes`, await c.set(name, `big-${size}`, val), sdk.CacheSet.Success);
    const got = isA(`get ${size} bytes`, await c.get(name, `big-${size}`), sdk.CacheGet.Hit);
    ok(`${size} bytes round-trip`, Buffer.compare(Buffer.from(got.valueUint8Array()), val) === 0);
  }
  // Several large values at once on one connection: flow control both ways.
  const vals = Array.from({length: 6}, () => crypto.randomBytes(1 << 20));
  await Promise.all(vals.map((v, i) => c.set(name, `par-${i}`, v)));
  const gets = await Promise.all(vals.map((_, i) => c.get(name, `par-${i}`)));
  gets.forEach((g, i) => ok(`parallel 1 MiB #${i}`,
    g instanceof sdk.CacheGet.Hit && Buffer.compare(Buffer.from(g.valueUint8Array()), vals[i]) === 0));
}

async function ttls(c, name) {
  isA('set ttl 1 s', await c.set(name, 'short', 'v', {ttl: 1}), sdk.CacheSet.Success);
  const t = isA('itemGetTtl', await c.itemGetTtl(name, 'short'), sdk.CacheItemGetTtl.Hit);
  ok('remaining <= 1000 ms', t.remainingTtlMillis() > 0 && t.remainingTtlMillis() <= 1000);
  isA('hit before expiry', await c.get(name, 'short'), sdk.CacheGet.Hit);
  await sleep(1600);
  isA('miss after expiry', await c.get(name, 'short'), sdk.CacheGet.Miss);
  isA('itemGetTtl after expiry', await c.itemGetTtl(name, 'short'), sdk.CacheItemGetTtl.Miss);
  await c.set(name, 't', 'v', {ttl: 100});
  isA('updateTtl', await c.updateTtl(name, 't', 50000), sdk.CacheUpdateTtl.Set);
  isA('increaseTtl', await c.increaseTtl(name, 't', 80000), sdk.CacheIncreaseTtl.Set);
  isA('increaseTtl lower', await c.increaseTtl(name, 't', 1000), sdk.CacheIncreaseTtl.NotSet);
  isA('decreaseTtl', await c.decreaseTtl(name, 't', 20000), sdk.CacheDecreaseTtl.Set);
  isA('updateTtl missing', await c.updateTtl(name, 'zzz', 1000), sdk.CacheUpdateTtl.Miss);
}

async function conditionals(c, name) {
  isA('setIfAbsent', await c.setIfAbsent(name, 'c', '1'), sdk.CacheSetIfAbsent.Stored);
  isA('setIfAbsent again', await c.setIfAbsent(name, 'c', '2'), sdk.CacheSetIfAbsent.NotStored);
  isA('setIfPresent', await c.setIfPresent(name, 'c', '3'), sdk.CacheSetIfPresent.Stored);
  isA('setIfPresent absent', await c.setIfPresent(name, 'no', '3'),
      sdk.CacheSetIfPresent.NotStored);
  isA('setIfEqual', await c.setIfEqual(name, 'c', '4', '3'), sdk.CacheSetIfEqual.Stored);
  isA('setIfEqual differs', await c.setIfEqual(name, 'c', '5', 'x'),
      sdk.CacheSetIfEqual.NotStored);
  isA('setIfNotEqual', await c.setIfNotEqual(name, 'c', '6', 'x'), sdk.CacheSetIfNotEqual.Stored);
  isA('setIfPresentAndNotEqual absent', await c.setIfPresentAndNotEqual(name, 'no', '8', 'x'),
      sdk.CacheSetIfPresentAndNotEqual.NotStored);
  isA('setIfAbsentOrEqual absent', await c.setIfAbsentOrEqual(name, 'c2', '9', 'x'),
      sdk.CacheSetIfAbsentOrEqual.Stored);
  eq('value after the conditionals', (await c.get(name, 'c')).valueString(), '6');
  // Only one of many concurrent setIfAbsent on one key stores.
  const rs = await Promise.all(Array.from({length: 50}, (_, i) => c.setIfAbsent(name, 'race', `${i}`)));
  eq('one setIfAbsent wins', rs.filter((r) => r instanceof sdk.CacheSetIfAbsent.Stored).length, 1);
}

async function batches(c, name) {
  const items = {};
  for (let i = 0; i < 100; i++) items[`b${i}`] = `v${i}`;
  isA('setBatch', await c.setBatch(name, items, {ttl: 60}), sdk.CacheSetBatch.Success);
  const keys = Object.keys(items).concat(['b-missing']);
  const gb = isA('getBatch', await c.getBatch(name, keys), sdk.CacheGetBatch.Success);
  eq('getBatch values', gb.values(), items);
  isA('getBatch miss', gb.results()[100], sdk.CacheGet.Miss);
  eq('keysExist', (await c.keysExist(name, ['b0', 'nope', 'b99'])).exists(), [true, false, true]);
}

// 300 increments at once: each answer distinct, the sum exact.
async function counters(port, key, name) {
  const c = await client(port, key, false, 60000);
  await c.delete(name, 'hits');
  const rs = await Promise.all(Array.from({length: 300}, () => c.increment(name, 'hits', 1)));
  rs.forEach((r, i) => isA(`increment #${i}`, r, sdk.CacheIncrement.Success));
  const seen = new Set(rs.map((r) => r.value()));
  eq('300 distinct answers', seen.size, 300);
  ok('answers are 1..300', [...seen].every((v) => v >= 1 && v <= 300));
  eq('the sum is exact', (await c.get(name, 'hits')).valueString(), '300');
  c.close();
}

// Many calls in flight on one client, then on many clients (connections).
// A minute per call: the SDK queues what its connection cannot take yet, and
// a busy machine must not turn that wait into TIMEOUT_ERROR.
async function concurrency(port, key, name) {
  const c = await client(port, key, false, 60000);
  const rs = await Promise.all(Array.from({length: 2000}, (_, i) =>
    i % 2 ? c.set(name, `m${i % 97}`, `${i}`) : c.get(name, `m${i % 97}`)));
  const bad = rs.filter((r) => !(r instanceof sdk.CacheSet.Success ||
    r instanceof sdk.CacheGet.Hit || r instanceof sdk.CacheGet.Miss));
  eq('2000 concurrent calls answered', bad.map((r) => r.toString()).slice(0, 3), []);
  const clients = await Promise.all(Array.from({length: 20}, () => client(port, key, false, 60000)));
  const counts = await Promise.all(clients.map(async (cl, j) => {
    let n = 0;
    for (let i = 0; i < 20; i++) {
      if ((await cl.increment(name, 'many', 1)) instanceof sdk.CacheIncrement.Success) n++;
      if ((await cl.get(name, `m${j}`)) instanceof sdk.CacheGet.Error) n = -1e9;
    }
    return n;
  }));
  clients.forEach((cl) => cl.close());
  eq('20 clients x 20 increments', counts.reduce((a, b) => a + b, 0), 400);
  eq('their sum', (await c.get(name, 'many')).valueString(), '400');
  c.close();
}

async function flushAndDelete(c, name) {
  isA('flushCache', await c.flushCache(name), sdk.CacheFlush.Success);
  isA('get after flush', await c.get(name, 'c'), sdk.CacheGet.Miss);
  ok('flushed cache still listed',
     (await c.listCaches()).getCaches().some((x) => x.getName() === name));
  isA('deleteCache', await c.deleteCache(name), sdk.DeleteCache.Success);
  errCode('get after deleteCache', await c.get(name, 'c'), E.NOT_FOUND_ERROR);
}

run(async () => {
  const o = parseArgs(process.argv);
  const c = await client(o.port, o.key);
  const name = 'serve-sdk-' + process.pid;
  try {
    await caches(c, name);
    await items(c, name);
    await binary(c, name);
    await large(c, name);
    await ttls(c, name);
    await conditionals(c, name);
    await batches(c, name);
    await counters(o.port, o.key, name);
    await concurrency(o.port, o.key, name);
    await flushAndDelete(c, name);
  } finally {
    c.close();
  }
});
