#!/usr/bin/env node
/**
 * npm run bench [-- --quick] [-- --write]
 *
 * Every figure is printed beside a baseline measured in the same run, on the same machine, and the
 * ratio between them; goals from issue #6 are printed as met / MISSED. Nothing here needs a GPU:
 * the driver simulator plays the GPUs. `--write` stores the table in bench/RESULTS.md.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Gauge, Registry } from 'prom-client';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const lib = await import(path.join(ROOT, 'dist', 'index.js'));
const { openGpuTelemetry, registerGpuMetrics, createTelemetryServer, createKernelCapture, DCGM_DEFAULT_METRICS, DCGM_LABEL_NAMES } = lib;
const { loadNative } = await import(path.join(ROOT, 'dist', 'native.js'));

const args = new Set(process.argv.slice(2));
const QUICK = args.has('--quick');
// --only=snapshot,close runs just those sections (snapshot, sampler, scrape, series, capture, hung, close, cli, scale, inject).
const ONLY = [...args].find((a) => a.startsWith('--only='))?.slice(7).split(',') ?? null;
const want = (section) => ONLY === null || ONLY.includes(section);
const WRITE = args.has('--write');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-bench-'));
const rows = [];
const notes = [];

// systeminformation copies the environment when it loads: its stand-in nvidia-smi and lspci must
// be on PATH before the import.
const SI_BIN = standIns(8);
process.env.PATH = `${SI_BIN}:${process.env.PATH}`;
const { default: si } = await import('systeminformation');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => quantile(xs, 0.5);
function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
function fmtNs(ns) {
  if (ns < 1e3) return `${ns.toFixed(0)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(2)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(2)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}
const fmtRate = (r) => (r >= 1e6 ? `${(r / 1e6).toFixed(2)} M/s` : r >= 1e3 ? `${(r / 1e3).toFixed(1)} k/s` : `${r.toFixed(0)}/s`);
const fmtBytes = (b) => `${(b / 1048576).toFixed(1)} MiB`;

/** Records one result line: ours, the baseline, the ratio (baseline / ours for costs). */
function row(section, what, ours, baseline, { fmt = fmtNs, better = 'lower', goal = null, met = null } = {}) {
  const ratio = baseline == null ? null : better === 'lower' ? baseline.value / ours : ours / baseline.value;
  const r = {
    section,
    what,
    ours: fmt(ours),
    baseline: baseline ? `${baseline.name}: ${fmt(baseline.value)}` : '—',
    ratio: ratio == null ? '—' : `${ratio >= 100 ? ratio.toFixed(0) : ratio.toFixed(2)}×`,
    goal: goal ?? '',
    met: met == null ? '' : met ? 'met' : 'MISSED',
  };
  rows.push(r);
  console.log(`  ${what.padEnd(58)} ${r.ours.padStart(12)}   ${r.baseline.padEnd(40)} ${r.ratio.padStart(9)}  ${r.goal}${r.met ? ` → ${r.met}` : ''}`);
}

function scenarioWith(count, extra = {}) {
  const base = JSON.parse(fs.readFileSync(path.join(ROOT, 'scenarios', 'h100-sxm-8.json'), 'utf8'));
  base.name = `bench-h100-x${count}`;
  base.devices[0].count = count;
  delete base.dcgm; // GPM on Hopper: every profiling field still has a source
  Object.assign(base, extra);
  const file = path.join(TMP, `${base.name}-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify(base));
  return file;
}

// Waits for a new sample without calling snapshot() (which would decode it before we time it).
async function nextSample(gpu, timeoutMs = 10_000) {
  const seq = gpu.stats().samples;
  const deadline = Date.now() + timeoutMs;
  while (gpu.stats().samples === seq) {
    if (Date.now() > deadline) throw new Error('no new sample');
    await sleep(1);
  }
}

// ---- 1. reading a snapshot ---------------------------------------------------------------------

/** Stand-in nvidia-smi and lspci printing what systeminformation parses, for `devices` GPUs. */
function standIns(devices) {
  const bin = path.join(TMP, `bin-${devices}`);
  fs.mkdirSync(bin, { recursive: true });
  const bus = (i) => `${(0x18 + i * 0x10).toString(16).padStart(2, '0')}:00.0`;
  const smi = [];
  const pci = [];
  for (let i = 0; i < devices; i++) {
    smi.push(`550.90.07, 0x16C110DE, NVIDIA H100 80GB HBM3, 00000000:${bus(i)}, [N/A], 81559, 70142, 10862, 87, 52, 61, 68, 612.45, 700.00, 1980, 2619`);
    pci.push(`${bus(i)} 3D controller: NVIDIA Corporation GH100 [H100 SXM5 80GB] (rev a1)`, '\tSubsystem: NVIDIA Corporation Device 16c1', '\tKernel driver in use: nvidia', '');
  }
  fs.writeFileSync(path.join(bin, 'nvidia-smi'), `#!/bin/sh\ncat <<'EOF'\n${smi.join('\n')}\nEOF\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'lspci'), `#!/bin/sh\ncat <<'EOF'\n${pci.join('\n')}\nEOF\n`, { mode: 0o755 });
  return bin;
}

async function withPath(_bin, fn) {
  return fn(); // the stand-ins are on PATH for the whole run (see SI_BIN)
}

async function systeminformationCost(devices, calls) {
  return withPath(standIns(devices), async () => {
    const check = await si.graphics();
    const nvidia = check.controllers.filter((c) => /nvidia/i.test(c.vendor) && c.memoryUsed !== undefined);
    if (nvidia.length !== devices) throw new Error(`systeminformation saw ${nvidia.length} NVIDIA GPUs with readings, expected ${devices}`);
    const times = [];
    for (let i = 0; i < calls; i++) {
      const t0 = performance.now();
      await si.graphics();
      times.push((performance.now() - t0) * 1e6);
    }
    return { median: median(times), gpus: nvidia.length };
  });
}

async function eventLoopDelayWhile(fn, ms) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const end = Date.now() + ms;
  while (Date.now() < end) await fn();
  h.disable();
  return h.percentile(99) / 1e6;
}

/** Reads every part of a device sample (values, statuses, sources, reasons, links, processes). */
function touchDevice(d) {
  let n = 0;
  for (const k in d.fields) n += d.fields[k] ?? 0;
  for (const k in d.status) n += d.status[k].length + d.source[k].length;
  for (const k in d.reasons) n += d.reasons[k].length;
  for (const l of d.nvlinks) n += l.txBytesPerSecond ?? 0;
  for (const p of d.processes) n += p.pid;
  return n + (d.clockEventReasons?.length ?? 0) + d.state.length;
}

/**
 * The least any snapshot() can do for "one field per GPU" under this API and DESIGN.md: one native
 * copy of the published sample (JS may not read native memory), then per GPU a plain object with
 * every field as an own property (what `d.fields` is: Object.keys, JSON and spread see them all).
 * No status, no freezing, no laziness, no snapshot object. It reads the sample into buffers of its
 * own (the handle's readSnapshot is internal: used here only to measure).
 */
function floorReader(gpu) {
  const { layout } = gpu.decoder;
  const buffer = new ArrayBuffer(layout.byteLength);
  const header = new Float64Array(8);
  const n = layout.devices;
  const count = lib.FIELD_NAMES.length;
  const values = new Float64Array(buffer, layout.valuesOffset, n * count);
  const statuses = new Uint8Array(buffer, layout.statusOffset, n * count);
  const ok = lib.FIELD_STATUSES.indexOf('ok');
  const build = new Function('v', 's', 'b', `let x; return {${lib.FIELD_NAMES.map((f, i) => `${f}: s[b + ${i}] === ${ok} && (x = v[b + ${i}]) === x ? x : null`).join(', ')}};`);
  let seq = 0;
  return () => {
    gpu.handle.readSnapshot(buffer, seq, header);
    seq = header[0];
    let sum = 0;
    for (let d = 0; d < n; d++) sum += build(values, statuses, d * count).powerWatts ?? 0;
    return sum;
  };
}

async function snapshotCosts(devices) {
  const gpu = await openGpuTelemetry({ simulate: scenarioWith(devices), intervalMs: 10 });
  try {
    await nextSample(gpu);
    // Fresh: the first snapshot() after a new sample, and what a reader does with it. Alternating
    // samples: one field per GPU (a request handler, a gauge), or every part of every GPU (a scrape,
    // JSON): the cost of decoding, however it is split between snapshot() and the first reads.
    // In turn with them, the floor (floorReader) on the same kind of sample.
    const fresh = [];
    const freshAll = [];
    const floor = [];
    const readFloor = floorReader(gpu);
    let sink0 = 0;
    for (let i = 0; i < (QUICK ? 150 : 600); i++) {
      await nextSample(gpu);
      const t0 = process.hrtime.bigint();
      if (i % 3 === 2) {
        sink0 += readFloor();
        floor.push(Number(process.hrtime.bigint() - t0));
        continue;
      }
      const s = gpu.snapshot();
      if (i % 3 === 0) {
        for (const d of s.devices) sink0 += d.fields.powerWatts ?? 0;
        fresh.push(Number(process.hrtime.bigint() - t0));
      } else {
        for (const d of s.devices) sink0 += touchDevice(d);
        freshAll.push(Number(process.hrtime.bigint() - t0));
      }
    }
    // Cached: no new sample since the last call (the common case in a scrape or a request path).
    const batch = 20_000;
    const cached = [];
    for (let b = 0; b < 7; b++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < batch; i++) gpu.snapshot();
      cached.push(Number(process.hrtime.bigint() - t0) / batch);
    }
    // Field access over every device and field of one snapshot.
    const snap = gpu.snapshot();
    const names = lib.FIELD_NAMES;
    let sink = 0;
    const accessTimes = [];
    for (let b = 0; b < 7; b++) {
      const t0 = process.hrtime.bigint();
      for (let rep = 0; rep < 200; rep++) {
        for (const d of snap.devices) for (const n of names) sink += d.fields[n] ?? 0;
      }
      accessTimes.push(Number(process.hrtime.bigint() - t0) / (200 * snap.devices.length * names.length));
    }
    // Allocation on the hot (cached) path: heap growth over many calls, with GC out of the way.
    globalThis.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < 20_000; i++) gpu.snapshot();
    const allocPerCall = (process.memoryUsage().heapUsed - heap0) / 20_000;
    return { fresh: median(fresh), freshAll: median(freshAll), floor: median(floor), cached: median(cached), access: median(accessTimes), allocPerCall, sink: sink + sink0, gpu };
  } catch (e) {
    await gpu.close();
    throw e;
  }
}

async function benchSnapshot() {
  console.log('\n1. Reading a snapshot of 8 GPUs (every field)');
  const one = await snapshotCosts(1);
  await one.gpu.close();
  const ours = await snapshotCosts(8);
  const base = await systeminformationCost(8, QUICK ? 5 : 20);
  row('snapshot', 'snapshot() + one field per GPU, new sample', ours.fresh, { name: 'si.graphics()', value: base.median }, {
    goal: '≥ 1,000× faster',
    met: base.median / ours.fresh >= 1000,
  });
  row('snapshot', 'the floor of that row: native copy + a plain 51-field object per GPU (floorReader)', ours.floor, { name: 'si.graphics()', value: base.median });
  row('snapshot', 'snapshot() + one field per GPU against that floor', ours.fresh, { name: 'the floor', value: ours.floor });
  row('snapshot', 'snapshot() + every part of every GPU, new sample', ours.freshAll, { name: 'si.graphics()', value: base.median });
  row('snapshot', 'snapshot(), no new sample since the last call', ours.cached, { name: 'si.graphics()', value: base.median }, {
    goal: '≥ 1,000× faster',
    met: base.median / ours.cached >= 1000,
  });
  row('snapshot', 'one field access (d.fields.x)', ours.access, null);
  row('snapshot', 'heap bytes allocated per cached snapshot(), 8 GPUs', ours.allocPerCall, { name: '1 GPU', value: one.allocPerCall }, {
    fmt: (b) => `${b.toFixed(1)} B`,
    goal: 'no allocation proportional to fields',
    met: ours.allocPerCall < one.allocPerCall + 64,
  });
  // Event-loop delay: systeminformation's nvidia-smi call is synchronous (execFileSync).
  const siDelay = await withPath(standIns(8), () => eventLoopDelayWhile(() => si.graphics(), QUICK ? 1500 : 3000));
  const ourDelay = await eventLoopDelayWhile(async () => {
    ours.gpu.snapshot();
    await sleep(1);
  }, QUICK ? 1500 : 3000);
  row('snapshot', 'event-loop delay p99 while reading (sampler at 10 ms)', ourDelay * 1e6, { name: 'while si.graphics()', value: siDelay * 1e6 });
  await ours.gpu.close();
}

// ---- 2. sampling overhead ----------------------------------------------------------------------

async function samplerCost(devices, intervalMs, ms) {
  const gpu = await openGpuTelemetry({ simulate: scenarioWith(devices), intervalMs });
  try {
    await sleep(Math.min(1000, 5 * intervalMs));
    const s0 = gpu.stats();
    const t0 = performance.now();
    await sleep(ms);
    const s1 = gpu.stats();
    const wallNs = (performance.now() - t0) * 1e6;
    const samples = s1.samples - s0.samples;
    const cpu = s1.threadCpuNs - s0.threadCpuNs;
    return { perDevice: cpu / samples / devices, coreShare: cpu / wallNs, samples, callsPerSample: (s1.vendorCalls - s0.vendorCalls) / samples };
  } finally {
    await gpu.close();
  }
}

async function benchSampler() {
  console.log('\n2. Sampling overhead: CPU of the sampler thread (includes the in-process simulator answering)');
  for (const intervalMs of [100, 10]) {
    const r = await samplerCost(8, intervalMs, QUICK ? 1500 : 4000);
    row('sampler', `8 GPUs every ${intervalMs} ms: CPU per device per sample`, r.perDevice, { name: 'goal', value: 20_000 }, {
      goal: '< 20 µs',
      met: r.perDevice < 20_000,
    });
    row('sampler', `8 GPUs every ${intervalMs} ms: share of one core`, r.coreShare * 100, null, { fmt: (p) => `${p.toFixed(2)} %` });
    notes.push(`sampler at ${intervalMs} ms: ${r.samples} samples, ${r.callsPerSample.toFixed(0)} vendor calls per sample (8 GPUs)`);
  }
}

// ---- 3. scrape ---------------------------------------------------------------------------------

/** The straightforward way: a prom-client Gauge per dcgm metric, set from the snapshot at collect(). */
function straightforwardRegistry(gpu) {
  const registry = new Registry();
  for (const spec of DCGM_DEFAULT_METRICS) {
    new Gauge({
      name: spec.name,
      help: spec.help,
      labelNames: [...DCGM_LABEL_NAMES],
      registers: [registry],
      collect() {
        this.reset();
        const snap = gpu.snapshot();
        for (const d of snap.devices) {
          const v = d.fields[spec.field];
          if (v === null || d.status[spec.field] !== 'ok') continue;
          this.set(
            {
              gpu: String(d.index),
              UUID: d.uuid,
              pci_bus_id: gpu.devices[d.index].pciBusId,
              device: `nvidia${d.index}`,
              modelName: d.name,
              Hostname: os.hostname(),
              DCGM_FI_DRIVER_VERSION: gpu.driver.driverVersion,
            },
            v * spec.scale,
          );
        }
      },
    });
  }
  return registry;
}

/** p99 of n renders and of n spins of `ns` each, in turn (render, spin, render, …). */
async function interleavedNoise(registry, ns, n) {
  const renders = [];
  const spins = [];
  for (let i = 0; i < n; i++) {
    let t0 = process.hrtime.bigint();
    await registry.metrics();
    renders.push(Number(process.hrtime.bigint() - t0));
    t0 = process.hrtime.bigint();
    const end = t0 + BigInt(Math.round(ns));
    while (process.hrtime.bigint() < end);
    await null;
    spins.push(Number(process.hrtime.bigint() - t0));
  }
  return { render: quantile(renders, 0.99), busy: quantile(spins, 0.99) };
}

async function scrapeTimes(registry, n) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await registry.metrics();
    times.push(Number(process.hrtime.bigint() - t0));
  }
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99) };
}

async function loadTest(handler, seconds) {
  const server = http.createServer(handler);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  const result = await autocannon({ url: `http://127.0.0.1:${port}/metrics`, connections: 8, duration: seconds });
  await new Promise((r) => server.close(r));
  return result.requests.average;
}

async function scrapeCosts(devices, withLoad) {
  const gpu = await openGpuTelemetry({ simulate: scenarioWith(devices), intervalMs: 100 });
  try {
    await nextSample(gpu);
    await nextSample(gpu);
    const ours = new Registry();
    const registered = registerGpuMetrics(ours, gpu, { names: 'dcgm' });
    const plain = straightforwardRegistry(gpu);
    const n = QUICK ? 300 : 2000;
    // What /metrics answers (renderText), and the same collector through prom-client's formatter.
    const direct = { metrics: async () => registered.renderText() };
    await scrapeTimes(direct, 50);
    await scrapeTimes(ours, 50);
    await scrapeTimes(plain, 50);
    const a = await scrapeTimes(direct, n);
    // The machine's own noise, in the same conditions: renders and busy loops as long as the
    // render's p50, in turn; what the busy loop suffers (scheduler, other processes) is not ours.
    const paired = await interleavedNoise(direct, a.p50, n);
    const viaPromClient = await scrapeTimes(ours, n);
    const b = await scrapeTimes(plain, n);
    const count = (t) => t.split('\n').filter((l) => l && !l.startsWith('#')).length;
    const series = { ours: count(registered.renderText()), plain: count(await plain.metrics()) };
    // Heap allocated per render (garbage: what makes the collector pause a scrape now and then).
    const allocated = async (scraper) => {
      const per = [];
      for (let r = 0; r < 5; r++) {
        globalThis.gc?.();
        const h0 = process.memoryUsage().heapUsed;
        for (let i = 0; i < 20; i++) await scraper.metrics();
        per.push((process.memoryUsage().heapUsed - h0) / 20);
      }
      return median(per);
    };
    const heap = { ours: await allocated(direct), plain: await allocated(plain) };
    let rps = null;
    if (withLoad) {
      const seconds = QUICK ? 3 : 10;
      const server = createTelemetryServer(gpu, { names: 'dcgm' });
      const ourRps = await loadTest((req, res) => server.server.emit('request', req, res), seconds);
      const plainRps = await loadTest(async (_req, res) => {
        const body = await plain.metrics();
        res.writeHead(200, { 'content-type': plain.contentType });
        res.end(body);
      }, seconds);
      rps = { ours: ourRps, plain: plainRps };
    }
    return { ours: a, plain: b, viaPromClient, series, rps, heap, paired };
  } finally {
    await gpu.close();
  }
}

async function benchScrape() {
  console.log('\n3. Scrape: /metrics for 8 GPUs, dcgm-exporter default counters');
  const r = await scrapeCosts(8, true);
  notes.push(`scrape content: ours ${r.series.ours} series (the dcgm value series plus the health series: device_up, the field counts and a health series per field without a reading, the process-wide series); the straightforward registry ${r.series.plain} value series only`);
  row('scrape', 'render p50 (/metrics: renderText)', r.ours.p50, { name: 'a Gauge per field', value: r.plain.p50 });
  row('scrape', 'render p99 (/metrics: renderText)', r.ours.p99, { name: 'a Gauge per field', value: r.plain.p99 }, {
    goal: 'p99 < 1 ms and faster',
    met: r.ours.p99 < 1e6 && r.ours.p99 < r.plain.p99,
  });
  // The machine's own share of that p99: renders and spins of the render's p50, in turn.
  row('scrape', 'render p99, renders in turn with a busy loop as long as p50', r.paired.render, { name: 'that busy loop (machine noise)', value: r.paired.busy });
  row('scrape', 'heap allocated per render', r.heap.ours, { name: 'a Gauge per field', value: r.heap.plain }, { fmt: (b) => `${(b / 1024).toFixed(1)} KiB` });
  row('scrape', 'render p99, same collector via prom-client Registry', r.viaPromClient.p99, { name: 'a Gauge per field', value: r.plain.p99 });
  row('scrape', 'requests/s on loopback (autocannon, 8 connections)', r.rps.ours, { name: 'a Gauge per field', value: r.rps.plain }, {
    fmt: fmtRate,
    better: 'higher',
  });
}

// ---- 4. capture --------------------------------------------------------------------------------

function rssBytes() {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function benchCapture() {
  console.log('\n4. Capture: CUPTI buffers → KernelTrace → Chrome JSON (simulated CUPTI flood)');
  const records = QUICK ? 200_000 : 1_000_000;
  const capture = createKernelCapture({ simulate: 'capture-flood' });
  // Dormant: before arm() nothing is subscribed or enabled, and the simulator produced nothing.
  const before = loadNative().captureCuptiState();
  const dormantOk = !before.subscribed && before.enabledKinds.length === 0 && (before.simulator?.recordsProduced ?? 0) === 0;
  const t0 = performance.now();
  const cap = capture.arm({
    steps: 100_000,
    maxRecords: records,
    maxBytes: 1024 * 1048576,
    timeoutMs: 600_000,
    kinds: { kernels: true, memcpy: false, memset: false, runtimeApi: false, driverApi: false, nvtx: false },
  });
  const trace = await cap.done;
  const captureMs = performance.now() - t0;
  const t1 = performance.now();
  const kernels = trace.kernels;
  const typedMs = performance.now() - t1;
  const t2 = performance.now();
  let jsonBytes = 0;
  for (const chunk of trace.chromeTraceChunks()) jsonBytes += chunk.length;
  const jsonMs = performance.now() - t2;
  // Baselines: the straightforward way — plain objects per record, then JSON.stringify.
  const t3 = performance.now();
  const objects = [];
  for (const k of kernels) objects.push({ name: k.name, start: k.startNs, end: k.endNs, device: k.deviceId, stream: k.streamId, correlation: k.correlationId, grid: [k.gridX, k.gridY, k.gridZ], block: [k.blockX, k.blockY, k.blockZ] });
  const objMs = performance.now() - t3;
  const t4 = performance.now();
  const events = objects.map((o) => ({ name: o.name, ph: 'X', ts: o.start / 1000, dur: (o.end - o.start) / 1000, pid: o.device, tid: o.stream, args: { correlation: o.correlation, grid: o.grid, block: o.block } }));
  const naiveJson = JSON.stringify({ traceEvents: events });
  const naiveMs = performance.now() - t4;
  row('capture', `${kernels.length.toLocaleString('en')} kernel records captured (native, producer-bound)`, kernels.length / (captureMs / 1000), null, { fmt: fmtRate, better: 'higher' });
  row('capture', 'to typed KernelTrace records', kernels.length / (typedMs / 1000), { name: 'plain objects from them', value: kernels.length / (objMs / 1000) }, {
    fmt: fmtRate,
    better: 'higher',
    goal: '≥ 2 M/s',
    met: kernels.length / (typedMs / 1000) >= 2e6,
  });
  row('capture', `to Chrome JSON (${fmtBytes(jsonBytes)})`, kernels.length / (jsonMs / 1000), { name: `JSON.stringify (${fmtBytes(naiveJson.length)})`, value: kernels.length / (naiveMs / 1000) }, {
    fmt: fmtRate,
    better: 'higher',
    goal: '≥ 500 k/s',
    met: kernels.length / (jsonMs / 1000) >= 5e5,
  });

  // Memory bound: a flood against a 32 MiB cap; RSS sampled while it runs.
  globalThis.gc?.();
  const rss0 = rssBytes();
  let peak = rss0;
  const cap2 = capture.arm({ steps: 100_000, maxBytes: 32 * 1048576, maxRecords: 50_000_000, timeoutMs: 600_000 });
  const timer = setInterval(() => (peak = Math.max(peak, rssBytes())), 20);
  const t2b = await cap2.done;
  clearInterval(timer);
  peak = Math.max(peak, rssBytes());
  row('capture', `RSS growth, flood with maxBytes 32 MiB (${t2b.meta.reason}, truncated ${t2b.meta.truncated})`, peak - rss0, { name: 'cap + 64 MiB', value: 96 * 1048576 }, {
    fmt: fmtBytes,
    goal: '≤ cap + 64 MiB',
    met: peak - rss0 <= 96 * 1048576,
  });
  // arm() while CUPTI's first enable stalls its caller 2 s (a private copy of the simulator, so
  // this is its first enable), then the same with capture.prewarm() first.
  const { KernelCapture } = await import(path.join(ROOT, 'dist', 'capture', 'capture.js'));
  const { simulatorLibraryPath, SCENARIO_DIR } = await import(path.join(ROOT, 'dist', 'paths.js'));
  const slowSim = () => {
    const libraryPath = path.join(TMP, `sim-${Math.random().toString(16).slice(2)}.so`);
    fs.copyFileSync(simulatorLibraryPath('current'), libraryPath);
    const text = JSON.parse(fs.readFileSync(path.join(SCENARIO_DIR, 'capture-decode-loop.json'), 'utf8'));
    text.cupti.firstEnableDelayMs = 2000;
    return new KernelCapture({ cuptiLibrary: null, simulator: { libraryPath, scenarioText: JSON.stringify(text) } });
  };
  const slow = slowSim();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const ta = performance.now();
  const c3 = slow.arm({ steps: 1 });
  const armNs = (performance.now() - ta) * 1e6;
  await c3.ready;
  const armedMs = performance.now() - ta;
  loop.disable();
  c3.step();
  await c3.done;
  row('capture', 'arm() on the JS thread while CUPTI\'s first enable stalls 2 s', armNs, { name: 'a synchronous arm (the stall)', value: 2000e6 }, {
    goal: '≤ 5 ms',
    met: armNs <= 5e6,
  });
  row('capture', 'event-loop delay p99 during that stall', loop.percentile(99), { name: 'the stall', value: 2000e6 }, {
    goal: '≤ 5 ms',
    met: loop.percentile(99) <= 5e6,
  });
  notes.push(`first-enable stall 2 s: armed ${armedMs.toFixed(0)} ms after arm(); event-loop delay max meanwhile ${(loop.max / 1e6).toFixed(1)} ms`);
  const warmed = slowSim();
  const warm = await warmed.prewarm();
  const tb = performance.now();
  const c4 = warmed.arm({ steps: 1 });
  await c4.ready;
  const armedWarmMs = performance.now() - tb;
  c4.step();
  await c4.done;
  row('capture', 'arm() → armed after capture.prewarm() (the stall paid ahead)', armedWarmMs * 1e6, { name: 'without prewarm()', value: armedMs * 1e6 });
  notes.push(`capture.prewarm() with a 2 s first-enable stall: ${warm.elapsedMs} ms (set-up on the native thread ${warm.startMs.toFixed(0)} ms)`);

  // Dormant cost after the captures: nothing left enabled, and the event loop is not disturbed.
  const after = loadNative().captureCuptiState();
  const idleBefore = await eventLoopDelayWhile(() => sleep(1), 1000);
  row('capture', 'dormant: CUPTI subscribed/enabled before arm and after the end', dormantOk && !after.subscribed && after.enabledKinds.length === 0 ? 0 : 1, null, {
    fmt: (v) => (v === 0 ? 'none' : 'SOMETHING ENABLED'),
    goal: 'zero',
    met: dormantOk && !after.subscribed && after.enabledKinds.length === 0,
  });
  notes.push(`event-loop delay p99 with the capture module loaded and idle: ${idleBefore.toFixed(2)} ms`);
}

// ---- 5. event loop under a hung driver ---------------------------------------------------------

async function benchHungDriver() {
  console.log('\n5. Event loop while the driver hangs a call for 5 s');
  const idle = await eventLoopDelayWhile(() => sleep(1), QUICK ? 1000 : 2000);
  const scenario = JSON.parse(fs.readFileSync(path.join(ROOT, 'scenarios', 'h100-sxm-8.json'), 'utf8'));
  const trigger = path.join(TMP, 'hang');
  scenario.name = 'bench-hang';
  delete scenario.dcgm;
  scenario.faults = [{ type: 'hang', device: 1, call: 'nvmlDeviceGetPowerUsage', durationMs: 5000, whenFileExists: trigger }];
  const file = path.join(TMP, 'hang.json');
  fs.writeFileSync(file, JSON.stringify(scenario));
  const gpu = await openGpuTelemetry({ simulate: file, intervalMs: 100, staleAfterMs: 500 });
  const server = createTelemetryServer(gpu);
  const { port } = await server.listen(0);
  try {
    await nextSample(gpu);
    // The client's own first request (Node's fetch loads undici on first use: ~100 ms here) is
    // not the server's latency: one request to /healthz first.
    await (await fetch(`http://127.0.0.1:${port}/healthz`)).text();
    fs.writeFileSync(trigger, '');
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    const latencies = [];
    let sawStale = false;
    const end = Date.now() + 4500;
    while (Date.now() < end) {
      const t0 = performance.now();
      const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      latencies.push((performance.now() - t0) * 1e6);
      if (/gpu_telemetry_sample_stale 1/.test(body)) sawStale = true;
      await sleep(50);
    }
    h.disable();
    notes.push(
      `hung: ${latencies.length} /metrics requests during the hang; the first (the server's first render, after one /healthz request so that fetch's own start-up is not counted) ${(latencies[0] / 1e6).toFixed(1)} ms, the others at most ${(Math.max(...latencies.slice(1)) / 1e6).toFixed(1)} ms`,
    );
    fs.rmSync(trigger);
    const p99 = h.percentile(99);
    row('hung', 'event-loop delay p99 during the hang', p99, { name: 'idle, no sampler', value: idle * 1e6 }, {
      goal: '< 5 ms',
      met: p99 < 5e6,
    });
    row('hung', `/metrics latency max during the hang (stale reported: ${sawStale})`, Math.max(...latencies), null, {
      goal: '< 50 ms, with the stale status',
      met: Math.max(...latencies) < 50e6 && sawStale,
    });
  } finally {
    await server.close();
    await gpu.close();
  }
}

// ---- 5b. close() ---------------------------------------------------------------------------------

async function benchClose() {
  console.log('\n5b. close(): 8 simulated GPUs with XID events being watched (every CLI run pays it)');
  const times = [];
  for (let i = 0; i < (QUICK ? 10 : 30); i++) {
    const gpu = await openGpuTelemetry({ simulate: 'h100-sxm-8', intervalMs: 100 });
    await nextSample(gpu);
    await sleep(i % 7 * 13); // close at varying points of the sampling and event-wait cycles
    const t0 = performance.now();
    await gpu.close();
    times.push((performance.now() - t0) * 1e6);
  }
  times.sort((a, b) => a - b);
  const p50 = times[Math.floor(times.length / 2)];
  const max = times[times.length - 1];
  // It used to join the XID thread, which waits in nvmlEventSetWait for up to 250 ms per call.
  row('close', 'close() p50', p50, { name: 'goal', value: 20e6 }, { goal: '< 20 ms', met: p50 < 20e6 });
  row('close', 'close() max', max, { name: 'the XID wait it used to join', value: 250e6 }, { goal: '< 20 ms', met: max < 20e6 });
}

// ---- 3b. series per GPU ------------------------------------------------------------------------

// The series budget (issue #12): per GPU at most 64 (default names) / 32 (dcgm names) without
// opt-ins; a MIG instance adds its own. Counted from one scrape; not a timing.
async function benchSeries() {
  console.log('\n3b. Series per GPU (budget: default ≤ 64, dcgm ≤ 32 without opt-ins; per MIG instance in parentheses)');
  for (const scenario of ['h100-sxm-8', 'a100-pcie-2', 'gb10', 'h100-mig']) {
    const gpu = await openGpuTelemetry({ simulate: scenario, intervalMs: 100, processUtilization: true });
    try {
      for (let i = 0; i < 4; i++) await nextSample(gpu);
      const counts = (options) => {
        const text = registerGpuMetrics(new Registry(), gpu, options).renderText();
        const perGpu = new Map();
        const perInstance = new Map();
        for (const line of text.split('\n')) {
          if (!line || line.startsWith('#')) continue;
          const g = /[{,]gpu="(\d+)"/.exec(line)?.[1];
          if (g === undefined) continue;
          const gi = /[{,](?:gpu_instance|GPU_I_ID)="(\d+)"/.exec(line)?.[1];
          const map = gi === undefined ? perGpu : perInstance;
          const key = gi === undefined ? g : `${g}/${gi}`;
          map.set(key, (map.get(key) ?? 0) + 1);
        }
        const max = (m) => (m.size ? Math.max(...m.values()) : 0);
        return `${max(perGpu)}${perInstance.size ? ` (${max(perInstance)})` : ''}`;
      };
      const line = `${scenario.padEnd(14)} default ${counts({})}, dcgm ${counts({ names: 'dcgm' })}; default with --per-link --processes ${counts({ perLink: true, processes: true })}`;
      console.log(`  ${line}`);
      notes.push(`series per GPU: ${line}`);
    } finally {
      await gpu.close();
    }
  }
}

// ---- 5c. the CLI ----------------------------------------------------------------------------------

/** Wall time of a whole process, spawn to exit, n runs of each command in turn (A B A B …) after a warm-up. */
function processTimes(commands, n) {
  const times = commands.map(() => []);
  for (let i = -1; i < n; i++) {
    commands.forEach((argv, c) => {
      const t0 = process.hrtime.bigint();
      const r = spawnSync(argv[0], argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1048576 });
      const ns = Number(process.hrtime.bigint() - t0);
      if (r.status !== 0) throw new Error(`${argv.join(' ')} exited with ${r.status}: ${r.stderr}`);
      if (i >= 0) times[c].push(ns);
    });
  }
  return times.map(median);
}

async function benchCli() {
  console.log('\n5c. The CLI: `gpu-telemetry snapshot --simulate h100-sxm-8`, process start to exit');
  const n = QUICK ? 7 : 21;
  const cli = path.join(ROOT, 'dist', 'cli.js');
  const [text, json, node] = processTimes(
    [
      [process.execPath, cli, 'snapshot', '--simulate', 'h100-sxm-8'],
      [process.execPath, cli, 'snapshot', '--simulate', 'h100-sxm-8', '--json'],
      [process.execPath, '-e', ''],
    ],
    n,
  );
  const base = { name: 'node -e ""', value: node };
  row('cli', 'snapshot --simulate h100-sxm-8 (table), median', text, base, { goal: '< 0.5 s', met: text < 0.5e9 });
  row('cli', 'snapshot --simulate h100-sxm-8 --json, median', json, base, { goal: '< 0.5 s', met: json < 0.5e9 });
  notes.push(`CLI: medians of ${n} runs of each command, in turn, spawn to exit (node's own start-up is the baseline)`);
}

// ---- 6. scale ----------------------------------------------------------------------------------

async function benchScale() {
  console.log('\n6. Scale: 1, 8, 64 simulated GPUs (baseline: the 1-GPU figure × the GPU count, i.e. linear growth; ratio > 1 grows slower than linear)');
  let one = null;
  let eight = null;
  for (const devices of [1, 8, 64]) {
    const s = await snapshotCosts(devices);
    await s.gpu.close();
    const c = await samplerCost(devices, 100, QUICK ? 1000 : 2500);
    const r = await scrapeCosts(devices, false);
    const n = String(devices).padStart(2);
    const linear = (v) => (one && devices > 1 ? { name: `1 GPU × ${devices}`, value: v * devices } : null);
    row('scale', `${n} GPUs: snapshot() + one field per GPU, new sample`, s.fresh, linear(one?.fresh));
    row('scale', `${n} GPUs: snapshot() + every part, new sample`, s.freshAll, linear(one?.freshAll));
    row('scale', `${n} GPUs: sampler CPU per sample (all GPUs)`, c.perDevice * devices, linear(one?.sampler));
    row('scale', `${n} GPUs: scrape p50 (dcgm names, ${r.series.ours} series)`, r.ours.p50, linear(one?.p50));
    row('scale', `${n} GPUs: scrape p99`, r.ours.p99, linear(one?.p99));
    if (devices === 1) one = { fresh: s.fresh, freshAll: s.freshAll, sampler: c.perDevice, p50: r.ours.p50, p99: r.ours.p99 };
    if (devices === 8) eight = r.ours.p99;
    if (devices === 64) {
      row('scale', '64 GPUs: scrape p99 against 8 × the 8-GPU p99', r.ours.p99, { name: '8 GPUs p99 × 8', value: eight * 8 }, {
        goal: '≤ 8× the 8-GPU p99',
        met: r.ours.p99 <= eight * 8,
      });
    }
  }
}

// ---- main --------------------------------------------------------------------------------------

const started = Date.now();
console.log(`gpu-telemetry benchmarks${QUICK ? ' (--quick)' : ''}: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, Node ${process.version}`);
console.log(`  ${'what'.padEnd(58)} ${'ours'.padStart(12)}   ${'baseline (same run)'.padEnd(40)} ${'ratio'.padStart(9)}  goal`);
try {
  if (want('snapshot')) await benchSnapshot();
  if (want('sampler')) await benchSampler();
  if (want('scrape')) await benchScrape();
  if (want('series')) await benchSeries();
  if (want('capture')) await benchCapture();
  if (want('hung')) await benchHungDriver();
  if (want('close')) await benchClose();
  if (want('cli')) await benchCli();
  if (want('scale')) await benchScale();
  if (want('inject')) await (await import('./inject.mjs')).benchInject({ ROOT, TMP, QUICK, row, notes, fmtNs });
} finally {
  fs.rmSync(TMP, { recursive: true, force: true });
}
const missed = rows.filter((r) => r.met === 'MISSED');
console.log(`\n${rows.filter((r) => r.met === 'met').length} goals met, ${missed.length} missed; ${((Date.now() - started) / 1000).toFixed(0)} s`);
for (const n of notes) console.log(`  note: ${n}`);

if (WRITE) {
  const cpu = os.cpus()[0]?.model ?? '?';
  const lines = [
    '# Benchmark results',
    '',
    `Latest \`npm run bench -- --write\`: ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, Linux ${os.release()}.`,
    'The machine is shared (other jobs ran at the same time): compare the ratios, not the absolute figures.',
    'Baselines are measured in the same run. For costs the ratio is baseline / ours (higher is better for us); for rates, ours / baseline.',
    '',
    '| section | what | ours | baseline (same run) | ratio | goal | |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.section} | ${r.what} | ${r.ours} | ${r.baseline} | ${r.ratio} | ${r.goal} | ${r.met} |`),
    '',
    ...notes.map((n) => `- ${n}`),
    '',
  ];
  const extra = path.join(ROOT, 'bench', 'ANALYSIS.md');
  if (fs.existsSync(extra)) lines.push(fs.readFileSync(extra, 'utf8'));
  fs.writeFileSync(path.join(ROOT, 'bench', 'RESULTS.md'), lines.join('\n'));
  console.log('wrote bench/RESULTS.md');
}
process.exit(0);
