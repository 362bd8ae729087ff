/**
 * The injection library end to end, without a GPU: a fake CUDA application (test/native/
 * fake_cuda_app.c) loads libgpu_telemetry_inject.so as NVIDIA's driver would (CUDA_INJECTION64_PATH,
 * InitializeInjection), runs its own kernels through the simulator's CUPTI and marks each step with
 * an NVTX range (NVTX_INJECTION64_PATH naming the simulator, as it would name libcupti); this
 * process arms it by pid (armProcess) and gets the same CaptureHandle/KernelTrace as in process.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { armProcess, GpuTelemetryError, listInjectedProcesses, prewarmProcess, type KernelTrace } from '../src/index.js';
import { validateChromeTrace } from './capture-fixtures.js';
import { sleep, waitFor } from './helpers.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { killAllTargets, makeBench, NVTX3_INCLUDE, RawClient, socketOf, startTarget, type Bench, type Target } from './inject-helpers.js';

let bench: Bench;
beforeAll(() => {
  bench = makeBench();
  // Clients of this file look for same-uid targets in the bench's folder, as the targets do.
  process.env.XDG_RUNTIME_DIR = bench.xdg;
});
afterEach(killAllTargets);
afterAll(() => bench.cleanup());

/** Kernel names by trace step (-1: outside every step). */
function kernelsByStep(trace: KernelTrace): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const k of trace.kernels) {
    const s = k.step ?? -1;
    out.set(s, [...(out.get(s) ?? []), k.name]);
  }
  return out;
}

/** The target's CUPTI as the simulator sees it ("STATE subscribed=0 kinds="). */
async function cuptiState(t: Target): Promise<{ subscribed: boolean; kinds: number[] }> {
  const line = await t.ask('state', 'STATE');
  const m = /subscribed=(\d) kinds=(.*)$/.exec(line)!;
  return { subscribed: m[1] === '1', kinds: m[2] === '' ? [] : m[2].split(',').map(Number) };
}

describe('armProcess on a fake CUDA application', () => {
  it('arm by pid for 10 steps: the trace holds exactly the kernels the program ran in those 10 steps', async () => {
    const t = await startTarget(bench, { args: ['--kernels-per-step', '3', '--step-sleep-us', '5000'] });
    // (A short flush interval: the capture ends soon after its 10th step, a small trace to check.)
    const cap = armProcess(t.pid, { steps: 10, stepRange: 'decode_step', timeoutMs: 30_000, flushIntervalMs: 20 });
    expect(cap.state).toBe('starting');
    await cap.ready;
    expect(['waiting', 'capturing', 'stopping']).toContain(cap.state);
    const trace = await cap.done;
    expect(trace.meta).toMatchObject({
      reason: 'steps',
      truncated: false,
      stepsRequested: 10,
      stepsCaptured: 10,
      stepRange: 'decode_step',
      pid: t.pid,
      processName: 'fake_cuda_app',
      durationMs: null,
      simulated: true,
      layout: 'cuda13',
      droppedByCupti: 0,
      droppedByUs: 0,
    });
    expect(trace.steps).toHaveLength(10);
    // Each captured step holds exactly the program's 3 kernels of one program step, and the 10
    // program steps follow each other.
    const byStep = kernelsByStep(trace);
    const programSteps: number[] = [];
    for (let s = 0; s < 10; s++) {
      const names = (byStep.get(s) ?? []).slice().sort();
      const p = Number(/^step(\d+)_k/.exec(names[0] ?? '')?.[1] ?? -1);
      expect(names).toEqual([`step${p}_k0`, `step${p}_k1`, `step${p}_k2`]);
      programSteps.push(p);
    }
    expect(programSteps).toEqual(programSteps.map((_, i) => programSteps[0] + i));
    // Nothing of those program steps is outside them; what is outside is gap kernels or later steps.
    for (const name of byStep.get(-1) ?? []) {
      const m = /^step(\d+)_k/.exec(name);
      if (m) expect(Number(m[1])).toBeGreaterThan(programSteps[9]);
      else expect(name).toMatch(/^gap\d+$/);
    }
    // Every kernel once; the launch side (cudaLaunchKernel) links to it.
    const names = trace.kernels.map((k) => k.name);
    expect(new Set(names).size).toBe(names.length);
    expect(trace.apiCalls.some((a) => a.name === 'cudaLaunchKernel_v7000')).toBe(true);
    // NVTX ranges of the target, its pid.
    const ranges = trace.ranges.filter((r) => r.name === 'decode_step');
    expect(ranges.length).toBeGreaterThanOrEqual(10);
    expect(ranges.every((r) => r.processId === t.pid)).toBe(true);
    // The same outputs as in process.
    expect(trace.summary().steps).toHaveLength(10);
    expect(trace.summary().records.kernels).toBe(trace.kernels.length);
    const chrome = validateChromeTrace(trace.toChromeTrace());
    expect(chrome.otherData.pid).toBe(t.pid);
    expect(chrome.otherData.processName).toBe('fake_cuda_app');
    // The launch side sits on the target's own process track.
    expect(chrome.events.some((e) => e.pid === t.pid && e.name === 'cudaLaunchKernel_v7000')).toBe(true);
    // Dormant again: nothing subscribed or enabled in the target.
    expect(await cuptiState(t)).toEqual({ subscribed: false, kinds: [] });
  });

  it('dormant costs nothing: no subscription, no activity kind, and its one thread asleep in poll()', async () => {
    const t = await startTarget(bench);
    expect(await cuptiState(t)).toEqual({ subscribed: false, kinds: [] });
    // The library's thread ("gt-inject") is asleep, and stays without CPU time while the program runs.
    const tasks = fs.readdirSync(`/proc/${t.pid}/task`);
    const server = tasks.find((tid) => fs.readFileSync(`/proc/${t.pid}/task/${tid}/comm`, 'utf8').trim() === 'gt-inject');
    expect(server).toBeDefined();
    const stat = () => fs.readFileSync(`/proc/${t.pid}/task/${server}/stat`, 'utf8').split(') ')[1].split(' ');
    const cpu = (f: string[]) => Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
    const before = stat();
    const steps = async () => Number(/steps=(\d+)/.exec(await t.ask('usage', 'USAGE'))![1]);
    // While the program runs 200 more steps (its kernels, NVTX calls and launches all go on).
    const s0 = await steps();
    for (let s1 = s0; s1 < s0 + 200; s1 = await steps()) await sleep(50);
    const after = stat();
    expect(before[0]).toBe('S'); // sleeping
    expect(after[0]).toBe('S');
    expect(cpu(after)).toBe(cpu(before));
    expect(fs.readFileSync(`/proc/${t.pid}/task/${server}/wchan`, 'utf8')).toMatch(/poll/);
    expect(await cuptiState(t)).toEqual({ subscribed: false, kinds: [] });
  });

  it('lists injected processes; sockets of exited processes are removed', async () => {
    const t = await startTarget(bench);
    const other = await startTarget(bench);
    const dir = path.join(bench.xdg, 'gpu-telemetry');
    await other.kill(); // SIGKILL: its socket stays behind
    expect(fs.existsSync(socketOf(bench.xdg, other.pid))).toBe(true);
    // A socket nobody listens on, under a live pid (a pid reused by a process without the library).
    const net = await import('node:net');
    const fake = path.join(dir, `${process.pid}.sock`);
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(fake, r));
    await new Promise<void>((r) => server.close(() => r()));
    if (!fs.existsSync(fake)) {
      // (Node removed it on close; make a stale one by hand.)
      const { execFileSync } = await import('node:child_process');
      execFileSync('python3', ['-c', `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(fake)})`]);
    }
    const found = await listInjectedProcesses({ dir });
    expect(found.map((p) => p.pid)).toEqual([t.pid]);
    expect(found[0]).toMatchObject({ processName: 'fake_cuda_app', state: 'dormant', protocolVersion: 1, uid: process.getuid!() });
    expect(fs.existsSync(socketOf(bench.xdg, other.pid))).toBe(false);
    expect(fs.existsSync(fake)).toBe(false);
    // The default folders (this process's XDG_RUNTIME_DIR) find it too.
    expect((await listInjectedProcesses()).map((p) => p.pid)).toContain(t.pid);
  });

  it('a time window for a target without NVTX: durationMs, reason duration, complete', async () => {
    const t = await startTarget(bench, { args: ['--no-nvtx'], nvtxInjection: false });
    const cap = armProcess(t.pid, { durationMs: 300 });
    expect(() => cap.step()).toThrow(/its steps are that process's NVTX ranges/);
    const trace = await cap.done;
    expect(trace.meta).toMatchObject({ reason: 'duration', truncated: false, durationMs: 300, stepsRequested: 0, stepsCaptured: 0, stepRange: null });
    expect(trace.kernels.length).toBeGreaterThan(0);
    expect(trace.kernels.every((k) => /^(step|gap)\d+/.test(k.name))).toBe(true);
  });

  it('stepDomain: only ranges of that NVTX domain count', async () => {
    const t = await startTarget(bench, { args: ['--domain', 'vllm'] });
    const trace = await armProcess(t.pid, { steps: 3, stepRange: 'decode_step', stepDomain: 'vllm' }).done;
    expect(trace.meta).toMatchObject({ reason: 'steps', stepsCaptured: 3, stepDomain: 'vllm' });
    expect(trace.ranges.find((r) => r.name === 'decode_step')?.domain).toBe('vllm');
    const other = await armProcess(t.pid, { steps: 3, stepRange: 'decode_step', stepDomain: 'torch', timeoutMs: 500 }).done;
    expect(other.meta).toMatchObject({ reason: 'timeout', stepsCaptured: 0, truncated: true });
    // "" is the default domain (nvtxRangePush).
    const plain = await startTarget(bench);
    expect((await armProcess(plain.pid, { steps: 2, stepRange: 'decode_step', stepDomain: '' }).done).meta.stepsCaptured).toBe(2);
  });

  it('a target killed mid-capture ends the handle with target_exited and what had arrived', async () => {
    const t = await startTarget(bench);
    const cap = armProcess(t.pid, { steps: 100_000, stepRange: 'decode_step', timeoutMs: 60_000 });
    await cap.ready;
    // Records stream while the capture runs (the rows a progress message counts come before it):
    // wait until 5 steps have arrived here.
    await waitFor(() => cap.progress.steps >= 5, 30_000);
    await t.kill();
    const trace = await cap.done;
    expect(trace.meta).toMatchObject({ reason: 'target_exited', truncated: true, pid: t.pid });
    expect(trace.steps.length).toBeGreaterThanOrEqual(5);
    expect(trace.kernels.filter((k) => k.step !== null).length).toBeGreaterThanOrEqual(15);
    expect(cap.state).toBe('finished');
  });

  it('a second arm: CAPTURE_BUSY (at once from this process; from the target for another client)', async () => {
    const t = await startTarget(bench);
    const cap = armProcess(t.pid, { steps: 100_000, stepRange: 'decode_step' });
    expect(() => armProcess(t.pid, { steps: 1, stepRange: 'decode_step' })).toThrow(expect.objectContaining({ code: 'CAPTURE_BUSY' }));
    await cap.ready;
    const other = await RawClient.connect(socketOf(bench.xdg, t.pid));
    other.json({ op: 'arm', steps: 1, stepRange: 'decode_step' });
    const reply = await other.next('error');
    expect(reply).toMatchObject({ code: 'CAPTURE_BUSY' });
    other.close();
    const trace = await cap.cancel();
    expect(trace.meta.reason).toBe('cancelled');
    // Once it ended, the target can be armed again.
    expect((await armProcess(t.pid, { steps: 2, stepRange: 'decode_step' }).done).meta.stepsCaptured).toBe(2);
  });

  it('CUPTI held by another profiler in the target (Kineto): CUPTI_BUSY naming it, nothing left enabled', async () => {
    const scenario = path.join(bench.dir, 'kineto.json');
    const spec = JSON.parse(fs.readFileSync(bench.scenario, 'utf8')) as { cupti: Record<string, unknown> };
    spec.cupti = { ...spec.cupti, otherSubscriber: { name: 'PyTorch Kineto' } };
    fs.writeFileSync(scenario, JSON.stringify(spec));
    const t = await startTarget(bench, { scenario });
    const cap = armProcess(t.pid, { steps: 2, stepRange: 'decode_step' });
    const e = (await cap.ready.catch((x: unknown) => x)) as GpuTelemetryError;
    expect(e).toBeInstanceOf(GpuTelemetryError);
    expect(e.code).toBe('CUPTI_BUSY');
    expect(e.message).toMatch(/PyTorch Kineto/);
    expect(e.message).toContain(`process ${t.pid}`);
    await expect(cap.done).rejects.toMatchObject({ code: 'CUPTI_BUSY' });
    expect(cap.state).toBe('failed');
    expect(await cuptiState(t)).toEqual({ subscribed: false, kinds: [] });
  });

  it('prewarmProcess() pays CUPTI\'s first-enable stall in the target ahead: the next arm does not stall', async () => {
    const scenario = path.join(bench.dir, 'slow-enable.json');
    const spec = JSON.parse(fs.readFileSync(bench.scenario, 'utf8')) as { cupti: Record<string, unknown> };
    spec.cupti = { ...spec.cupti, firstEnableDelayMs: 400 };
    fs.writeFileSync(scenario, JSON.stringify(spec));
    const t = await startTarget(bench, { scenario });
    const stalled = async () => Number(/enableStalledMs=(\d+)/.exec(await t.ask('counters', 'COUNTERS'))![1]);
    expect(await stalled()).toBe(0);
    const warm = await prewarmProcess(t.pid);
    expect(warm).toMatchObject({ pid: t.pid, cuptiVersion: 130001, layout: 'cuda13', subscriberMode: 'exclusive' });
    expect(warm.startMs).toBeGreaterThanOrEqual(400); // the stall happened, in the pre-warm
    expect(await stalled()).toBe(400);
    expect(await cuptiState(t)).toEqual({ subscribed: false, kinds: [] });
    const trace = await armProcess(t.pid, { steps: 2, stepRange: 'decode_step' }).done;
    expect(trace.meta.stepsCaptured).toBe(2);
    expect(await stalled()).toBe(400); // no second stall
    await expect(prewarmProcess(4_000_000)).rejects.toMatchObject({ code: 'TARGET_NOT_FOUND' });
  });

  it('no CUPTI in the target: LIBRARY_NOT_FOUND with what the target tried, and the target runs on', async () => {
    const t = await startTarget(bench, { args: ['--driver', bench.sim], env: { GPU_TELEMETRY_CUPTI_LIB: '/nonexistent/libcupti.so.13' } });
    const cap = armProcess(t.pid, { durationMs: 100 });
    const e = (await cap.done.catch((x: unknown) => x)) as GpuTelemetryError;
    expect(e.code).toBe('LIBRARY_NOT_FOUND');
    expect(e.message).toMatch(/\/nonexistent\/libcupti\.so\.13/);
    expect(e.message).toContain(`process ${t.pid}`);
    expect(await cuptiState(t)).toEqual({ subscribed: false, kinds: [] });
    expect(t.child.exitCode).toBeNull();
  });

  it('bounds hold in the target: maxBytes ends the capture with max_bytes (streamed rows still count)', async () => {
    const t = await startTarget(bench, { args: ['--kernels-per-step', '200', '--kernel-us', '1', '--step-sleep-us', '0'] });
    const trace = await armProcess(t.pid, { steps: 100_000, stepRange: 'decode_step', maxBytes: 1 << 20 }).done;
    expect(trace.meta).toMatchObject({ reason: 'max_bytes', truncated: true });
    expect(trace.meta.peakBytes).toBeLessThanOrEqual(1 << 20);
    expect(trace.kernels.length).toBeGreaterThan(1000);
  });

  it('errors known without the target: TARGET_NOT_FOUND, NOT_INJECTED, INVALID_OPTION', async () => {
    const plain = await startTarget(bench, { injected: false });
    expect(() => armProcess(plain.pid, { steps: 1, stepRange: 'x' })).toThrow(expect.objectContaining({ code: 'NOT_INJECTED' }));
    await plain.kill();
    expect(() => armProcess(plain.pid, { steps: 1, stepRange: 'x' })).toThrow(expect.objectContaining({ code: 'TARGET_NOT_FOUND' }));
    expect(() => armProcess(0, { durationMs: 5 })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', option: 'pid' }));
    expect(() => armProcess(process.pid, {})).toThrow(/exactly one of stepRange/);
    expect(() => armProcess(process.pid, { stepRange: 'a', durationMs: 5 })).toThrow(expect.objectContaining({ option: 'durationMs' }));
    expect(() => armProcess(process.pid, { durationMs: 5, steps: 3 })).toThrow(expect.objectContaining({ option: 'steps' }));
    expect(() => armProcess(process.pid, { durationMs: 5000, timeoutMs: 1000 })).toThrow(/longer than timeoutMs/);
    expect(() => armProcess(process.pid, { stepRange: 'a', maxBytes: 5 })).toThrow(expect.objectContaining({ option: 'maxBytes' }));
  });
});

describe.skipIf(NVTX3_INCLUDE === null)(`NVIDIA's NVTX v3 loader ${NVTX3_INCLUDE === null ? '(skipped: no nvtx3 headers in /usr/local/cuda/include)' : ''}`, () => {
  it('the simulator answers it as libcupti would (InitializeInjectionNvtx2): its ABI matches, and ranges count as steps', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-nvtx-abi-'));
    try {
      execFileSync('g++', ['-std=c++17', '-Wall', '-Werror', `-I${path.join(PACKAGE_ROOT, 'native')}`, `-I${NVTX3_INCLUDE}`,
        path.join(PACKAGE_ROOT, 'test/abi/nvtx_abi_check.cc'), '-o', path.join(dir, 'check'), '-ldl'], { stdio: ['ignore', 'pipe', 'pipe'] });
      expect(execFileSync(path.join(dir, 'check'), { encoding: 'utf8' })).toMatch(/NVTX injection ABI: \d+ checks passed \(nvtxEventAttributes_v2 48 bytes\)/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const real = makeBench('real-nvtx');
    try {
      for (const domain of [null, 'vllm']) {
        const t = await startTarget(real, { args: domain ? ['--domain', domain] : [] });
        const trace = await armProcess(t.pid, { steps: 3, stepRange: 'decode_step', ...(domain ? { stepDomain: domain } : {}) }).done;
        expect(trace.meta).toMatchObject({ reason: 'steps', stepsCaptured: 3 });
        expect(trace.ranges.find((r) => r.name === 'decode_step')?.domain ?? null).toBe(domain);
        await t.kill();
      }
    } finally {
      real.cleanup();
    }
  });
});
