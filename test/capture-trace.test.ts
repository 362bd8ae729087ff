/**
 * KernelTrace from a hand-built native result: typed records, step tags, summary numbers derived by
 * hand (see the comments in capture-fixtures.ts), and the Chrome trace JSON's validity.
 */
import { describe, expect, it } from 'vitest';
import { GPU_PID_BASE, STEPS_PID } from '../src/capture/chrome.js';
import { tagSteps } from '../src/capture/records.js';
import { percentile } from '../src/capture/summary.js';
import { emptyResult, fixtureMeta, fixtureResult, fixtureTrace, FIXTURE_STRINGS, validateChromeTrace, type ChromeEvent } from './capture-fixtures.js';

describe('step tagging', () => {
  it('tags by start inside a step, else by the step it runs into, else -1', () => {
    const steps = Float64Array.from([10, 20, 30, 40]); // a gap between the steps
    const data = Float64Array.from([
      10, 15, // starts at step 0's start: 0
      19, 25, // starts in step 0, ends after it: 0
      20, 22, // starts at step 0's end (exclusive), before step 1, ends before it: -1
      25, 35, // between the steps, runs into step 1: 1
      5, 12, // before the first step, runs into it: 0
      1, 2, // before everything: -1
      40, 50, // at the end of the last step: -1
    ]);
    expect([...tagSteps(data, 2, steps)]).toEqual([0, 0, -1, 1, 0, -1, -1]);
    expect([...tagSteps(data, 2, new Float64Array(0))]).toEqual([-1, -1, -1, -1, -1, -1, -1]);
  });

  it('nearest-rank percentiles', () => {
    const v = Float64Array.from([1000, 2000, 3000, 3000, 5000]);
    expect(percentile(v, 50)).toBe(3000);
    expect(percentile(v, 99)).toBe(5000);
    expect(percentile(v, 0)).toBe(1000);
    expect(percentile(new Float64Array(0), 50)).toBe(0);
  });
});

describe('KernelTrace records', () => {
  const trace = fixtureTrace();

  it('builds typed kernels with names, launch geometry and step tags', () => {
    expect(trace.kernels).toHaveLength(8);
    expect(trace.kernels[0]).toEqual({
      step: 0,
      startNs: 2000,
      endNs: 5000,
      durationNs: 3000,
      name: FIXTURE_STRINGS[0],
      deviceId: 0,
      contextId: 1,
      streamId: 7,
      correlationId: 1,
      gridX: 128,
      gridY: 1,
      gridZ: 1,
      blockX: 256,
      blockY: 1,
      blockZ: 1,
      registersPerThread: 32,
      staticSharedBytes: 1024,
      dynamicSharedBytes: 0,
    });
    expect(trace.kernels.map((k) => k.step)).toEqual([0, 0, 0, 1, 1, 1, 0, -1]);
    expect(trace.kernels).toBe(trace.kernels); // built once
  });

  it('builds memcpys (direction), memsets, API calls (domain) and ranges (kind, domain)', () => {
    expect(trace.memcpys.map((m) => [m.direction, m.bytes, m.step])).toEqual([
      ['HtoD', 1_000_000, 0],
      ['DtoH', 4096, 1],
      ['HtoD', 2_000_000, 1],
    ]);
    expect(trace.memsets[0]).toMatchObject({ bytes: 256, value: 0, step: 0, durationNs: 200 });
    expect(trace.apiCalls.map((a) => [a.name, a.domain, a.correlationId, a.threadId])).toEqual([
      ['cudaLaunchKernel', 'runtime', 1, 4243],
      ['cudaLaunchKernel', 'runtime', 2, 4243],
      ['cudaLaunchKernel', 'runtime', 3, 4243],
      ['cudaMemcpyAsync', 'runtime', 10, 4243],
      ['cudaLaunchKernel', 'runtime', 4, 4244],
      ['cuLaunchKernel', 'driver', 5, 4243],
    ]);
    expect(trace.ranges).toEqual([
      { step: 0, startNs: 1000, endNs: 10900, durationNs: 9900, name: 'decode_step', kind: 'range', domain: null, id: 1, processId: 4242, threadId: 4243 },
      { step: 1, startNs: 12500, endNs: 12500, durationNs: 0, name: 'say "hi"\\n', kind: 'mark', domain: 'my_domain', id: 2, processId: 4242, threadId: 4243 },
    ]);
    expect(trace.steps.map((s) => s.durationNs)).toEqual([10000, 10000, 15000]);
  });

  it('an empty capture has empty records and a zero summary, not NaN', () => {
    const empty = fixtureTrace(emptyResult(), fixtureMeta({ stepsCaptured: 0, truncated: true, reason: 'timeout' }));
    expect(empty.kernels).toEqual([]);
    const s = empty.summary();
    expect(s.window).toEqual({ startNs: 0, endNs: 0, durationNs: 0 });
    expect(s.topKernels).toEqual([]);
    expect(s.devices).toEqual([]);
    expect(s.stepDurations).toBeNull();
    expect(s.reason).toBe('timeout');
    expect(JSON.stringify(s)).not.toMatch(/NaN|null,"truncated":false/);
    validateChromeTrace(empty.toChromeTrace());
  });
});

describe('summary()', () => {
  const s = fixtureTrace().summary();

  it('per kernel name: count, total, mean, p50, p99 (nearest rank), share', () => {
    expect(s.topKernels.map((k) => k.name)).toEqual([FIXTURE_STRINGS[0], 'softmax']);
    // gemm: 3000, 5000, 2000, 3000, 1000 ns
    expect(s.topKernels[0]).toEqual({
      name: FIXTURE_STRINGS[0],
      count: 5,
      totalNs: 14000,
      meanNs: 2800,
      p50Ns: 3000,
      p99Ns: 5000,
      minNs: 1000,
      maxNs: 5000,
      shareOfKernelTime: 14000 / 17000,
    });
    expect(s.topKernels[1]).toMatchObject({ count: 3, totalNs: 3000, meanNs: 1000, p50Ns: 1000, p99Ns: 1000 });
  });

  it('busy ratio per device and stream over the step window, kernels clipped to it', () => {
    expect(s.window).toEqual({ startNs: 1000, endNs: 36000, durationNs: 35000 });
    const [gpu0, gpu1] = s.devices;
    // GPU 0 merged: [1000,1500] (k6 clipped) [2000,9000] (k0 ∪ k1 ∪ k2) [12000,14000] [20000,23000]; k7 outside
    expect(gpu0).toMatchObject({ deviceId: 0, kernels: 7, busyNs: 12500, busyRatio: 12500 / 35000 });
    expect(gpu0.streams).toEqual([
      { deviceId: 0, streamId: 7, kernels: 6, busyNs: 9500, busyRatio: 9500 / 35000 },
      { deviceId: 0, streamId: 8, kernels: 1, busyNs: 5000, busyRatio: 5000 / 35000 },
    ]);
    expect(gpu1).toMatchObject({ deviceId: 1, kernels: 1, busyNs: 1000, busyRatio: 1000 / 35000 });
  });

  it('idle gaps between kernels and their share of step time', () => {
    // GPU 0 gaps: 1500→2000, 9000→12000, 14000→20000
    expect(s.devices[0].idleGaps).toEqual({ count: 3, totalNs: 9500, p50Ns: 3000, maxNs: 6000, shareOfStepTime: 9500 / 35000 });
    expect(s.devices[1].idleGaps).toEqual({ count: 0, totalNs: 0, p50Ns: 0, maxNs: 0, shareOfStepTime: 0 });
  });

  it('per step: kernels, kernel time, busy time and idle gaps (all GPUs merged)', () => {
    expect(s.steps).toEqual([
      { index: 0, startNs: 1000, endNs: 11000, durationNs: 10000, kernels: 4, kernelNs: 10000, busyNs: 7500, idleGapNs: 2500, idleGapShare: 0.25 },
      { index: 1, startNs: 11000, endNs: 21000, durationNs: 10000, kernels: 3, kernelNs: 6000, busyNs: 4000, idleGapNs: 6000, idleGapShare: 0.6 },
      { index: 2, startNs: 21000, endNs: 36000, durationNs: 15000, kernels: 0, kernelNs: 0, busyNs: 2000, idleGapNs: 0, idleGapShare: 0 },
    ]);
    expect(s.stepDurations).toEqual({ count: 3, totalNs: 35000, meanNs: 35000 / 3, p50Ns: 10000, p99Ns: 15000, minNs: 10000, maxNs: 15000 });
  });

  it('memcpy volume by direction, memsets, record counts and drops', () => {
    expect(s.memcpy).toEqual([
      { direction: 'HtoD', count: 2, bytes: 3_000_000, totalNs: 1500, bytesPerSecond: 3_000_000 / 1.5e-6 },
      { direction: 'DtoH', count: 1, bytes: 4096, totalNs: 2000, bytesPerSecond: 4096 / 2e-6 },
    ]);
    expect(s.memset).toEqual({ count: 1, bytes: 256 });
    expect(s.records).toEqual({ kernels: 8, memcpys: 3, memsets: 1, apiCalls: 6, ranges: 2, steps: 3 });
    expect(s.drops).toEqual({ byCupti: 3, byUs: 4, incomplete: 0, total: 7 });
  });

  it('without steps the window is the span of the GPU records and step figures are absent', () => {
    const t = fixtureTrace(fixtureResult({ steps: new Float64Array(0) }));
    const u = t.summary();
    expect(u.window).toEqual({ startNs: 500, endNs: 38000, durationNs: 37500 });
    expect(u.steps).toEqual([]);
    expect(u.devices[0].idleGaps.shareOfStepTime).toBeNull();
    expect(t.kernels.every((k) => k.step === -1)).toBe(true);
  });
});

describe('toChromeTrace()', () => {
  const trace = fixtureTrace();
  const { events, otherData } = validateChromeTrace(trace.toChromeTrace());
  const trackName = (pid: number, tid: number) =>
    events.find((e) => e.ph === 'M' && e.name === 'thread_name' && e.pid === pid && e.tid === tid)?.args?.name;
  const processName = (pid: number) => events.find((e) => e.ph === 'M' && e.name === 'process_name' && e.pid === pid)?.args?.name;

  it('kernels on a track per device + stream, times in µs', () => {
    const kernels = events.filter((e) => e.cat === 'kernel');
    expect(kernels).toHaveLength(8);
    expect(kernels[0]).toMatchObject({ ph: 'X', name: FIXTURE_STRINGS[0], pid: GPU_PID_BASE, tid: 7, ts: 2, dur: 3 });
    expect(kernels[0].args).toMatchObject({ grid: [128, 1, 1], block: [256, 1, 1], correlationId: 1, registersPerThread: 32 });
    expect(kernels[4]).toMatchObject({ pid: GPU_PID_BASE + 1, tid: 7, ts: 15, dur: 1 });
    // Every kernel event carries its own record's values (the encoder reuses repeated shapes).
    trace.kernels.forEach((k, i) => {
      expect(kernels[i]).toMatchObject({ name: k.name, pid: GPU_PID_BASE + k.deviceId, tid: k.streamId, ts: k.startNs / 1000, dur: k.durationNs / 1000 });
      expect(kernels[i].args).toEqual({
        correlationId: k.correlationId,
        grid: [k.gridX, k.gridY, k.gridZ],
        block: [k.blockX, k.blockY, k.blockZ],
        registersPerThread: k.registersPerThread,
        staticSharedBytes: k.staticSharedBytes,
        dynamicSharedBytes: k.dynamicSharedBytes,
        device: k.deviceId,
        context: k.contextId,
        stream: k.streamId,
      });
    });
    expect(processName(GPU_PID_BASE)).toBe('GPU 0');
    expect(processName(GPU_PID_BASE + 1)).toBe('GPU 1');
    expect(trackName(GPU_PID_BASE, 7)).toBe('stream 7');
    expect(trackName(GPU_PID_BASE, 8)).toBe('stream 8');
    expect(trackName(GPU_PID_BASE + 1, 7)).toBe('stream 7');
    const memcpy = events.find((e) => e.cat === 'memcpy')!;
    expect(memcpy).toMatchObject({ name: 'memcpy HtoD', pid: GPU_PID_BASE, tid: 7, ts: 5, dur: 1 });
    expect(events.find((e) => e.cat === 'memset')).toMatchObject({ ts: 8, dur: 0.2 });
  });

  it('API calls on host process/thread tracks; steps on their own track', () => {
    const api = events.filter((e) => e.cat === 'cuda_runtime' || e.cat === 'cuda_driver');
    expect(api).toHaveLength(6);
    expect(api[0]).toMatchObject({ ph: 'X', name: 'cudaLaunchKernel', pid: 4242, tid: 4243, ts: 1.5, dur: 0.4 });
    expect(api[5]).toMatchObject({ cat: 'cuda_driver', name: 'cuLaunchKernel' });
    expect(processName(4242)).toBe('host process 4242');
    expect(trackName(4242, 4244)).toBe('thread 4244');
    const steps = events.filter((e) => e.cat === 'step');
    expect(steps.map((e) => [e.name, e.pid, e.ts, e.dur])).toEqual([
      ['step 0', STEPS_PID, 1, 10],
      ['step 1', STEPS_PID, 11, 10],
      ['step 2', STEPS_PID, 21, 15],
    ]);
  });

  it('flow arrows from each launch to its kernel/memcpy, bound inside both slices', () => {
    const starts = events.filter((e) => e.ph === 's');
    const ends = events.filter((e) => e.ph === 'f');
    // correlation ids with a launch: 1, 2, 3, 4 (kernels), 5 (driver launch of k4), 10 (memcpy)
    expect(starts).toHaveLength(6);
    expect(ends).toHaveLength(6);
    const slices = events.filter((e) => e.ph === 'X');
    const enclosing = (e: ChromeEvent) => slices.find((x) => x.pid === e.pid && x.tid === e.tid && x.ts <= e.ts && e.ts <= x.ts + x.dur!);
    for (const s of starts) {
      const f = ends.find((x) => x.id === s.id)!;
      const from = enclosing(s)!;
      const to = enclosing(f)!;
      expect(from.args!.correlationId).toBe(to.args!.correlationId);
      expect(['cuda_runtime', 'cuda_driver']).toContain(from.cat);
      expect(['kernel', 'memcpy', 'memset']).toContain(to.cat);
    }
  });

  it('NVTX ranges as async slices, marks as instants, names escaped; metadata attached', () => {
    const b = events.find((e) => e.ph === 'b')!;
    expect(b).toMatchObject({ name: 'decode_step', cat: 'nvtx', pid: 4242, tid: 4243, ts: 1 });
    expect(events.find((e) => e.ph === 'e' && e.id === b.id)!.ts).toBe(10.9);
    expect(events.find((e) => e.ph === 'i')).toMatchObject({ name: 'say "hi"\\n', ts: 12.5, args: { domain: 'my_domain' } });
    expect(otherData).toMatchObject({ id: '20261122T230000Z-0123abcd', reason: 'steps', baseNs: '1763851234567890123', droppedByCupti: 3 });
  });

  it('streams in Buffer chunks that concatenate to the same JSON', () => {
    const chunks = [...trace.chromeTraceChunks(4096)];
    expect(chunks.length).toBeGreaterThan(1);
    expect(Buffer.concat(chunks).toString('utf8')).toBe(trace.toChromeTrace());
  });

  it('writes µs with exact ns fractions and large or negative times', () => {
    const t = fixtureTrace(
      fixtureResult({
        kernels: Float64Array.from([
          [-1500, 1, 0, 1, 7, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
          [123456789012345, 123456789012345 + 1005, 0, 1, 7, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
          [7, 2057, 0, 1, 7, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
        ].flat()),
      }),
    );
    const kernels = validateChromeTrace(t.toChromeTrace()).events.filter((e) => e.cat === 'kernel');
    expect(kernels.map((k) => [k.ts, k.dur])).toEqual([
      [-1.5, 1.501],
      [123456789012.345, 1.005],
      [0.007, 2.05],
    ]);
  });
});
