/**
 * bench section "inject" (npm run bench -- --only=inject): the injection library in another
 * process — test/native/fake_cuda_app.c, built here, loads libgpu_telemetry_inject.so as NVIDIA's
 * driver would and runs its kernels and NVTX step ranges through the simulator's CUPTI.
 *
 *   - start-up: InitializeInjection (socket folder check, bind, the server thread), timed inside
 *     the process, against the process's own start (exec → READY) without the library;
 *   - dormant: the same fixed work (N steps) with and without the library: CPU time, threads, RSS;
 *   - armed: armProcess() → ready (the target loaded CUPTI, subscribed, enabled), first and later
 *     arms, and with a 2 s first-enable stall without and after prewarmProcess(), against the
 *     issue's goal of 100 ms.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

export async function benchInject({ ROOT, TMP, QUICK, row, notes, fmtNs }) {
  const lib = await import(path.join(ROOT, 'dist', 'index.js'));
  const { simulatorLibraryPath, injectLibraryPath } = await import(path.join(ROOT, 'dist', 'paths.js'));
  const sim = simulatorLibraryPath();
  const inject = injectLibraryPath();
  if (!sim || !inject) {
    notes.push('inject: skipped (build/Release lacks the simulator or libgpu_telemetry_inject.so)');
    return;
  }
  const dir = path.join(TMP, 'inject');
  fs.mkdirSync(dir, { recursive: true });
  const xdg = path.join(dir, 'xdg');
  fs.mkdirSync(xdg, { mode: 0o700 });
  const app = path.join(dir, 'fake_cuda_app');
  execFileSync('gcc', ['-std=c11', '-O2', path.join(ROOT, 'test', 'native', 'fake_cuda_app.c'), '-o', app, '-ldl', '-lpthread']);
  const scenario = path.join(dir, 'scenario.json');
  fs.writeFileSync(
    scenario,
    JSON.stringify({
      name: 'bench-inject',
      devices: [{ name: 'NVIDIA H100 80GB HBM3 (simulated)', memoryTotalBytes: 85899345920 }],
      cupti: { version: 130001, kernelsPerSecond: 0 },
    }),
  );
  const env = (injected) => ({
    ...process.env,
    XDG_RUNTIME_DIR: xdg,
    GPU_TELEMETRY_CUPTI_LIB: sim,
    NVTX_INJECTION64_PATH: sim,
    GPU_TELEMETRY_INJECT_QUIET: '1',
    ...(injected ? { CUDA_INJECTION64_PATH: inject } : {}),
  });
  process.env.XDG_RUNTIME_DIR = xdg;

  /** Runs the app to completion: its READY and USAGE lines, and exec → READY wall time. */
  const runFixed = (injected, args) =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const child = spawn(app, ['--scenario', scenario, ...args], { env: env(injected), stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      let readyMs = null;
      child.stdout.on('data', (d) => {
        out += d;
        if (readyMs === null && out.includes('READY')) readyMs = performance.now() - t0;
      });
      child.on('error', reject);
      child.on('exit', (code) => {
        if (code !== 0) return reject(new Error(`fake_cuda_app exited ${code}`));
        const num = (re) => Number(re.exec(out)?.[1] ?? NaN);
        resolve({
          readyMs,
          initUs: num(/initUs=([\d.]+)/),
          cpuUs: num(/utimeUs=(\d+)/) + num(/stimeUs=(\d+)/),
          rssKb: num(/maxRssKb=(\d+)/),
          threads: num(/threads=(\d+)/),
          injectTicks: num(/injectThreadTicks=(-?\d+)/),
        });
      });
    });

  // ---- start-up and dormant cost: the same fixed work with and without the library, interleaved.
  const pairs = QUICK ? 3 : 7;
  const work = ['--steps', QUICK ? '1000' : '3000', '--kernels-per-step', '3', '--step-sleep-us', '200'];
  const withLib = [];
  const without = [];
  for (let i = 0; i < pairs; i++) {
    without.push(await runFixed(false, work));
    withLib.push(await runFixed(true, work));
  }
  const initNs = median(withLib.map((r) => r.initUs)) * 1e3;
  row('inject', 'start-up: InitializeInjection (folder check, socket, thread)', initNs, { name: 'exec → READY without it', value: median(without.map((r) => r.readyMs)) * 1e6 }, {
    goal: '≤ 5 ms',
    met: initNs <= 5e6,
  });
  const cpuWith = median(withLib.map((r) => r.cpuUs));
  const cpuWithout = median(without.map((r) => r.cpuUs));
  const steps = Number(work[1]);
  // The library's own thread, read by the process itself at the end: the direct measure.
  const ticks = Math.max(...withLib.map((r) => r.injectTicks));
  row('inject', `dormant: the library's thread's CPU over ${steps} steps`, ticks * 10e6, null, {
    fmt: (ns) => `${(ns / 1e6).toFixed(0)} ms`,
    goal: '0 (asleep in poll)',
    met: ticks === 0,
  });
  // The whole process: start-up included, on a shared machine (compare with the baseline's spread).
  const spread = Math.max(...without.map((r) => r.cpuUs)) - Math.min(...without.map((r) => r.cpuUs));
  row('inject', `dormant: target CPU for ${steps} steps (kernels + NVTX) with the library`, cpuWith * 1e3, { name: 'without the library', value: cpuWithout * 1e3 }, {
    goal: '≤ +5% or within the baseline\'s spread',
    met: cpuWith - cpuWithout <= Math.max(cpuWithout * 0.05, spread),
  });
  const rssWith = median(withLib.map((r) => r.rssKb));
  const rssWithout = median(without.map((r) => r.rssKb));
  row('inject', 'dormant: target peak RSS with the library', rssWith * 1024, { name: 'without', value: rssWithout * 1024 }, {
    fmt: (b) => `${(b / 1048576).toFixed(2)} MiB`,
  });
  notes.push(
    `inject dormant: threads ${median(withLib.map((r) => r.threads))} with the library, ${median(without.map((r) => r.threads))} without (one thread asleep in poll()); ` +
      `CPU ${(cpuWith / 1e3).toFixed(1)} ms vs ${(cpuWithout / 1e3).toFixed(1)} ms (baseline spread ${(spread / 1e3).toFixed(1)} ms), peak RSS ${rssWith >= rssWithout ? '+' : ''}${((rssWith - rssWithout) / 1024).toFixed(2)} MiB ` +
      `(the library's code and its thread's stack; the simulator has already mapped libstdc++ here, as most CUDA processes have; CUPTI is not loaded while dormant); ${pairs} interleaved pairs, medians`,
  );

  // ---- armed: armProcess → ready on a running target.
  const child = spawn(app, ['--scenario', scenario, '--kernels-per-step', '3', '--step-sleep-us', '2000'], { env: env(true), stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    for (let i = 0; i < 500 && !out.includes('READY'); i++) await new Promise((r) => setTimeout(r, 10));
    const pid = Number(/pid=(\d+)/.exec(out)?.[1]);
    const arms = [];
    const hello = [];
    let first = null;
    const n = QUICK ? 5 : 20;
    for (let i = 0; i < n; i++) {
      const h0 = performance.now();
      await lib.listInjectedProcesses({ dir: path.join(xdg, 'gpu-telemetry') });
      hello.push(performance.now() - h0);
      const t0 = performance.now();
      const cap = lib.armProcess(pid, { steps: 2, stepRange: 'decode_step', flushIntervalMs: 20 });
      await cap.ready;
      const ms = performance.now() - t0;
      if (i === 0) first = ms;
      else arms.push(ms);
      await cap.done;
    }
    row('inject', 'armProcess() → ready, first arm (target loads CUPTI, subscribes, enables)', first * 1e6, null, { goal: '< 100 ms', met: first < 100 });
    const p50 = median(arms);
    const p99 = [...arms].sort((a, b) => a - b)[Math.min(arms.length - 1, Math.ceil(arms.length * 0.99) - 1)];
    row('inject', 'armProcess() → ready, later arms p50', p50 * 1e6, { name: 'list + hello round trip', value: median(hello) * 1e6 }, { goal: '< 100 ms', met: p50 < 100 });
    row('inject', 'armProcess() → ready, later arms p99', p99 * 1e6, null, { goal: '< 100 ms', met: p99 < 100 });
    notes.push(`inject armed latency is against the simulator's CUPTI: a real libcupti's first enable can stall for seconds (prewarmProcess() pays it ahead: the last row); ${fmtNs(first * 1e6)} first, ${fmtNs(p50 * 1e6)} p50 of ${arms.length}`);
  } finally {
    child.kill('SIGKILL');
  }

  // ---- a CUPTI whose first enable stalls 2 s (as kineto saw): armed without and after prewarmProcess().
  const slow = path.join(dir, 'slow.json');
  const spec = JSON.parse(fs.readFileSync(scenario, 'utf8'));
  spec.cupti.firstEnableDelayMs = 2000;
  fs.writeFileSync(slow, JSON.stringify(spec));
  const armedAfter = async (prewarm) => {
    const target = spawn(app, ['--scenario', slow, '--step-sleep-us', '2000'], { env: env(true), stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      let out = '';
      target.stdout.on('data', (d) => (out += d));
      for (let i = 0; i < 500 && !out.includes('READY'); i++) await new Promise((r) => setTimeout(r, 10));
      const pid = Number(/pid=(\d+)/.exec(out)?.[1]);
      const warm = prewarm ? await lib.prewarmProcess(pid) : null;
      const t0 = performance.now();
      const cap = lib.armProcess(pid, { steps: 1, stepRange: 'decode_step' });
      await cap.ready;
      const ms = performance.now() - t0;
      await cap.done;
      return { ms, warm };
    } finally {
      target.kill('SIGKILL');
    }
  };
  const cold = await armedAfter(false);
  const warmed = await armedAfter(true);
  row('inject', 'armProcess() → ready after prewarmProcess() (first enable stalls 2 s)', warmed.ms * 1e6, { name: 'without prewarmProcess()', value: cold.ms * 1e6 }, {
    goal: '< 100 ms',
    met: warmed.ms < 100,
  });
  notes.push(`inject: prewarmProcess() with a 2 s first-enable stall took ${warmed.warm.elapsedMs} ms (set-up in the target ${warmed.warm.startMs.toFixed(0)} ms); without it the first arm was ready after ${cold.ms.toFixed(0)} ms`);
}
