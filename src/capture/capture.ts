/**
 * gpu.capture: arms a kernel-trace capture (one per process: CUPTI has one subscriber), drives the
 * native capture's life (timeout, cancel, close), records JS NVTX ranges on its clock, links it to
 * OpenTelemetry, and turns the native result into a KernelTrace.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { isMainThread, threadId } from 'node:worker_threads';
import { createRequire } from 'node:module';
import type * as OtelApi from '@opentelemetry/api';
import type { Span } from '@opentelemetry/api';
import { closedError, GpuTelemetryError, type GpuTelemetryErrorCode } from '../errors.js';
import { loadNative } from '../native.js';
import { setNvtxSink, currentNvtxSink, type NvtxSink } from '../nvtx.js';
import {
  addonCaptureFactory,
  STRIDE,
  type CaptureNative,
  type CaptureNativeFactory,
  type CaptureNativeOptions,
  type CaptureNativeResult,
  type CaptureNativeStartResult as NativeCaptureStartResult,
} from './native-capture.js';
import { resolveCaptureOptions, type CaptureOptions, type ResolvedCaptureOptions } from './options.js';
import { JS_NVTX_DOMAIN } from './records.js';
import { KernelTrace, type CaptureStopReason, type KernelTraceMeta } from './trace.js';

// The OpenTelemetry API is loaded when a capture is first armed, not with this module: telemetry.ts
// imports this module, and the API's ~40 CommonJS files were ~35 ms of every `gpu-telemetry
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

/** Where the CUPTI library comes from: set by GpuTelemetry (libraries.cupti / simulate). */
export interface CaptureConfig {
  /** Explicit CUPTI path (libraries.cupti); null: $GPU_TELEMETRY_CUPTI_LIB or the defaults. */
  cuptiLibrary: string | null;
  /** Simulator: its library is the CUPTI library, and this scenario text configures it. */
  simulator: { libraryPath: string; scenarioText: string } | null;
}

/** After stop(), how long the native side may take beyond the drain before the handle gives up. */
const STOP_GRACE_MS = 10_000;
const MAX_STRING_TABLE = 100_000;

/** One live capture per process (CUPTI allows one subscriber). */
let live: CaptureHandle | null = null;
/** A pre-warm in progress (it holds CUPTI's one subscriber meanwhile). */
let prewarming: Promise<PrewarmResult> | null = null;

/** What capture.prewarm() resolves with. */
export interface PrewarmResult {
  libraryPath: string;
  cuptiVersion: number;
  /** The record layout generation the loaded CUPTI's version selects, e.g. "cuda13". */
  layout: string;
  /** How long loading CUPTI, subscribing and the first enable took on the native thread (ms). */
  startMs: number;
  /** 'shared' when CUPTI 13.3+ let it subscribe allowing other subscribers, else 'exclusive'. */
  subscriberMode: 'shared' | 'exclusive';
  /** Wall time from prewarm() to the end of the warm-up (ms). */
  elapsedMs: number;
}

/**
 * What the captures of this process have done since it started (process-wide, like CUPTI's one
 * subscriber): what the exporters publish as gpu_telemetry_capture_* series.
 */
export interface CaptureStats {
  /** A capture is live now (starting, waiting for its start step, capturing or stopping). */
  active: boolean;
  /** Bytes the live capture holds now (native buffers and records; 0 when none is live). */
  activeBytes: number;
  /**
   * Activity buffers lent to CUPTI and not yet returned, across every capture (count and bytes).
   * Normally 0 between captures: a CUPTI that keeps its buffers after a capture has ended keeps
   * this memory (it may still write into it, so it cannot be freed) until it hands them back.
   */
  buffersWithCupti: number;
  bytesWithCupti: number;
  /** Captures armed successfully: CUPTI set up (a refused arm() or a start that failed is not counted). */
  armed: number;
  /**
   * Armed captures that have ended, by outcome: the stop reason of a finished one (steps,
   * max_bytes, max_records, timeout, cancelled, closed, error) or `failed` (no trace).
   */
  ended: Record<string, number>;
  /** Finished captures whose trace is truncated (a cap hit, fewer steps than asked, or drops). */
  truncated: number;
  /** Records kept in finished traces. */
  records: number;
  /**
   * Records lost: CUPTI's own drops (no buffer to write into), ours (caps), and the records CUPTI
   * handed back incomplete (still in flight when the capture ended).
   */
  droppedByCupti: number;
  droppedByUs: number;
  droppedIncomplete: number;
}

const totals = {
  armed: 0,
  ended: new Map<string, number>(),
  truncated: 0,
  records: 0,
  droppedByCupti: 0,
  droppedByUs: 0,
  droppedIncomplete: 0,
};

function countEnded(outcome: string): void {
  totals.ended.set(outcome, (totals.ended.get(outcome) ?? 0) + 1);
}

/** Process-wide capture counters (see CaptureStats); never touches CUPTI beyond the live capture's progress. */
export function captureStats(): CaptureStats {
  let activeBytes = 0;
  if (live !== null) {
    try {
      activeBytes = live.progress.bytes;
    } catch {
      activeBytes = 0;
    }
  }
  let lent = { buffers: 0, bytes: 0 };
  if (totals.armed > 0) {
    // Only once a capture has loaded the addon's capture side: stats alone never load anything.
    try {
      lent = loadNative().captureBuffersWithCupti?.() ?? lent;
    } catch {
      // no addon: nothing was ever lent
    }
  }
  return {
    active: live !== null,
    activeBytes,
    buffersWithCupti: lent.buffers,
    bytesWithCupti: lent.bytes,
    armed: totals.armed,
    ended: Object.fromEntries(totals.ended),
    truncated: totals.truncated,
    records: totals.records,
    droppedByCupti: totals.droppedByCupti,
    droppedByUs: totals.droppedByUs,
    droppedIncomplete: totals.droppedIncomplete,
  };
}

/** The CUPTI libraries to try, in order (the first that loads is used). */
export function cuptiCandidates(config: CaptureConfig): string[] {
  if (config.simulator) return [config.simulator.libraryPath];
  if (config.cuptiLibrary) return [config.cuptiLibrary];
  const env = process.env.GPU_TELEMETRY_CUPTI_LIB;
  if (env !== undefined && env.trim() !== '') return [env];
  const out = ['libcupti.so'];
  // The versioned CUPTI next to the CUDA runtime this process already loaded (torch, onnxruntime, …).
  for (const dir of loadedCudartDirs()) {
    for (const d of [dir, path.join(dir, '..', 'extras', 'CUPTI', 'lib64')]) {
      try {
        for (const f of fs.readdirSync(d).sort().reverse()) {
          if (/^libcupti\.so(\.\d+)*$/.test(f)) out.push(path.join(d, f));
        }
      } catch {
        // not there
      }
    }
  }
  out.push('libcupti.so.13', 'libcupti.so.12', '/usr/local/cuda/lib64/libcupti.so', '/usr/local/cuda/extras/CUPTI/lib64/libcupti.so');
  return [...new Set(out)];
}

function loadedCudartDirs(): string[] {
  try {
    const maps = fs.readFileSync('/proc/self/maps', 'utf8');
    const dirs = new Set<string>();
    for (const m of maps.matchAll(/\s(\/\S*\/)libcudart\.so[^\s/]*$/gm)) dirs.add(path.dirname(`${m[1]}x`));
    return [...dirs];
  } catch {
    return [];
  }
}

function newCaptureId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(4).toString('hex')}`;
}

function layoutOf(version: number): string {
  if (version === 18) return 'cuda11';
  if (version >= 19 && version <= 28) return 'cuda12';
  if (version >= 130000 && version <= 139999) return 'cuda13';
  return 'unsupported';
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

/** gpu.capture: arm kernel-trace captures. */
export class KernelCapture {
  /** @internal */
  constructor(
    private readonly config: CaptureConfig,
    private readonly factory: CaptureNativeFactory = addonCaptureFactory,
    private readonly isClosed: () => boolean = () => false,
  ) {}

  /** The live capture of this process (armed here or through another instance), or null. */
  get active(): CaptureHandle | null {
    return live;
  }

  /**
   * Arms a capture and returns at once (state `starting`): loading CUPTI, subscribing and enabling
   * happen on the capture's native thread (CUPTI's first enable can stall for seconds). Throws
   * only what is known without CUPTI: INVALID_OPTION, CLOSED, CAPTURE_BUSY (a capture, or a
   * pre-warm, is live), ADDON_LOAD_FAILED. A start that fails on the native thread rejects
   * `ready` and `done` with LIBRARY_NOT_FOUND, SYMBOL_MISSING, UNSUPPORTED_CUPTI_VERSION,
   * CUPTI_BUSY, CUPTI_ERROR or INVALID_SCENARIO; nothing stays enabled after it.
   */
  arm(options?: CaptureOptions): CaptureHandle {
    if (this.isClosed()) throw closedError('capture.arm()');
    const resolved = resolveCaptureOptions(options);
    this.assertIdle('capture.arm()');
    const handle = new CaptureHandle(resolved, this.factory, this.nativeOptions(resolved), this);
    live = handle;
    try {
      handle.start();
    } catch (e) {
      live = null;
      throw e;
    }
    return handle;
  }

  /**
   * Pays CUPTI's start-up cost ahead of time, on a native thread: loads CUPTI, subscribes, enables
   * the activity kinds a default capture uses (CUPTI's first enable can stall its caller for
   * seconds) and disables them again, so that a later arm() is armed at once. Call it at service
   * start-up. Resolves with the library and how long the set-up took; rejects like a failed arm
   * (LIBRARY_NOT_FOUND, CUPTI_BUSY, …). While it runs, arm() is CAPTURE_BUSY.
   */
  prewarm(): Promise<PrewarmResult> {
    if (this.isClosed()) return Promise.reject(closedError('capture.prewarm()'));
    try {
      this.assertIdle('capture.prewarm()');
    } catch (e) {
      return Promise.reject(e);
    }
    const t0 = Date.now();
    const resolved = resolveCaptureOptions({ steps: 1, maxBytes: 4 << 20, bufferBytes: 1 << 20, drainTimeoutMs: 0 });
    const nativeOptions = { ...this.nativeOptions(resolved), prewarm: true };
    const run = new Promise<PrewarmResult>((resolve, reject) => {
      let native: CaptureNative | null = null;
      const settle = (fn: () => void) =>
        setImmediate(() => {
          try {
            native?.close();
          } catch {
            // close() does not throw
          }
          prewarming = null;
          fn();
        });
      const onEvent = (event: 'started' | 'failed' | 'stopped'): void => {
        const r = native?.startResult() ?? null;
        if (event === 'failed') {
          settle(() => reject(startError(r ?? { ok: false, code: 'CUPTI_ERROR' }, 'capture.prewarm()', nativeOptions.cuptiCandidates)));
        } else if (event === 'stopped') {
          const version = r?.cuptiVersion ?? 0;
          settle(() =>
            resolve({
              libraryPath: r?.libraryPath ?? '',
              cuptiVersion: version,
              layout: layoutOf(version),
              startMs: r?.startMs ?? 0,
              subscriberMode: r?.subscriberMode ?? 'exclusive',
              elapsedMs: Date.now() - t0,
            }),
          );
        }
      };
      try {
        native = this.factory(nativeOptions, onEvent);
        const r = native.start();
        if (!r.ok) {
          native.close();
          throw startError(r, 'capture.prewarm()', nativeOptions.cuptiCandidates);
        }
      } catch (e) {
        prewarming = null;
        reject(e instanceof GpuTelemetryError ? e : new GpuTelemetryError('ADDON_LOAD_FAILED', `capture.prewarm(): ${(e as Error).message}`, { cause: e }));
      }
    });
    prewarming = run;
    run.catch(() => undefined);
    return run;
  }

  private assertIdle(what: string): void {
    if (live !== null) {
      throw new GpuTelemetryError(
        'CAPTURE_BUSY',
        `${what}: capture ${live.id} is still ${live.state} (one capture at a time per process: CUPTI has one subscriber); ` +
          'await its done promise or cancel() it first',
      );
    }
    if (prewarming !== null) {
      throw new GpuTelemetryError('CAPTURE_BUSY', `${what}: CUPTI is being pre-warmed (one subscriber at a time); await capture.prewarm() first`);
    }
  }

  private nativeOptions(resolved: ResolvedCaptureOptions): CaptureNativeOptions {
    const nativeOptions: CaptureNativeOptions = {
      cuptiCandidates: cuptiCandidates(this.config),
      maxBytes: resolved.maxBytes,
      bufferBytes: resolved.bufferBytes,
      maxRecords: resolved.maxRecords,
      steps: resolved.steps,
      startAfterSteps: resolved.startAfterSteps,
      stepRange: resolved.stepRange,
      ...(resolved.stepDomain !== null ? { stepDomain: resolved.stepDomain } : {}),
      kinds: { ...resolved.kinds },
      flushIntervalMs: resolved.flushIntervalMs,
      drainTimeoutMs: resolved.drainTimeoutMs,
    };
    if (this.config.simulator) nativeOptions.simulatorScenario = this.config.simulator.scenarioText;
    return nativeOptions;
  }

  /** What the captures of this process have done (process-wide counters; see CaptureStats). */
  stats(): CaptureStats {
    return captureStats();
  }

  /**
   * Marks a step boundary for whatever capture is live (armed here, or remotely through the
   * capture endpoint); a no-op when none is, or when the live one counts NVTX ranges (stepRange).
   * Call it once per step from the serving loop: it costs a null check while nobody captures.
   */
  step(): void {
    const h = live;
    if (h !== null && h.options.stepRange === null) h.step();
  }

  /** @internal Called when the owning GpuTelemetry closes: a live capture ends with reason 'closed'. */
  closeInstance(): void {
    if (live && live.creator === this) live.stopWith('closed');
  }
}

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
    if (live === this) live = null;
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
    if (this.span) {
      this.span.recordException(e);
      this.span.setStatus({ code: otel().SpanStatusCode.ERROR, message: `${e.code}: ${e.message}` });
      this.span.end();
    }
    this.rejectReady(e);
    this.rejectDone(e);
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
function startError(r: NativeCaptureStartResult, what: string, tried: string[]): GpuTelemetryError {
  const code = START_ERROR_CODES.includes(r.code as GpuTelemetryErrorCode) ? (r.code as GpuTelemetryErrorCode) : 'CUPTI_ERROR';
  return new GpuTelemetryError(code, `${what}: ${r.message ?? 'CUPTI could not be started'}`, {
    vendorCode: r.vendorCode ?? null,
    vendorMessage: r.vendorMessage,
    libraryPath: r.libraryPath,
    tried,
  });
}
