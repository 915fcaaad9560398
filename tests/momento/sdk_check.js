#!/usr/bin/env node
// Proves that the emulator answers as Momento's official JS SDK expects:
// every call kura makes, through the SDK, with the SDK's result types.
//
//   node sdk_check.js --port P [--key KEY]          every call
//   node sdk_check.js --port P --key WRONG auth     AUTHENTICATION_ERROR
//
// Without --key the SDK connects as forMomentoLocal does (no key: start the
// emulator without one); with --key it sends that key.
'use strict';

const {sdk, parseArgs, client, isA, eq, ok, errCode, run} = require('./sdk');

async function caches(c, name) {
  isA('createCache', await c.createCache(name), sdk.CreateCache.Success);
  isA('createCache again', await c.createCache(name), sdk.CreateCache.AlreadyExists);
  isA('createCache other', await c.createCache(name + '-b'), sdk.CreateCache.Success);
  const list = isA('listCaches', await c.listCaches(), sdk.ListCaches.Success);
  const names = list.getCaches().map((x) => x.getName());
  ok('listCaches names', names.includes(name) && names.includes(name + '-b'));
  eq('listCaches sorted', names, [...names].sort());
  isA('deleteCache', await c.deleteCache(name + '-b'), sdk.DeleteCache.Success);
  errCode('deleteCache missing', await c.deleteCache(name + '-b'),
          sdk.MomentoErrorCode.NOT_FOUND_ERROR);
}

async function items(c, name) {
  isA('set', await c.set(name, 'k', 'v'), sdk.CacheSet.Success);
  eq('get hit', isA('get', await c.get(name, 'k'), sdk.CacheGet.Hit).valueString(), 'v');
  isA('get miss', await c.get(name, 'nope'), sdk.CacheGet.Miss);
  const bin = new Uint8Array([0, 1, 2, 255]);
  isA('set binary', await c.set(name, 'bin', bin), sdk.CacheSet.Success);
  eq('get binary', [...(await c.get(name, 'bin')).valueUint8Array()], [0, 1, 2, 255]);
  isA('delete', await c.delete(name, 'k'), sdk.CacheDelete.Success);
  isA('delete absent', await c.delete(name, 'k'), sdk.CacheDelete.Success);
  isA('get deleted', await c.get(name, 'k'), sdk.CacheGet.Miss);
  errCode('get on a missing cache', await c.get(name + '-none', 'k'),
          sdk.MomentoErrorCode.NOT_FOUND_ERROR);
}

async function increments(c, name) {
  eq('increment new', isA('increment', await c.increment(name, 'n', 5),
                          sdk.CacheIncrement.Success).value(), 5);
  eq('increment down', (await c.increment(name, 'n', -7)).value(), -2);
  await c.set(name, 'word', 'abc');
  errCode('increment non-integer', await c.increment(name, 'word', 1),
          sdk.MomentoErrorCode.FAILED_PRECONDITION_ERROR);
}

async function conditionals(c, name) {
  isA('setIfAbsent stored', await c.setIfAbsent(name, 'c', '1'), sdk.CacheSetIfAbsent.Stored);
  isA('setIfAbsent not', await c.setIfAbsent(name, 'c', '2'), sdk.CacheSetIfAbsent.NotStored);
  isA('setIfPresent stored', await c.setIfPresent(name, 'c', '3'), sdk.CacheSetIfPresent.Stored);
  isA('setIfPresent not', await c.setIfPresent(name, 'c-no', '3'), sdk.CacheSetIfPresent.NotStored);
  isA('setIfEqual stored', await c.setIfEqual(name, 'c', '4', '3'), sdk.CacheSetIfEqual.Stored);
  isA('setIfEqual not', await c.setIfEqual(name, 'c', '5', 'x'), sdk.CacheSetIfEqual.NotStored);
  isA('setIfNotEqual stored', await c.setIfNotEqual(name, 'c', '6', 'x'),
      sdk.CacheSetIfNotEqual.Stored);
  isA('setIfNotEqual not', await c.setIfNotEqual(name, 'c', '7', '6'),
      sdk.CacheSetIfNotEqual.NotStored);
  isA('setIfPresentAndNotEqual stored', await c.setIfPresentAndNotEqual(name, 'c', '8', 'x'),
      sdk.CacheSetIfPresentAndNotEqual.Stored);
  isA('setIfPresentAndNotEqual absent', await c.setIfPresentAndNotEqual(name, 'c-no', '8', 'x'),
      sdk.CacheSetIfPresentAndNotEqual.NotStored);
  isA('setIfAbsentOrEqual absent', await c.setIfAbsentOrEqual(name, 'c2', '9', 'x'),
      sdk.CacheSetIfAbsentOrEqual.Stored);
  isA('setIfAbsentOrEqual differs', await c.setIfAbsentOrEqual(name, 'c2', '10', 'x'),
      sdk.CacheSetIfAbsentOrEqual.NotStored);
  eq('after conditionals', (await c.get(name, 'c')).valueString(), '8');
}

async function existsAndBatches(c, name) {
  eq('keyExists', isA('keyExists', await c.keyExists(name, 'c'),
                      sdk.CacheKeyExists.Success).exists(), true);
  eq('keyExists absent', (await c.keyExists(name, 'zzz')).exists(), false);
  eq('keysExist', isA('keysExist', await c.keysExist(name, ['c', 'zzz', 'c2']),
                      sdk.CacheKeysExist.Success).exists(), [true, false, true]);
  isA('setBatch', await c.setBatch(name, {b1: 'x1', b2: 'x2'}), sdk.CacheSetBatch.Success);
  const gb = isA('getBatch', await c.getBatch(name, ['b1', 'b2', 'b3']), sdk.CacheGetBatch.Success);
  eq('getBatch values', gb.values(), {b1: 'x1', b2: 'x2'});
  const res = gb.results();
  isA('getBatch miss', res[2], sdk.CacheGet.Miss);
}

async function ttls(c, name) {
  await c.set(name, 't', 'v', {ttl: 100});
  const t = isA('itemGetTtl', await c.itemGetTtl(name, 't'), sdk.CacheItemGetTtl.Hit);
  ok('remaining ttl', t.remainingTtlMillis() > 95000 && t.remainingTtlMillis() <= 100000);
  isA('itemGetTtl miss', await c.itemGetTtl(name, 'zzz'), sdk.CacheItemGetTtl.Miss);
  isA('updateTtl', await c.updateTtl(name, 't', 50000), sdk.CacheUpdateTtl.Set);
  isA('updateTtl miss', await c.updateTtl(name, 'zzz', 50000), sdk.CacheUpdateTtl.Miss);
  isA('increaseTtl', await c.increaseTtl(name, 't', 80000), sdk.CacheIncreaseTtl.Set);
  isA('increaseTtl not', await c.increaseTtl(name, 't', 10000), sdk.CacheIncreaseTtl.NotSet);
  isA('decreaseTtl', await c.decreaseTtl(name, 't', 20000), sdk.CacheDecreaseTtl.Set);
  isA('decreaseTtl not', await c.decreaseTtl(name, 't', 90000), sdk.CacheDecreaseTtl.NotSet);
  isA('increaseTtl miss', await c.increaseTtl(name, 'zzz', 1000), sdk.CacheIncreaseTtl.Miss);
  const t2 = await c.itemGetTtl(name, 't');
  ok('ttl after decrease', t2.remainingTtlMillis() <= 20000);
}

async function everyCall(c) {
  const name = 'sdk-check-' + process.pid;
  await caches(c, name);
  await items(c, name);
  await increments(c, name);
  await conditionals(c, name);
  await existsAndBatches(c, name);
  await ttls(c, name);
  isA('flushCache', await c.flushCache(name), sdk.CacheFlush.Success);
  isA('get after flush', await c.get(name, 'c'), sdk.CacheGet.Miss);
  errCode('flushCache missing', await c.flushCache(name + '-none'),
          sdk.MomentoErrorCode.NOT_FOUND_ERROR);
  isA('deleteCache', await c.deleteCache(name), sdk.DeleteCache.Success);
}

async function wrongKey(c) {
  errCode('get with a wrong key', await c.get('any', 'k'),
          sdk.MomentoErrorCode.AUTHENTICATION_ERROR);
  errCode('createCache with a wrong key', await c.createCache('any'),
          sdk.MomentoErrorCode.AUTHENTICATION_ERROR);
}

run(async () => {
  const o = parseArgs(process.argv);
  const c = await client(o.port, o.key);
  try {
    if (o.rest[0] === 'auth') await wrongKey(c);
    else await everyCall(c);
  } finally {
    c.close();
  }
});
