// Shared helpers for the scripts that drive the emulator with Momento's
// official JS SDK (@gomomento/sdk): argument parsing, the client, asserts.
'use strict';

const sdk = require('@gomomento/sdk');

function parseArgs(argv) {
  const o = {port: 0, key: null, tls: false, rest: []};
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === '--port') o.port = Number(argv[++i]);
    else if (argv[i] === '--key') o.key = argv[++i];
    else if (argv[i] === '--tls') o.tls = true;
    else o.rest.push(argv[i]);
  }
  if (!o.port) throw new Error('--port is required');
  return o;
}

// A v1 API key as Momento hands them out: base64 of {"endpoint", "api_key"}.
function v1Key(secret) {
  return Buffer.from(JSON.stringify({endpoint: 'emulator.invalid', api_key: secret}))
    .toString('base64');
}

// Without a key: forMomentoLocal (plaintext, empty authorization). With one:
// the key with every endpoint pointed at the emulator, plaintext; with tls,
// over TLS to localhost (an emulator started with --tls; grpc-js trusts the
// certificate in GRPC_DEFAULT_SSL_ROOTS_FILE_PATH).
function credential(port, key, tls) {
  if (key === null)
    return sdk.CredentialProvider.forMomentoLocal({hostname: '127.0.0.1', port});
  const ep = `${tls ? 'localhost' : '127.0.0.1'}:${port}`;
  return sdk.CredentialProvider.fromString({
    apiKey: v1Key(key),
    endpointOverrides: {cacheEndpoint: ep, controlEndpoint: ep, tokenEndpoint: ep,
                        secureConnection: !!tls},
  });
}

// timeoutMs: the client's deadline per call (the Laptop preset's 5 s by
// default); tests that queue thousands of calls on a busy machine raise it.
async function client(port, key, tls, timeoutMs) {
  const config = sdk.Configurations.Laptop.v1();
  return sdk.CacheClient.create({
    configuration: timeoutMs ? config.withClientTimeoutMillis(timeoutMs) : config,
    credentialProvider: credential(port, key, tls),
    defaultTtlSeconds: 60,
  });
}

let checks = 0;

// Asserts that resp is an instance of cls (e.g. sdk.CacheGet.Hit).
function isA(what, resp, cls) {
  checks++;
  if (!(resp instanceof cls))
    throw new Error(`${what}: expected ${cls.name}, got ${resp.constructor.name}: ${resp.toString()}`);
  return resp;
}

function eq(what, got, want) {
  checks++;
  const g = JSON.stringify(got), w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what}: expected ${w}, got ${g}`);
}

function ok(what, cond) {
  checks++;
  if (!cond) throw new Error(`${what}: assertion failed`);
}

function errCode(what, resp, code) {
  checks++;
  if (typeof resp.errorCode !== 'function')
    throw new Error(`${what}: expected an error ${code}, got ${resp.constructor.name}`);
  if (resp.errorCode() !== code)
    throw new Error(`${what}: expected ${code}, got ${resp.errorCode()}: ${resp.message()}`);
}

function run(main) {
  main().then(() => {
    console.log(`ok: ${checks} checks`);
    process.exit(0);
  }, (e) => {
    console.error('FAIL: ' + (e && e.stack ? e.stack : e));
    process.exit(1);
  });
}

module.exports = {sdk, parseArgs, client, v1Key, isA, eq, ok, errCode, run};
