#!/usr/bin/env node
// A Momento Cache emulator for kura's tests: services cache_client.Scs and
// control_client.ScsControl over gRPC (@grpc/grpc-js), with the message
// classes of Momento's published definitions (@gomomento/generated-types).
// Caches live in memory, with Momento's rules:
//   - every call names an existing cache (the `cache` metadata on data calls,
//     cache_name on control calls), else NOT_FOUND;
//   - every item has a TTL (ttl_milliseconds 0 -> INVALID_ARGUMENT);
//   - increment works on canonical base-10 int64 strings, else
//     FAILED_PRECONDITION (also on overflow);
//   - `authorization` must equal the configured key, else UNAUTHENTICATED;
//   - create of an existing cache -> ALREADY_EXISTS; list is sorted by name.
//
// usage: node emulator.js [--port N] [--host H] [--key KEY] [--tls CERT KEYFILE]
// Port 0 (the default) picks a free port. Prints "listening PORT" on stdout
// once it accepts calls. --tls serves HTTP/2 over TLS with that certificate
// chain and private key (PEM files), as Momento's endpoints do.
'use strict';

const grpc = require('@grpc/grpc-js');
const pb = require('google-protobuf');
const {cache: cc, control: ctl} = require('@gomomento/generated-types');
const cs = cc.cache_client;
const ct = ctl.control_client;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function parseArgs(argv) {
  const o = {port: 0, host: '127.0.0.1', key: null, tls: null};
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === '--port') o.port = Number(argv[++i]);
    else if (argv[i] === '--host') o.host = argv[++i];
    else if (argv[i] === '--key') o.key = argv[++i];
    else if (argv[i] === '--tls') o.tls = {cert: argv[++i], key: argv[++i]};
    else throw new Error('unknown argument ' + argv[i]);
  }
  if (o.key === null && process.env.EMULATOR_KEY) o.key = process.env.EMULATOR_KEY;
  return o;
}

class Failure extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// --- the store ---------------------------------------------------------------

class Store {
  constructor() {
    this.caches = new Map(); // name -> Map(latin1 key -> {value: Buffer, expires: ms})
  }

  cache(name) {
    const c = this.caches.get(name);
    if (!c) throw new Failure(grpc.status.NOT_FOUND, `Cache not found: ${name}`);
    return c;
  }

  // The live item or undefined (expired items are dropped on access).
  item(c, key) {
    const k = Buffer.from(key).toString('latin1');
    const it = c.get(k);
    if (it && it.expires <= Date.now()) {
      c.delete(k);
      return undefined;
    }
    return it;
  }

  put(c, key, value, ttl) {
    c.set(Buffer.from(key).toString('latin1'),
          {value: Buffer.from(value), expires: Date.now() + ttl});
  }
}

function requireTtl(ttl) {
  if (!ttl || Number(ttl) <= 0)
    throw new Failure(grpc.status.INVALID_ARGUMENT, 'ttl_milliseconds must be positive');
  return Number(ttl);
}

function requireName(name) {
  if (!name || !name.trim())
    throw new Failure(grpc.status.INVALID_ARGUMENT, 'cache name must not be empty');
  return name;
}

// --- handlers ----------------------------------------------------------------

function dataHandlers(store) {
  const get = (c, key) => {
    const it = store.item(c, key);
    return it ? new cs._GetResponse({result: cs.ECacheResult.Hit, cache_body: it.value})
              : new cs._GetResponse({result: cs.ECacheResult.Miss});
  };
  const set = (c, r) => {
    store.put(c, r.cache_key, r.cache_body, requireTtl(r.ttl_milliseconds));
    return new cs._SetResponse({result: cs.ECacheResult.Ok});
  };
  return {
    Get: (c, r) => get(c, r.cache_key),
    Set: set,
    Delete: (c, r) => {
      c.delete(Buffer.from(r.cache_key).toString('latin1'));
      return new cs._DeleteResponse();
    },
    KeysExist: (c, r) =>
      new cs._KeysExistResponse({exists: r.cache_keys.map((k) => !!store.item(c, k))}),
    Increment: (c, r) => increment(store, c, r),
    SetIf: (c, r) => setIf(store, c, r),
    SetIfNotExists: (c, r) => {
      const ttl = requireTtl(r.ttl_milliseconds);
      if (store.item(c, r.cache_key))
        return new cs._SetIfNotExistsResponse({not_stored: new cs._SetIfNotExistsResponse._NotStored()});
      store.put(c, r.cache_key, r.cache_body, ttl);
      return new cs._SetIfNotExistsResponse({stored: new cs._SetIfNotExistsResponse._Stored()});
    },
    ItemGetTtl: (c, r) => {
      const it = store.item(c, r.cache_key);
      const R = cs._ItemGetTtlResponse;
      return it ? new R({found: new R._Found({remaining_ttl_millis: Math.max(1, it.expires - Date.now())})})
                : new R({missing: new R._Missing()});
    },
    UpdateTtl: (c, r) => updateTtl(store, c, r),
    GetBatch: (c, r) => r.items.map((g) => get(c, g.cache_key)),
    SetBatch: (c, r) => {
      r.items.forEach((s) => requireTtl(s.ttl_milliseconds));
      return r.items.map((s) => set(c, s));
    },
  };
}

function increment(store, c, r) {
  const ttl = requireTtl(r.ttl_milliseconds);
  const it = store.item(c, r.cache_key);
  let cur = 0n;
  if (it) {
    const s = it.value.toString('latin1');
    if (!/^-?[0-9]+$/.test(s))
      throw new Failure(grpc.status.FAILED_PRECONDITION, 'The value is not an integer');
    cur = BigInt(s);
    if (cur < INT64_MIN || cur > INT64_MAX)
      throw new Failure(grpc.status.FAILED_PRECONDITION, 'The value is not an int64');
  }
  const next = cur + BigInt(r.amount);
  if (next < INT64_MIN || next > INT64_MAX)
    throw new Failure(grpc.status.FAILED_PRECONDITION, 'The result overflows int64');
  if (it) it.value = Buffer.from(next.toString());
  else store.put(c, r.cache_key, next.toString(), ttl);
  return {value: next.toString()};
}

function setIf(store, c, r) {
  const ttl = requireTtl(r.ttl_milliseconds);
  const it = store.item(c, r.cache_key);
  const eq = (m) => !!it && Buffer.compare(it.value, Buffer.from(m.value_to_check)) === 0;
  let ok;
  if (r.has_present) ok = !!it;
  else if (r.has_absent) ok = !it;
  else if (r.has_equal) ok = eq(r.equal);
  else if (r.has_not_equal) ok = !eq(r.not_equal);
  else if (r.has_present_and_not_equal) ok = !!it && !eq(r.present_and_not_equal);
  else if (r.has_absent_or_equal) ok = !it || eq(r.absent_or_equal);
  else throw new Failure(grpc.status.INVALID_ARGUMENT, 'SetIf needs a condition');
  const R = cs._SetIfResponse;
  if (!ok) return new R({not_stored: new R._NotStored()});
  store.put(c, r.cache_key, r.cache_body, ttl);
  return new R({stored: new R._Stored()});
}

function updateTtl(store, c, r) {
  const R = cs._UpdateTtlResponse;
  const it = store.item(c, r.cache_key);
  let ttl, ok;
  if (r.has_overwrite_to_milliseconds) ttl = requireTtl(r.overwrite_to_milliseconds);
  else if (r.has_increase_to_milliseconds) ttl = requireTtl(r.increase_to_milliseconds);
  else if (r.has_decrease_to_milliseconds) ttl = requireTtl(r.decrease_to_milliseconds);
  else throw new Failure(grpc.status.INVALID_ARGUMENT, 'UpdateTtl needs a TTL');
  if (!it) return new R({missing: new R._Missing()});
  const remaining = it.expires - Date.now();
  if (r.has_overwrite_to_milliseconds) ok = true;
  else if (r.has_increase_to_milliseconds) ok = ttl > remaining;
  else ok = ttl < remaining;
  if (!ok) return new R({not_set: new R._NotSet()});
  it.expires = Date.now() + ttl;
  return new R({set: new R._Set()});
}

function controlHandlers(store) {
  return {
    CreateCache: (r) => {
      const name = requireName(r.cache_name);
      if (store.caches.has(name))
        throw new Failure(grpc.status.ALREADY_EXISTS, `Cache already exists: ${name}`);
      store.caches.set(name, new Map());
      return new ct._CreateCacheResponse();
    },
    DeleteCache: (r) => {
      store.cache(requireName(r.cache_name));
      store.caches.delete(r.cache_name);
      return new ct._DeleteCacheResponse();
    },
    FlushCache: (r) => {
      store.cache(requireName(r.cache_name)).clear();
      return new ct._FlushCacheResponse();
    },
    ListCaches: () => {
      const names = [...store.caches.keys()].sort();
      return new ct._ListCachesResponse({
        cache: names.map((n) => new ct._Cache({cache_name: n})), next_token: ''});
    },
  };
}

// --- int64 without loss: Increment's amount and value as decimal strings ------

function incrementDefinition(def) {
  return Object.assign({}, def, {
    requestDeserialize: (bytes) => {
      const rd = new pb.BinaryReader(new Uint8Array(bytes));
      const m = {cache_key: new Uint8Array(0), amount: '0', ttl_milliseconds: 0};
      while (rd.nextField() && !rd.isEndGroup()) {
        const f = rd.getFieldNumber();
        if (f === 1) m.cache_key = rd.readBytes();
        else if (f === 2) m.amount = rd.readInt64String();
        else if (f === 3) m.ttl_milliseconds = Number(rd.readUint64String());
        else rd.skipField();
      }
      return m;
    },
    responseSerialize: (m) => {
      const w = new pb.BinaryWriter();
      if (m.value !== '0') w.writeInt64String(1, m.value);
      return Buffer.from(w.getResultBuffer());
    },
  });
}

// --- the server --------------------------------------------------------------

function authorized(call, key) {
  if (key === null) return true;
  const got = call.metadata.get('authorization');
  return got.length > 0 && String(got[0]) === key;
}

function fail(cb, e) {
  if (e instanceof Failure) cb({code: e.code, details: e.message});
  else cb({code: grpc.status.INTERNAL, details: String(e && e.message)});
}

function wrapUnary(fn, key) {
  return (call, cb) => {
    try {
      if (!authorized(call, key))
        throw new Failure(grpc.status.UNAUTHENTICATED, 'Invalid authorization token');
      cb(null, fn(call));
    } catch (e) {
      fail(cb, e);
    }
  };
}

function wrapStream(fn, key) {
  return (call) => {
    try {
      if (!authorized(call, key))
        throw new Failure(grpc.status.UNAUTHENTICATED, 'Invalid authorization token');
      for (const m of fn(call)) call.write(m);
      call.end();
    } catch (e) {
      const err = e instanceof Failure ? e : new Failure(grpc.status.INTERNAL, String(e.message));
      call.emit('error', {code: err.code, details: err.message});
    }
  };
}

function cacheOf(store, call) {
  const v = call.metadata.get('cache');
  if (!v.length || !String(v[0]))
    throw new Failure(grpc.status.INVALID_ARGUMENT, 'the cache metadata is missing');
  return store.cache(String(v[0]));
}

function buildServer(opts) {
  const store = new Store();
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 64 << 20,
    'grpc.max_send_message_length': 64 << 20,
  });
  const dh = dataHandlers(store);
  const sdef = Object.assign({}, cs.UnimplementedScsService.definition);
  sdef.Increment = incrementDefinition(sdef.Increment);
  const impl = {};
  for (const name of Object.keys(sdef)) {
    const h = dh[name];
    if (!h) {
      impl[name] = (call, cb) => {
        const e = {code: grpc.status.UNIMPLEMENTED, details: `${name} is not emulated`};
        if (cb) cb(e); else call.emit('error', e);
      };
    } else if (sdef[name].responseStream) {
      impl[name] = wrapStream((call) => h(cacheOf(store, call), call.request), opts.key);
    } else {
      impl[name] = wrapUnary((call) => h(cacheOf(store, call), call.request), opts.key);
    }
  }
  server.addService(sdef, impl);
  const ch = controlHandlers(store);
  const cdef = ct.UnimplementedScsControlService.definition;
  const cimpl = {};
  for (const name of Object.keys(cdef)) {
    const h = ch[name];
    cimpl[name] = h ? wrapUnary((call) => h(call.request), opts.key)
                    : (call, cb) => cb({code: grpc.status.UNIMPLEMENTED, details: `${name} is not emulated`});
  }
  server.addService(cdef, cimpl);
  return server;
}

function main() {
  const opts = parseArgs(process.argv);
  const server = buildServer(opts);
  const fs = require('fs');
  const creds = opts.tls
    ? grpc.ServerCredentials.createSsl(null, [{cert_chain: fs.readFileSync(opts.tls.cert),
                                               private_key: fs.readFileSync(opts.tls.key)}], false)
    : grpc.ServerCredentials.createInsecure();
  server.bindAsync(`${opts.host}:${opts.port}`, creds,
    (err, port) => {
      if (err) {
        console.error('emulator: ' + err.message);
        process.exit(1);
      }
      process.stdout.write(`listening ${port}\n`);
    });
  const stop = () => server.tryShutdown(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
