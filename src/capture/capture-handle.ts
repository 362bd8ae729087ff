/**
 * One kernel-trace capture: drives the native capture's life (start, steps, timeout, cancel,
 * close), records JS NVTX ranges on its clock, links it to OpenTelemetry, and turns the native
 * result into a KernelTrace. gpu.capture (capture.ts) arms it.
 */
import { randomBytes } from 'node:crypto';
import { isMainThread, threadId } from 'node:worker_threads';
import { createRequire } from 'node:module';
import type * as OtelApi from '@opentelemetry/api';
import type { Span } from '@opentelemetry/api';
import { GpuTelemetryError, type GpuTelemetryErrorCode } from '../errors.js';
import { setNvtxSink, currentNvtxSink, type NvtxSink } from '../nvtx.js';
import {
  STRIDE,
  type CaptureNative,
  type CaptureNativeFactory,
  type CaptureNativeOptions,
  type CaptureNativeResult,
  type CaptureNativeStartResult as NativeCaptureStartResult,
} from './native-capture.js';
import { countEnded, liveCapture, totals } from './capture-registry.js';
import type { ResolvedCaptureOptions } from './options.js';
import { JS_NVTX_DOMAIN } from './records.js';
import { KernelTrace, type CaptureStopReason, type KernelTraceMeta } from './trace.js';

// The OpenTelemetry API is loaded when a capture is first armed, not with this module: telemetry.ts
// imports it (through capture.ts), and the API's ~40 CommonJS files were ~35 ms of every `gpu-telemetry
// snapshot` (bench, section 5c). require() gives the CommonJS copy; it shares the global tracer
// provider and context manager with the ES module copy (one global registry per API version).
let otelApi: typeof OtelApi | undefined;
const otel = (): typeof OtelApi => (otelApi ??= createRequire(import.meta.url)('@opentelemetry/api') as typeof OtelApi);

export type CaptureState = 'starting' | 'waiting' | 'capturing' | 'stopping' | 'finished' | 'failed';

export interface CaptureProgress {
  /**
   * `starting`: arm() returned, the capture thread is loading and enabling CUPTI (its first enable
   * can take seconds); `waiting`: armed, before startAfterSteps boundaries; `capturing`;
   * `stopping`: draining; then `finished` or `failed`.
   */
  state: CaptureState;
  /** Steps captured so far, of stepsRequested. */
  steps: number;
  stepsRequested: number;
  /** Records held (native records + JS ranges). */
  records: number;
  /** Memory the capture holds now (bytes, native side). */
  bytes: number;
  /** Records dropped by CUPTI (its buffers were full) and by us (caps). */
  droppedByCupti: number;
  droppedByUs: number;
  /** Records CUPTI handed back incomplete (still in flight at the final forced flush): lost. */
  droppedIncomplete: number;
  /** Wall time since arm() (ms). */
  elapsedMs: number;
}


/** After stop(), how long the native side may take beyond the drain before the handle gives up. */
const STOP_GRACE_MS = 10_000;
const MAX_STRING_TABLE = 100_000;

function newCaptureId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(4).toString('hex')}`;
}


const START_ERROR_CODES: GpuTelemetryErrorCode[] = [
  'TARGET_NOT_FOUND',
  'TARGET_EXITED',
  'NOT_INJECTED',
  'NO_PERMISSION',
  'PROTOCOL_ERROR',
  'LIBRARY_NOT_FOUND',
  'SYMBOL_MISSING',
  'UNSUPPORTED_CUPTI_VERSION',
  'CUPTI_BUSY',
  'CUPTI_ERROR',
  'CAPTURE_BUSY',
  'INVALID_SCENARIO',
  'INVALID_OPTION',
];


/**
 * @internal A capture of another process (armProcess): its CUDA work is captured by the injection
 * library inside it, so this process's JS NVTX ranges, step() and capture counters stay out of it.
 */
export interface RemoteCaptureInfo {
  pid: number;
  processName: string | null;
  /** The time window (ms) when steps are not counted by NVTX range; null with stepRange. */
  durationMs: number | null;
}

/** A live (or finished) capture: progress, step(), cancel(), and `done` with the KernelTrace. */
export class CaptureHandle {
  readonly id: string;
  readonly options: Readonly<ResolvedCaptureOptions>;
  /**
   * Resolves once the capture is armed (CUPTI loaded, subscribed and enabled on the native thread:
   * state `waiting` or `capturing`), or when it ended before that (cancelled while starting);
   * rejects, like `done`, when CUPTI could not be started (LIBRARY_NOT_FOUND, CUPTI_BUSY, …).
   */
  readonly ready: Promise<void>;
  /** Resolves with the trace when the capture ends (steps done, cap, timeout, cancel); rejects only if nothing could be captured. */
  readonly done: Promise<KernelTrace>;

  /** @internal */
  readonly owner: CaptureNativeFactory;
  /** @internal The KernelCapture that armed it. */
  readonly creator: object;
  /** @internal Set for a capture of another process (armProcess). */
  readonly remote: Readonly<RemoteCaptureInfo> | null;
  private native: CaptureNative | null = null;
  private readonly nativeOptions: CaptureNativeOptions;
  private resolveDone!: (t: KernelTrace) => void;
  private rejectDone!: (e: Error) => void;
  private resolveReady!: () => void;
  private rejectReady!: (e: Error) => void;
  /** True from arm() until the native thread has answered ('started', 'failed' or an early 'stopped'). */
  private starting = true;
  private settled: 'finished' | 'failed' | null = null;
  private stopReason: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  private readonly armedAt = new Date();
  private clock: KernelTraceMeta['clock'] = null;
  private finalProgress: CaptureProgress | null = null;
  private span: Span | null = null;
  private otel: KernelTraceMeta['otel'] = null;
  private readonly sink: NvtxSink;
  // JS ranges: [start, end, nameIndex, isRange] per range.
  private jsData: number[] = [];
  private readonly jsNames = new Map<string, number>();
  private jsDropped = 0;

  /** @internal Use gpu.capture.arm(). */
  constructor(
    options: ResolvedCaptureOptions,
    factory: CaptureNativeFactory,
    nativeOptions: CaptureNativeOptions,
    creator: object,
    remote: RemoteCaptureInfo | null = null,
  ) {
    this.id = newCaptureId(this.armedAt);
    this.creator = creator;
    this.remote = remote ? Object.freeze({ ...remote }) : null;
    this.options = Object.freeze({ ...options, kinds: Object.freeze({ ...options.kinds }) });
    this.owner = factory;
    this.nativeOptions = nativeOptions;
    this.done = new Promise<KernelTrace>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => undefined); // a capture nobody awaits must not be an unhandled rejection
    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => undefined);
    this.sink = {
      timestamp: () => (this.native && !this.starting ? this.native.timestamp() : 0),
      record: (start, end, name, isRange) => this.recordJs(start, end, name, isRange),
    };
  }

  /** @internal Returns at once; the native thread answers with 'started' or 'failed'. */
  start(): void {
    this.startSpan();
    let native: CaptureNative;
    try {
      native = this.owner(this.nativeOptions, (event, reason) => {
        // Events come from the native thread through the event loop; each is handled on its own tick.
        if (event === 'started') setImmediate(() => this.onStarted());
        else if (event === 'failed') setImmediate(() => this.onFailed());
        else if (event === 'stopped') setImmediate(() => this.finish(reason ?? ''));
      });
    } catch (cause) {
      const e =
        cause instanceof GpuTelemetryError
          ? cause
          : new GpuTelemetryError('ADDON_LOAD_FAILED', `capture.arm(): ${(cause as Error).message}`, { cause });
      this.failStart(e);
      throw e;
    }
    let r: ReturnType<CaptureNative['start']>;
    try {
      r = native.start();
    } catch (cause) {
      r = { ok: false, code: 'CUPTI_ERROR', message: `start() failed: ${(cause as Error).message}` };
    }
    if (!r.ok) {
      // Refused at once, without touching CUPTI (another capture is live in this process, ...).
      native.close();
      const e = startError(r, 'capture.arm()', this.nativeOptions.cuptiCandidates);
      this.failStart(e);
      throw e;
    }
    this.native = native;
    // The wall-time cap covers the start too.
    this.timer = setTimeout(() => this.stopWith('timeout'), this.options.timeoutMs);
    this.timer.unref();
  }

  /** CUPTI is set up on the native thread: the capture is armed. */
  private onStarted(): void {
    const native = this.native;
    if (!this.starting || this.settled || !native) return;
    this.starting = false;
    if (!this.remote) totals.armed++;
    try {
      this.clock = { cuptiNsAtArm: native.timestamp(), epochMsAtArm: Date.now() };
    } catch {
      this.clock = null;
    }
    // JS ranges are this process's: they go into a capture of this process only.
    if (this.stopReason === null && !this.remote) setNvtxSink(this.sink);
    this.resolveReady();
  }

  /** The native thread could not set CUPTI up: nothing is enabled or subscribed. */
  private onFailed(): void {
    const native = this.native;
    if (this.settled || !native) return;
    let r: ReturnType<CaptureNative['startResult']> = null;
    try {
      r = native.startResult();
    } catch {
      r = null;
    }
    const e = startError(r ?? { ok: false, code: 'CUPTI_ERROR' }, 'capture.arm()', this.nativeOptions.cuptiCandidates);
    this.release();
    this.failStart(e);
  }

  private failStart(e: GpuTelemetryError): void {
    this.settled = 'failed';
    this.starting = false;
    this.finalProgress = { ...this.emptyProgress(), state: 'failed' };
    this.rejectWith(e);
  }

  /** Ends the capture's span (if any) with the error, and rejects `ready` and `done` with it. */
  private rejectWith(e: GpuTelemetryError): void {
    if (this.span) {
      this.span.recordException(e);
      this.span.setStatus({ code: otel().SpanStatusCode.ERROR, message: `${e.code}: ${e.message}` });
      this.span.end();
    }
    this.rejectReady(e);
    this.rejectDone(e);
  }

  private startSpan(): void {
    const { context, isSpanContextValid, trace } = otel();
    const active = trace.getActiveSpan();
    const activeCtx = active?.spanContext();
    const tracer = trace.getTracer('gpu-telemetry');
    const span = tracer.startSpan(
      'gpu.kernel_capture',
      {
        attributes: {
          'gpu.capture.id': this.id,
          'gpu.capture.steps_requested': this.options.steps,
          'gpu.capture.start_after_steps': this.options.startAfterSteps,
          'gpu.capture.max_bytes': this.options.maxBytes,
          'gpu.capture.max_records': this.options.maxRecords,
          'gpu.capture.timeout_ms': this.options.timeoutMs,
          ...(this.options.stepRange ? { 'gpu.capture.step_range': this.options.stepRange } : {}),
          ...(this.remote ? { 'gpu.capture.pid': this.remote.pid } : {}),
          ...(this.remote?.durationMs ? { 'gpu.capture.duration_ms': this.remote.durationMs } : {}),
        },
      },
      context.active(),
    );
    this.span = span;
    const own = span.spanContext();
    const ownValid = isSpanContextValid(own);
    if (activeCtx && isSpanContextValid(activeCtx)) {
      this.otel = { traceId: activeCtx.traceId, spanId: activeCtx.spanId, captureSpanId: ownValid ? own.spanId : null };
    } else if (ownValid) {
      this.otel = { traceId: own.traceId, spanId: null, captureSpanId: own.spanId };
    }
  }

  private emptyProgress(): CaptureProgress {
    return {
      state: 'starting',
      steps: 0,
      stepsRequested: this.options.steps,
      records: 0,
      bytes: 0,
      droppedByCupti: 0,
      droppedByUs: 0,
      droppedIncomplete: 0,
      elapsedMs: Date.now() - this.armedAt.getTime(),
    };
  }

  get state(): CaptureState {
    if (this.settled) return this.settled;
    if (this.stopReason !== null) return 'stopping';
    if (!this.native || this.starting) return 'starting';
    const s = this.native.progress().state;
    return s === 'finished' ? 'stopping' : s;
  }

  /** Steps, records, bytes and drops right now (final values once the capture has ended). */
  get progress(): CaptureProgress {
    if (this.finalProgress) return { ...this.finalProgress };
    if (!this.native) return this.emptyProgress();
    const p = this.native.progress();
    return {
      state: this.stopReason !== null || p.state === 'finished' ? 'stopping' : this.starting ? 'starting' : p.state,
      steps: p.steps,
      stepsRequested: this.options.steps,
      records: p.records + this.jsData.length / 4,
      bytes: p.bytes,
      droppedByCupti: p.droppedByCupti,
      droppedByUs: p.droppedByUs + this.jsDropped,
      droppedIncomplete: p.droppedIncomplete,
      elapsedMs: Date.now() - this.armedAt.getTime(),
    };
  }

  /**
   * Marks a step boundary (when steps are counted by step() calls, the default). Cheap; a no-op
   * while the capture is still starting (the first step begins once it is armed) and once it has
   * ended, so a serving loop can keep calling it.
   */
  step(): void {
    const native = this.native;
    if (native === null || this.stopReason !== null || this.settled) return;
    if (this.remote) {
      throw new GpuTelemetryError(
        'INVALID_OPTION',
        `cap.step(): this capture runs in process ${this.remote.pid}: its steps are that process's NVTX ranges (stepRange) or a time window (durationMs)`,
        { option: 'stepRange' },
      );
    }
    if (this.options.stepRange !== null) {
      throw new GpuTelemetryError(
        'INVALID_OPTION',
        `cap.step(): this capture counts NVTX ranges named "${this.options.stepRange}" as steps (stepRange); step() is not used then`,
        { option: 'stepRange' },
      );
    }
    native.step();
  }

  /** Stops the capture now; `done` resolves with what was captured (reason 'cancelled'). */
  cancel(): Promise<KernelTrace> {
    this.stopWith('cancelled');
    return this.done;
  }

  /** @internal */
  stopWith(reason: CaptureStopReason): void {
    if (this.settled || this.stopReason !== null || !this.native) return;
    this.stopReason = reason;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.native.stop(reason);
    const graceMs = this.options.drainTimeoutMs + STOP_GRACE_MS;
    this.graceTimer = setTimeout(() => {
      // The native side never said it stopped (CUPTI stuck in a call): give up on its records
      // rather than hang; the native thread still unwinds on its own when CUPTI returns.
      this.fail(new GpuTelemetryError('TIMEOUT', `capture ${this.id}: the native capture did not stop within ${graceMs} ms of stop('${reason}')`));
    }, graceMs);
    this.graceTimer.unref();
  }

  private recordJs(start: number, end: number, name: string, isRange: boolean): void {
    if (this.settled || this.stopReason !== null) return;
    if (this.jsData.length / 4 >= this.options.maxRecords) {
      this.jsDropped++;
      return;
    }
    let idx = this.jsNames.get(name);
    if (idx === undefined) {
      if (this.jsNames.size >= MAX_STRING_TABLE) {
        this.jsDropped++;
        return;
      }
      idx = this.jsNames.size;
      this.jsNames.set(name, idx);
    }
    this.jsData.push(start, end, idx, isRange ? 1 : 0);
  }

  private release(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.timer = null;
    this.graceTimer = null;
    if (currentNvtxSink() === this.sink) setNvtxSink(null);
    if (liveCapture.handle === this) liveCapture.handle = null;
    const native = this.native;
    this.native = null;
    if (native) {
      try {
        native.close();
      } catch {
        // close() is documented not to throw; nothing more to do
      }
    }
  }

  private fail(e: GpuTelemetryError): void {
    if (this.settled) return;
    const last = this.native ? this.safeProgress() : null;
    this.release();
    this.settled = 'failed';
    this.finalProgress = { ...(last ?? this.emptyProgress()), state: 'failed' };
    if (!this.remote) countEnded('failed');
    this.rejectWith(e);
  }

  private safeProgress(): CaptureProgress | null {
    try {
      return this.progress;
    } catch {
      return null;
    }
  }

  private finish(eventReason: string): void {
    if (this.settled || !this.native) return;
    if (this.starting) {
      // Stopped before CUPTI was enabled (cancelled while starting): the start is over.
      this.starting = false;
      this.resolveReady();
    }
    let raw: CaptureNativeResult;
    try {
      raw = this.native.result();
    } catch (cause) {
      this.fail(new GpuTelemetryError('CAPTURE_FAILED', `capture ${this.id}: reading the records failed: ${(cause as Error).message}`, { cause }));
      return;
    }
    this.release();
    this.resolveReady(); // a no-op unless the capture ended before 'started' was handled
    const merged = this.mergeJsRanges(raw);
    const reason = raw.reason || this.stopReason || eventReason;
    const stepsCaptured = merged.steps.length >> 1;
    const records =
      merged.kernels.length / STRIDE.kernels +
      merged.memcpys.length / STRIDE.memcpys +
      merged.memsets.length / STRIDE.memsets +
      merged.apiCalls.length / STRIDE.apiCalls +
      merged.ranges.length / STRIDE.ranges;
    if (reason === 'error' && records === 0 && stepsCaptured === 0) {
      this.fail(new GpuTelemetryError('CAPTURE_FAILED', `capture ${this.id}: CUPTI reported an error before any record was captured`));
      return;
    }
    const droppedByUs = merged.droppedByUs + this.jsDropped;
    const meta: KernelTraceMeta = {
      id: this.id,
      pid: this.remote ? this.remote.pid : process.pid,
      processName: this.remote ? this.remote.processName : null,
      durationMs: this.remote ? this.remote.durationMs : null,
      reason,
      truncated:
        merged.truncated ||
        stepsCaptured < this.options.steps ||
        // A time window is whole only when it ran out (a cancel, the timeout, the target's exit cut it).
        (this.remote?.durationMs != null && reason !== 'duration') ||
        reason === 'target_exited' ||
        merged.droppedByCupti > 0 ||
        droppedByUs > 0 ||
        merged.droppedIncomplete > 0,
      stepsRequested: this.options.steps,
      stepsCaptured,
      startAfterSteps: this.options.startAfterSteps,
      stepRange: this.options.stepRange,
      stepDomain: this.options.stepDomain,
      cuptiVersion: merged.cuptiVersion,
      layout: merged.layout,
      subscriberMode: merged.subscriberMode ?? 'exclusive',
      libraryPath: merged.libraryPath,
      simulated: merged.simulated,
      baseNs: merged.baseNs,
      droppedByCupti: merged.droppedByCupti,
      droppedByUs,
      droppedIncomplete: merged.droppedIncomplete,
      peakBytes: merged.peakBytes,
      buffersCompleted: merged.buffersCompleted,
      limits: {
        maxBytes: this.options.maxBytes,
        maxRecords: this.options.maxRecords,
        bufferBytes: this.options.bufferBytes,
        timeoutMs: this.options.timeoutMs,
      },
      kinds: { ...this.options.kinds },
      armedAt: this.armedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      clock: this.clock,
      otel: this.otel,
      jsRanges: { recorded: this.jsData.length / 4, dropped: this.jsDropped },
    };
    const result = new KernelTrace(merged, meta);
    this.settled = 'finished';
    if (!this.remote) {
      countEnded(reason);
      if (meta.truncated) totals.truncated++;
      totals.records += records;
      totals.droppedByCupti += meta.droppedByCupti;
      totals.droppedByUs += droppedByUs;
      totals.droppedIncomplete += meta.droppedIncomplete;
    }
    this.finalProgress = {
      state: 'finished',
      steps: stepsCaptured,
      stepsRequested: this.options.steps,
      records,
      bytes: 0,
      droppedByCupti: merged.droppedByCupti,
      droppedByUs,
      droppedIncomplete: merged.droppedIncomplete,
      elapsedMs: Date.now() - this.armedAt.getTime(),
    };
    this.jsData = [];
    if (this.span) {
      this.span.setAttributes({
        'gpu.capture.reason': reason,
        'gpu.capture.truncated': meta.truncated,
        'gpu.capture.steps': stepsCaptured,
        'gpu.capture.records': records,
        'gpu.capture.dropped_by_cupti': meta.droppedByCupti,
        'gpu.capture.dropped_by_us': meta.droppedByUs,
        'gpu.capture.dropped_incomplete': meta.droppedIncomplete,
        'gpu.capture.peak_bytes': meta.peakBytes,
        'gpu.capture.cupti_version': meta.cuptiVersion,
        'gpu.capture.cupti_subscriber': meta.subscriberMode,
      });
      if (reason === 'error') this.span.setStatus({ code: otel().SpanStatusCode.ERROR, message: 'CUPTI reported an error mid-capture' });
      if (this.remote) this.span.setAttribute('gpu.capture.process_name', this.remote.processName ?? '');
      this.span.end();
    }
    this.resolveDone(result);
  }

  /** Appends the JS ranges (domain JS_NVTX_DOMAIN, this process/thread) to the native ranges. */
  private mergeJsRanges(raw: CaptureNativeResult): CaptureNativeResult {
    const n = this.jsData.length / 4;
    if (n === 0) return raw;
    const strings = raw.strings.slice();
    const base = strings.length;
    for (const name of this.jsNames.keys()) strings.push(name);
    const domainIndex = strings.length;
    strings.push(JS_NVTX_DOMAIN);
    const RS = STRIDE.ranges;
    const ranges = new Float64Array(raw.ranges.length + n * RS);
    ranges.set(raw.ranges);
    const pid = process.pid;
    // The main thread's OS tid is the pid (what CUPTI reports for it); workers get a synthetic id.
    const tid = isMainThread ? pid : 2_000_000_000 + threadId;
    let maxId = 0;
    for (let o = 2; o < raw.ranges.length; o += RS) if (raw.ranges[o] > maxId) maxId = raw.ranges[o];
    for (let i = 0, o = raw.ranges.length; i < n; i++, o += RS) {
      const j = i * 4;
      ranges[o] = this.jsData[j];
      ranges[o + 1] = this.jsData[j + 1];
      ranges[o + 2] = maxId + 1 + i;
      ranges[o + 3] = this.jsData[j + 3];
      ranges[o + 4] = base + this.jsData[j + 2];
      ranges[o + 5] = domainIndex;
      ranges[o + 6] = pid;
      ranges[o + 7] = tid;
    }
    return { ...raw, strings, ranges };
  }
}

/** The typed error of a start that failed (or was refused): the native code when known, else CUPTI_ERROR. */
export function startError(r: NativeCaptureStartResult, what: string, tried: string[]): GpuTelemetryError {
  const code = START_ERROR_CODES.includes(r.code as GpuTelemetryErrorCode) ? (r.code as GpuTelemetryErrorCode) : 'CUPTI_ERROR';
  return new GpuTelemetryError(code, `${what}: ${r.message ?? 'CUPTI could not be started'}`, {
    vendorCode: r.vendorCode ?? null,
    vendorMessage: r.vendorMessage,
    libraryPath: r.libraryPath,
    tried,
  });
}

