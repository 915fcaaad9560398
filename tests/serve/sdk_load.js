#!/usr/bin/env node
// The SDK's half of scripts/bench/serve.sh: CONCURRENCY promises doing `get`
// of one 100-byte item through Momento's JS SDK, WARMUP seconds unmeasured,
// then SECONDS measured; the server's CPU (process PID) is read from /proc
// at the start and at the end of the measured window only, so the client's
// start, connections, setup calls and exit are not in it. Prints one line:
//   load: CALLS calls in S s = RPS calls/s, server NS ns on CPU (TICKS ticks), W wakeups, errors E
// NS sums /proc/PID/task/*/schedstat (every thread: a node server's
// collector and compiler threads count, not only its main thread); TICKS is
// utime + stime of /proc/PID/stat (the whole process, in clock ticks); W is
// how many times the server's main thread went to sleep and was woken (its
// voluntary context switches): CALLS / W is how many calls one turn of its
// event loop served, which decides much of the CPU per call.
//   node sdk_load.js --port P --server-pid PID [CONCURRENCY [SECONDS [WARMUP]]]
'use strict';
const fs = require('fs');
const {sdk, client} = require('../momento/sdk');

function args(argv) {
  const o = {port: 0, pid: 0, rest: []};
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === '--port') o.port = Number(argv[++i]);
    else if (argv[i] === '--server-pid') o.pid = Number(argv[++i]);
    else o.rest.push(argv[i]);
  }
  if (!o.port || !o.pid) throw new Error('usage: sdk_load.js --port P --server-pid PID [C [S [W]]]');
  return o;
}

// The server's CPU so far: nanoseconds over its live threads, and ticks.
function serverCpu(pid) {
  let ns = 0;
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch (e) { /* a thread that ended meanwhile */ }
  }
  const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' '); // f[0] is field 3
  const m = /voluntary_ctxt_switches:\s*(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return {ns, ticks: Number(f[11]) + Number(f[12]), wakeups: Number(m[1])};
}

async function main() {
  const o = args(process.argv);
  const conc = Number(o.rest[0] || 50), seconds = Number(o.rest[1] || 5);
  const warmup = Number(o.rest[2] === undefined ? 1 : o.rest[2]);
  const c = await client(o.port, null, false);
  await c.createCache('bench');
  await c.set('bench', 'k', 'v'.repeat(100), {ttl: 600});
  if (!((await c.get('bench', 'k')) instanceof sdk.CacheGet.Hit)) throw new Error('no hit');
  let calls = 0, errors = 0, cpu0 = null, t0 = 0n;
  const start = Date.now(), stop = start + (warmup + seconds) * 1000;
  const worker = async () => {
    while (Date.now() < stop) {
      if (!cpu0 && Date.now() >= start + warmup * 1000) {
        cpu0 = serverCpu(o.pid), t0 = process.hrtime.bigint();
        calls = 0, errors = 0; // what completes from now on is the window's
      }
      const r = await c.get('bench', 'k');
      if (r instanceof sdk.CacheGet.Hit) calls++; else errors++;
    }
  };
  await Promise.all(Array.from({length: conc}, worker));
  const cpu1 = serverCpu(o.pid), dt = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`load: ${calls} calls in ${dt.toFixed(2)} s = ${(calls / dt).toFixed(0)} calls/s, ` +
              `server ${cpu1.ns - cpu0.ns} ns on CPU (${cpu1.ticks - cpu0.ticks} ticks), ` +
              `${cpu1.wakeups - cpu0.wakeups} wakeups, errors ${errors}`);
  c.close();
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
