/**
 * Hand-built native capture results (numbers chosen so that every summary figure can be derived by
 * hand: see capture-trace.test.ts) and a fake NativeCapture that follows the contract, for testing
 * the TypeScript half without CUPTI.
 */
import { expect } from 'vitest';
import type {
  CaptureNative,
  CaptureNativeEventListener,
  CaptureNativeFactory,
  CaptureNativeOptions,
  CaptureNativeProgress,
  CaptureNativeResult,
  CaptureNativeStartResult,
} from '../src/capture/native-capture.js';
import { KernelTrace, type KernelTraceMeta } from '../src/capture/trace.js';

export const S = {
  gemm: 0,
  softmax: 1,
  launch: 2,
  memcpyAsync: 3,
  decodeStep: 4,
  myDomain: 5,
  quoted: 6,
  cuLaunch: 7,
} as const;

export const FIXTURE_STRINGS = [
  'void gemm<128, 64>(float const*, float*)',
  'softmax',
  'cudaLaunchKernel',
  'cudaMemcpyAsync',
  'decode_step',
  'my_domain',
  'say "hi"\\n',
  'cuLaunchKernel',
];

const PID = 4242;
const TID = 4243;

// kernels: start, end, deviceId, contextId, streamId, correlationId, grid xyz, block xyz, regs, static, dynamic, nameIndex
const kernelRows = [
  [2000, 5000, 0, 1, 7, 1, 128, 1, 1, 256, 1, 1, 32, 1024, 0, S.gemm], // k0 step 0
  [6000, 7000, 0, 1, 7, 2, 64, 1, 1, 128, 1, 1, 16, 0, 512, S.softmax], // k1 step 0
  [4000, 9000, 0, 1, 8, 3, 128, 1, 1, 256, 1, 1, 32, 1024, 0, S.gemm], // k2 step 0 (stream 8, overlaps k0)
  [12000, 14000, 0, 1, 7, 4, 128, 1, 1, 256, 1, 1, 32, 1024, 0, S.gemm], // k3 step 1
  [15000, 16000, 1, 2, 7, 5, 64, 1, 1, 128, 1, 1, 16, 0, 512, S.softmax], // k4 step 1, GPU 1
  [20000, 23000, 0, 1, 7, 6, 128, 1, 1, 256, 1, 1, 32, 1024, 0, S.gemm], // k5 starts in step 1, runs into step 2
  [500, 1500, 0, 1, 7, 0, 64, 1, 1, 128, 1, 1, 16, 0, 512, S.softmax], // k6 starts before step 0, overlaps it
  [37000, 38000, 0, 1, 7, 0, 128, 1, 1, 256, 1, 1, 32, 1024, 0, S.gemm], // k7 after the last step: -1
];
// memcpys: start, end, deviceId, contextId, streamId, correlationId, bytes, copyKind, srcKind, dstKind
const memcpyRows = [
  [5000, 6000, 0, 1, 7, 10, 1_000_000, 1, 1, 3], // HtoD, step 0 (between k0 and k1 on stream 7)
  [13000, 15000, 0, 1, 8, 11, 4096, 2, 3, 1], // DtoH, step 1
  [16000, 16500, 0, 1, 7, 0, 2_000_000, 1, 1, 3], // HtoD, step 1
];
// memsets: start, end, deviceId, contextId, streamId, correlationId, bytes, value
const memsetRows = [[8000, 8200, 0, 1, 7, 12, 256, 0]];
// apiCalls: start, end, processId, threadId, correlationId, cbid, domain, nameIndex
const apiRows = [
  [1500, 1900, PID, TID, 1, 211, 0, S.launch],
  [5500, 5800, PID, TID, 2, 211, 0, S.launch],
  [3500, 3800, PID, TID, 3, 211, 0, S.launch],
  [2500, 2900, PID, TID, 10, 41, 0, S.memcpyAsync],
  [11500, 11800, PID, TID + 1, 4, 211, 0, S.launch],
  [14500, 14700, PID, TID, 5, 307, 1, S.cuLaunch],
];
// ranges: start, end, id, isRange, nameIndex, domainIndex, processId, threadId
const rangeRows = [
  [1000, 10900, 1, 1, S.decodeStep, -1, PID, TID],
  [12500, 12500, 2, 0, S.quoted, S.myDomain, PID, TID],
];
const stepRows = [
  [1000, 11000],
  [11000, 21000],
  [21000, 36000],
];

export function fixtureResult(overrides: Partial<CaptureNativeResult> = {}): CaptureNativeResult {
  return {
    baseNs: '1763851234567890123',
    cuptiVersion: 130001,
    layout: 'cuda13',
    libraryPath: '/fake/libcupti.so.13',
    simulated: true,
    reason: 'steps',
    truncated: false,
    kernels: Float64Array.from(kernelRows.flat()),
    memcpys: Float64Array.from(memcpyRows.flat()),
    memsets: Float64Array.from(memsetRows.flat()),
    apiCalls: Float64Array.from(apiRows.flat()),
    ranges: Float64Array.from(rangeRows.flat()),
    steps: Float64Array.from(stepRows.flat()),
    strings: [...FIXTURE_STRINGS],
    droppedByCupti: 3,
    droppedByUs: 4,
    droppedIncomplete: 0,
    subscriberMode: 'exclusive',
    peakBytes: 8 << 20,
    buffersCompleted: 2,
    ...overrides,
  };
}

export function emptyResult(overrides: Partial<CaptureNativeResult> = {}): CaptureNativeResult {
  return fixtureResult({
    kernels: new Float64Array(0),
    memcpys: new Float64Array(0),
    memsets: new Float64Array(0),
    apiCalls: new Float64Array(0),
    ranges: new Float64Array(0),
    steps: new Float64Array(0),
    strings: [],
    droppedByCupti: 0,
    droppedByUs: 0,
    ...overrides,
  });
}

export function fixtureMeta(overrides: Partial<KernelTraceMeta> = {}): KernelTraceMeta {
  return {
    id: '20261122T230000Z-0123abcd',
    pid: 4242,
    processName: null,
    durationMs: null,
    reason: 'steps',
    truncated: false,
    stepsRequested: 3,
    stepsCaptured: 3,
    startAfterSteps: 0,
    stepRange: null,
    stepDomain: null,
    cuptiVersion: 130001,
    layout: 'cuda13',
    subscriberMode: 'exclusive',
    libraryPath: '/fake/libcupti.so.13',
    simulated: true,
    baseNs: '1763851234567890123',
    droppedByCupti: 3,
    droppedByUs: 4,
    droppedIncomplete: 0,
    peakBytes: 8 << 20,
    buffersCompleted: 2,
    limits: { maxBytes: 64 << 20, maxRecords: 1_000_000, bufferBytes: 4 << 20, timeoutMs: 60_000 },
    kinds: { kernels: true, memcpy: true, memset: true, runtimeApi: true, driverApi: true, nvtx: true },
    armedAt: '2026-11-22T23:00:00.000Z',
    finishedAt: '2026-11-22T23:00:01.000Z',
    clock: { cuptiNsAtArm: 0, epochMsAtArm: Date.parse('2026-11-22T23:00:00.000Z') },
    otel: null,
    jsRanges: { recorded: 0, dropped: 0 },
    ...overrides,
  };
}

export function fixtureTrace(raw = fixtureResult(), meta = fixtureMeta()): KernelTrace {
  return new KernelTrace(raw, meta);
}

/**
 * A NativeCapture that follows the contract: start() returns at once and the start's outcome
 * ('started' or 'failed', startResult()) follows asynchronously, as from the capture thread; steps
 * are the intervals between step() calls once started (the first begins at the start, or at the
 * startAfterSteps-th boundary; step() while starting is ignored); each captured step holds one
 * 'fake_kernel' launched by a cudaLaunchKernel; it stops by itself after `steps` steps, and on
 * stop(reason); 'stopped' always arrives asynchronously (a stop while starting takes effect once
 * the start is over).
 */
export class FakeNative implements CaptureNative {
  static instances: FakeNative[] = [];
  /** The outcome of the next start, reported by the capture thread ('started' or 'failed'). */
  static nextStart: CaptureNativeStartResult = { ok: true, cuptiVersion: 130001 };
  /** What the next start() itself returns when set: a refusal known at once (CAPTURE_BUSY, CLOSED). */
  static nextRefusal: CaptureNativeStartResult | null = null;
  /** Hold the next start's outcome until the test calls finishStart() (a CUPTI enable that stalls). */
  static holdStart = false;
  /** Reason the native side reports in result() when set (e.g. 'error'). */
  static forceReason: string | null = null;
  /** Never send 'stopped' (a hung native side). */
  static neverStop = false;

  clock = 0;
  boundaries: number[] = [];
  started = false;
  enabled = false;
  closed = false;
  stopCalls: string[] = [];
  stepCalls = 0;
  /** start() was called and the outcome has not been reported yet. */
  starting = false;
  private outcome: CaptureNativeStartResult | null = null;
  private reason: string | null = null;
  private stoppedSent = false;

  constructor(
    readonly options: CaptureNativeOptions,
    private readonly onEvent: CaptureNativeEventListener,
  ) {
    FakeNative.instances.push(this);
  }

  static reset(): void {
    FakeNative.instances = [];
    FakeNative.nextStart = { ok: true, cuptiVersion: 130001 };
    FakeNative.nextRefusal = null;
    FakeNative.holdStart = false;
    FakeNative.forceReason = null;
    FakeNative.neverStop = false;
  }

  static get last(): FakeNative {
    return FakeNative.instances[FakeNative.instances.length - 1];
  }

  start(): CaptureNativeStartResult {
    if (FakeNative.nextRefusal) return FakeNative.nextRefusal;
    this.started = true;
    this.starting = true;
    if (!FakeNative.holdStart) setImmediate(() => this.finishStart());
    return { ok: true };
  }

  /** The capture thread's answer: 'started' (then a stop requested meanwhile takes effect) or 'failed'. */
  finishStart(): void {
    if (!this.starting || this.closed) return;
    this.starting = false;
    this.outcome = FakeNative.nextStart;
    if (!this.outcome.ok) {
      this.reason = 'error';
      this.onEvent('failed');
      return;
    }
    this.enabled = true;
    this.onEvent('started');
    if (this.stopCalls.length > 0) this.sendStopped(this.stopCalls[0]);
  }

  startResult(): CaptureNativeStartResult | null {
    return this.outcome;
  }

  timestamp(): number {
    this.clock += 1000;
    return this.clock;
  }

  private capturedSteps(): number {
    return Math.max(0, this.boundaries.length - this.options.startAfterSteps);
  }

  step(): number {
    this.stepCalls++;
    const t = this.timestamp();
    if (!this.enabled || this.reason !== null) return t;
    this.boundaries.push(t);
    if (this.capturedSteps() >= this.options.steps) this.sendStopped('steps');
    return t;
  }

  progress(): CaptureNativeProgress {
    const steps = Math.min(this.capturedSteps(), this.options.steps);
    return {
      state: this.starting
        ? 'starting'
        : this.reason !== null
          ? 'finished'
          : this.boundaries.length < this.options.startAfterSteps
            ? 'waiting'
            : 'capturing',
      steps,
      records: steps * 2,
      bytes: this.enabled ? this.options.bufferBytes : 0,
      droppedByCupti: 0,
      droppedByUs: 0,
      droppedIncomplete: 0,
    };
  }

  stop(reason: string): void {
    this.stopCalls.push(reason);
    if (this.starting) return; // takes effect once the start is over
    this.sendStopped(reason);
  }

  private sendStopped(reason: string): void {
    if (this.reason !== null) return;
    this.reason = reason;
    this.enabled = false; // everything disabled, subscriber released
    if (FakeNative.neverStop) return;
    setImmediate(() => {
      if (this.stoppedSent || this.closed) return;
      this.stoppedSent = true;
      this.onEvent('stopped', reason);
    });
  }

  result(): CaptureNativeResult {
    const skip = this.options.startAfterSteps;
    // Step i runs from boundary (skip + i - 1) (or the start, t = 0, when that is -1) to boundary skip + i.
    const steps: number[] = [];
    const kernels: number[] = [];
    const api: number[] = [];
    const count = Math.min(this.capturedSteps(), this.options.steps);
    for (let i = 0; i < count; i++) {
      const s = skip + i - 1 >= 0 ? this.boundaries[skip + i - 1] : 0;
      const e = this.boundaries[skip + i];
      steps.push(s, e);
      const corr = i + 1;
      api.push(s + 10, s + 20, 77, 78, corr, 211, 0, 1);
      kernels.push(s + 100, s + 300, 0, 1, 7, corr, 1, 1, 1, 32, 1, 1, 8, 0, 0, 0);
    }
    return emptyResult({
      reason: FakeNative.forceReason ?? this.reason ?? 'steps',
      truncated: this.reason === 'max_bytes',
      steps: Float64Array.from(steps),
      kernels: FakeNative.forceReason === 'error' ? new Float64Array(0) : Float64Array.from(kernels),
      apiCalls: FakeNative.forceReason === 'error' ? new Float64Array(0) : Float64Array.from(api),
      strings: ['fake_kernel', 'cudaLaunchKernel'],
      libraryPath: this.options.cuptiCandidates[0],
    });
  }

  close(): void {
    this.closed = true;
    this.enabled = false;
  }
}

export const fakeFactory: CaptureNativeFactory = (options, onEvent) => new FakeNative(options, onEvent);

export interface ChromeEvent {
  ph: string;
  name: string;
  cat?: string;
  pid: number;
  tid: number;
  ts: number;
  dur?: number;
  id?: number;
  bp?: string;
  s?: string;
  args?: Record<string, unknown>;
}

/** Validates the Chrome trace event format rules this package relies on; returns the events. */
export function validateChromeTrace(json: string): { events: ChromeEvent[]; otherData: Record<string, unknown> } {
  const parsed = JSON.parse(json) as { traceEvents: ChromeEvent[]; displayTimeUnit: string; otherData: Record<string, unknown> };
  expect(Array.isArray(parsed.traceEvents)).toBe(true);
  expect(['ms', 'ns']).toContain(parsed.displayTimeUnit);
  const phases = new Set(['X', 'M', 's', 'f', 'b', 'e', 'i']);
  const flows = new Map<number, { s: number; f: number }>();
  const asyncOpen = new Map<number, number>();
  for (const e of parsed.traceEvents) {
    expect(phases.has(e.ph), `unknown ph ${e.ph}`).toBe(true);
    expect(Number.isInteger(e.pid), `pid of ${JSON.stringify(e)}`).toBe(true);
    expect(Number.isInteger(e.tid), `tid of ${JSON.stringify(e)}`).toBe(true);
    expect(typeof e.ts === 'number' && Number.isFinite(e.ts), `ts of ${JSON.stringify(e)}`).toBe(true);
    expect(typeof e.name).toBe('string');
    if (e.ph === 'X') {
      expect(typeof e.dur === 'number' && e.dur >= 0, `dur of ${JSON.stringify(e)}`).toBe(true);
    }
    if (e.ph === 's' || e.ph === 'f') {
      const f = flows.get(e.id!) ?? { s: 0, f: 0 };
      f[e.ph]++;
      flows.set(e.id!, f);
      if (e.ph === 'f') expect(e.bp).toBe('e');
    }
    if (e.ph === 'b') asyncOpen.set(e.id!, (asyncOpen.get(e.id!) ?? 0) + 1);
    if (e.ph === 'e') asyncOpen.set(e.id!, (asyncOpen.get(e.id!) ?? 0) - 1);
    if (e.ph === 'i') expect(['t', 'p', 'g']).toContain(e.s);
  }
  for (const [id, f] of flows) expect(f, `flow ${id}`).toEqual({ s: 1, f: 1 });
  for (const [id, n] of asyncOpen) expect(n, `async slice ${id}`).toBe(0);
  return { events: parsed.traceEvents, otherData: parsed.otherData };
}

