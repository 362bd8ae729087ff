#!/usr/bin/env node
/**
 * Leak check: N open → sample → capture → close cycles in one process, reporting the RSS and thread-count
 * slope (linear fit over the cycles after a warm-up). Exits 1 when threads grow or RSS grows
 * more than --max-kib-per-cycle.
 *
 *   node scripts/leak-check.mjs [--cycles 1000] [--scenario h100-sxm-8] [--max-kib-per-cycle 4] [--no-capture]
 *   node scripts/leak-check.mjs --valgrind [--cycles 20]
 *
 * --valgrind reruns the cycles under valgrind memcheck (node --jitless, so valgrind does not have
 * to follow V8's generated code) and fails on any "definitely lost" block allocated by our code:
 * the addon (gpu_telemetry.node) or the simulator library. Node's and V8's own end-of-process
 * leaks are not ours and are ignored: a record counts only when its allocation stack has one of
 * our frames (that filter is the suppression list, so it cannot go stale with Node versions).
 *
 * The capture of each cycle is small (2 steps, 1 MiB cap, 64 KiB buffers) and goes through the
 * simulator's CUPTI: subscribe, enable, buffers lent and returned, records parsed, disable, the
 * capture thread joined, the trace built. --no-capture leaves it out.
 * Needs dist/ (npx tsc -p tsconfig.build.json) and the native build.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const flag = (name) => process.argv.includes(`--${name}`);

const valgrind = flag('valgrind');
const cycles = Number(arg('cycles', valgrind ? '20' : '1000'));
const scenario = arg('scenario', 'h100-sxm-8');
const maxKiBPerCycle = Number(arg('max-kib-per-cycle', '4'));
const withCapture = !flag('no-capture');
let kernelsCaptured = 0;
if (!Number.isInteger(cycles) || cycles < 1) {
  console.error('--cycles must be a positive whole number');
  process.exit(2);
}

if (valgrind) process.exit(runValgrind());
else process.exit(await runCycles());

function rssKiB() {
  return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
}
function threads() {
  return fs.readdirSync('/proc/self/task').length;
}
function slope(points) {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

async function runCycles() {
  const { openGpuTelemetry } = await import(pathToFileURL(path.join(ROOT, 'dist', 'index.js')).href);
  const cycle = async () => {
    const gpu = await openGpuTelemetry({ simulate: scenario, intervalMs: 10 });
    const first = gpu.snapshot().seq;
    // Sample: wait for a sample after the first, and read it.
    for (let i = 0; i < 500 && gpu.snapshot().seq === first; i++) await new Promise((r) => setTimeout(r, 2));
    const snap = gpu.snapshot();
    if (snap.devices.length === 0 || snap.seq <= first) throw new Error(`no new sample (seq ${snap.seq})`);
    gpu.stats();
    if (withCapture) {
      const cap = gpu.capture.arm({ steps: 2, maxBytes: 1 << 20, bufferBytes: 64 << 10, flushIntervalMs: 10 });
      const stepper = setInterval(() => cap.step(), 10);
      try {
        const trace = await cap.done;
        if (trace.meta.reason !== 'steps' || trace.meta.stepsCaptured !== 2) {
          throw new Error(`capture ended ${trace.meta.reason} with ${trace.meta.stepsCaptured} of 2 steps`);
        }
        kernelsCaptured += trace.kernels.length;
      } finally {
        clearInterval(stepper);
      }
    }
    await gpu.close();
  };
  const warmup = Math.min(50, Math.ceil(cycles / 10));
  for (let i = 0; i < warmup; i++) await cycle();
  global.gc?.();
  await new Promise((r) => setTimeout(r, 100));
  const rss = [];
  const thr = [];
  const t0 = Date.now();
  const every = Math.max(1, Math.floor(cycles / 40));
  const threads0 = threads();
  for (let i = 1; i <= cycles; i++) {
    await cycle();
    if (i % every === 0 || i === cycles) {
      global.gc?.();
      rss.push([i, rssKiB()]);
      thr.push([i, threads()]);
    }
  }
  await new Promise((r) => setTimeout(r, 200));
  const threads1 = threads();
  // The slope over the second half: the first half still fills allocator pools and JIT caches.
  const half = rss.slice(Math.floor(rss.length / 2));
  const rssSlope = slope(half.length >= 2 ? half : rss);
  const thrSlope = slope(thr);
  const seconds = (Date.now() - t0) / 1000;
  console.log(
    `leak-check: ${cycles} open → sample → ${withCapture ? 'capture → ' : ''}close cycles (${scenario}) in ${seconds.toFixed(1)} s\n` +
      `  RSS     ${rss[0][1]} KiB → ${rss[rss.length - 1][1]} KiB; slope ${rssSlope.toFixed(3)} KiB/cycle over the last half (limit ${maxKiBPerCycle})\n` +
      `  threads ${threads0} → ${threads1}; slope ${thrSlope.toFixed(4)} threads/cycle` +
      (withCapture ? `\n  captures ${cycles + warmup} of 2 steps each, ${kernelsCaptured} kernel records in all` : ''),
  );
  let ok = true;
  if (threads1 > threads0) {
    console.error(`FAIL: ${threads1 - threads0} thread(s) more than before the cycles`);
    ok = false;
  }
  if (rssSlope > maxKiBPerCycle) {
    console.error(`FAIL: RSS grows ${rssSlope.toFixed(2)} KiB per cycle`);
    ok = false;
  }
  return ok ? 0 : 1;
}

function runValgrind() {
  const which = spawnSync('valgrind', ['--version'], { encoding: 'utf8' });
  if (which.status !== 0) {
    console.error('valgrind is not installed (apt-get install valgrind)');
    return 1;
  }
  const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gt-valgrind-')), 'memcheck.log');
  const args = [
    '--tool=memcheck',
    '--leak-check=full',
    '--show-leak-kinds=definite',
    '--errors-for-leak-kinds=definite',
    '--keep-debuginfo=yes', // the simulator is dlclose'd each cycle: keep its symbols for the report
    '--num-callers=40',
    '--smc-check=all-non-file',
    `--log-file=${log}`,
    process.execPath,
    '--jitless',
    '--expose-gc',
    fileURLToPath(import.meta.url),
    '--cycles',
    String(cycles),
    '--scenario',
    scenario,
    '--max-kib-per-cycle',
    '1000000', // RSS under valgrind means nothing; memcheck judges
    ...(withCapture ? [] : ['--no-capture']),
  ];
  console.log(`leak-check: valgrind memcheck over ${cycles} cycles (log: ${log}); this takes a few minutes`);
  const r = spawnSync('valgrind', args, { stdio: 'inherit', timeout: 30 * 60_000 });
  const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
  if (r.status !== 0 || !text) {
    console.error(`FAIL: the run under valgrind exited with ${r.status ?? r.signal}`);
    if (text) console.error(text.split('\n').slice(-40).join('\n'));
    return 1;
  }
  // Leak records are blocks separated by blank lines after "==pid== ".
  const records = text
    .split(/\n==\d+== \n/)
    .map((b) => b.replace(/^==\d+== /gm, ''))
    .filter((b) => /definitely lost in/.test(b));
  const ours = records.filter((b) => /gpu_telemetry|gpu-telemetry-lib-|native\/(sampler|sources|vendor|sim|addon)/.test(b));
  const summary = /LEAK SUMMARY:[\s\S]*?definitely lost: ([\d,]+) bytes in ([\d,]+) blocks/.exec(text);
  const errors = /ERROR SUMMARY: (\d+) errors/.exec(text);
  console.log(
    `  definitely lost (whole process, Node included): ${summary ? `${summary[1]} bytes in ${summary[2]} blocks` : 'none'}\n` +
      `  records with our frames: ${ours.length} of ${records.length}`,
  );
  const invalid = text.split(/\n==\d+== \n/).filter((b) => /Invalid (read|write|free)|uninitialised|Mismatched free/.test(b));
  const invalidOurs = invalid.filter((b) => /gpu_telemetry|gpu-telemetry-lib-/.test(b));
  if (ours.length > 0 || invalidOurs.length > 0) {
    for (const b of [...ours, ...invalidOurs].slice(0, 10)) console.error(`---\n${b.replace(/^==\d+== /gm, '')}`);
    console.error(`FAIL: ${ours.length} definite leak(s) and ${invalidOurs.length} memory error(s) from our code`);
    return 1;
  }
  console.log(`leak-check: valgrind clean for our code (${errors ? errors[1] : '?'} memcheck errors in all, none from our code)`);
  return 0;
}
