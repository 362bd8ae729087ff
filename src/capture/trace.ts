/**
 * KernelTrace: what a finished capture resolves with. Typed records are built lazily from the
 * native record arrays (on first access), the summary once, and the Chrome trace is streamed.
 */
import type { Writable } from 'node:stream';
import { chromeTraceBuffer, chromeTraceChunks } from './chrome.js';
import { STRIDE, type CaptureNativeKinds, type CaptureNativeResult } from './native-capture.js';
import {
  buildApiCalls,
  buildKernels,
  buildMemcpys,
  buildMemsets,
  buildRanges,
  buildSteps,
  tagSteps,
  type ApiCallRecord,
  type KernelRecord,
  type MemcpyRecord,
  type MemsetRecord,
  type RangeRecord,
  type StepRecord,
} from './records.js';
import { CaptureStore, type SavedCapture, type StoreOptions } from './store.js';
import { summarize, type TraceSummary } from './summary.js';

/**
 * Why a capture ended: `steps` (all requested steps captured), `duration` (armProcess's time window
 * ran out), `max_bytes` / `max_records` (a cap was hit), `timeout` (timeoutMs passed), `cancelled`
 * (cap.cancel()), `closed` (the GpuTelemetry instance was closed), `error` (CUPTI failed
 * mid-capture), `target_exited` (the process armed with armProcess exited mid-capture: the trace
 * holds what had arrived), `disconnected` (its control connection ended while it kept running).
 */
export type CaptureStopReason =
  | 'steps'
  | 'duration'
  | 'max_bytes'
  | 'max_records'
  | 'timeout'
  | 'cancelled'
  | 'closed'
  | 'error'
  | 'target_exited'
  | 'disconnected'
  | (string & {});

export interface KernelTraceMeta {
  /** Capture id (also the name under which save() stores it). */
  id: string;
  /** The process whose CUDA work was captured: this one, or the target of armProcess(). */
  pid: number;
  /** The target's name (/proc/<pid>/comm) for a capture of another process; null in process. */
  processName: string | null;
  /** armProcess() with durationMs: the time window captured (ms); null when steps were counted. */
  durationMs: number | null;
  reason: CaptureStopReason;
  /** True when the trace holds less than was asked for: a cap, the timeout, a cancel, or drops. */
  truncated: boolean;
  stepsRequested: number;
  stepsCaptured: number;
  startAfterSteps: number;
  /** NVTX range name that counted the steps; null: cap.step() did (or a time window). */
  stepRange: string | null;
  /** The NVTX domain step ranges had to be in; null: any. */
  stepDomain: string | null;
  /** What cuptiGetVersion reported, e.g. 130001 (CUDA 13.0) or 26 (CUDA 12.8). */
  cuptiVersion: number;
  /** The record layout generation read, e.g. "cuda13". */
  layout: string;
  /**
   * How the capture subscribed to CUPTI: 'shared' (CUDA 13.3+ multi-subscriber mode:
   * cuptiSubscribe_v2 allowing other subscribers, the subscriber-scoped activity calls; CUPTI's
   * own drop count is then not read, it is every subscriber's) or 'exclusive' (CUPTI's one subscriber).
   */
  subscriberMode: 'shared' | 'exclusive';
  libraryPath: string;
  simulated: boolean;
  /** Absolute CUPTI timestamp (ns, decimal string) every record time is relative to. */
  baseNs: string;
  /** Records CUPTI reported as dropped (its buffers were full). */
  droppedByCupti: number;
  /** Records we dropped (a cap was hit, or no buffer was left under maxBytes). */
  droppedByUs: number;
  /**
   * Records CUPTI handed back incomplete (cuptiActivityGetNextRecord: CUPTI_ERROR_INVALID_KIND):
   * work still in flight when the capture ended and drainTimeoutMs had passed (a kernel still
   * running). Lost: not in the trace.
   */
  droppedIncomplete: number;
  /** Most memory the capture held at once (bytes, native side). */
  peakBytes: number;
  buffersCompleted: number;
  limits: { maxBytes: number; maxRecords: number; bufferBytes: number; timeoutMs: number };
  kinds: CaptureNativeKinds;
  /** When arm() was called (ISO 8601, UTC). */
  armedAt: string;
  /** When the capture had stopped and its records were read (ISO 8601, UTC). */
  finishedAt: string;
  /**
   * Maps the capture clock to wall time: a record at t ns happened at about
   * epochMsAtArm + (t - cuptiNsAtArm) / 1e6 ms since the epoch. null when unknown.
   */
  clock: { cuptiNsAtArm: number; epochMsAtArm: number } | null;
  /** The OpenTelemetry span active at arm() and the gpu.kernel_capture span; null without OTel. */
  otel: { traceId: string; spanId: string | null; captureSpanId: string | null } | null;
  /** JS ranges (nvtx.*) recorded and dropped (over maxRecords). */
  jsRanges: { recorded: number; dropped: number };
}

export class KernelTrace {
  readonly meta: Readonly<KernelTraceMeta>;
  /** @internal The native result (record arrays + strings). */
  readonly raw: CaptureNativeResult;

  private cache: {
    kernelSteps?: Int32Array;
    kernels?: readonly KernelRecord[];
    memcpys?: readonly MemcpyRecord[];
    memsets?: readonly MemsetRecord[];
    apiCalls?: readonly ApiCallRecord[];
    ranges?: readonly RangeRecord[];
    steps?: readonly StepRecord[];
    summary?: TraceSummary;
  } = {};

  constructor(raw: CaptureNativeResult, meta: KernelTraceMeta) {
    this.raw = raw;
    this.meta = Object.freeze({ ...meta });
  }

  private tags(data: Float64Array, stride: number): Int32Array {
    return tagSteps(data, stride, this.raw.steps);
  }

  private kernelSteps(): Int32Array {
    return (this.cache.kernelSteps ??= this.tags(this.raw.kernels, STRIDE.kernels));
  }

  /** Kernel executions, in the order CUPTI delivered them. */
  get kernels(): readonly KernelRecord[] {
    return (this.cache.kernels ??= buildKernels(this.raw, this.kernelSteps()));
  }

  get memcpys(): readonly MemcpyRecord[] {
    return (this.cache.memcpys ??= buildMemcpys(this.raw, this.tags(this.raw.memcpys, STRIDE.memcpys)));
  }

  get memsets(): readonly MemsetRecord[] {
    return (this.cache.memsets ??= buildMemsets(this.raw, this.tags(this.raw.memsets, STRIDE.memsets)));
  }

  /** CUDA runtime / driver API calls (the launch side of launch→kernel). */
  get apiCalls(): readonly ApiCallRecord[] {
    return (this.cache.apiCalls ??= buildApiCalls(this.raw, this.tags(this.raw.apiCalls, STRIDE.apiCalls)));
  }

  /** NVTX ranges and marks, from CUDA code (CUPTI markers) and from JS (nvtx.*). */
  get ranges(): readonly RangeRecord[] {
    return (this.cache.ranges ??= buildRanges(this.raw, this.tags(this.raw.ranges, STRIDE.ranges)));
  }

  /** The captured steps, in order. */
  get steps(): readonly StepRecord[] {
    return (this.cache.steps ??= buildSteps(this.raw));
  }

  /** Per-kernel statistics, busy ratios, idle gaps, step durations, memcpy volume (computed once). */
  summary(): TraceSummary {
    return (this.cache.summary ??= summarize(this.raw, this.kernelSteps(), {
      reason: this.meta.reason,
      truncated: this.meta.truncated,
    }));
  }

  /**
   * The Chrome trace JSON as one string. For large traces prefer save(), writeChromeTrace() or
   * chromeTraceChunks(): a string is limited to about 512 MiB.
   */
  toChromeTrace(): string {
    return chromeTraceBuffer({ raw: this.raw, otherData: { ...this.meta } }).toString('utf8');
  }

  /** The Chrome trace JSON (UTF-8) in Buffers of about `chunkBytes` bytes (default 1 MiB). */
  chromeTraceChunks(chunkBytes?: number): Generator<Buffer> {
    return chromeTraceChunks({ raw: this.raw, otherData: { ...this.meta } }, chunkBytes);
  }

  /** Streams the Chrome trace JSON into `stream` (honours back-pressure; does not end it). */
  async writeChromeTrace(stream: Writable): Promise<void> {
    for (const chunk of this.chromeTraceChunks()) {
      if (!stream.write(chunk)) {
        await new Promise<void>((resolve, reject) => {
          const onDrain = (): void => {
            stream.off('error', onError);
            resolve();
          };
          const onError = (e: Error): void => {
            stream.off('drain', onDrain);
            reject(e);
          };
          stream.once('drain', onDrain);
          stream.once('error', onError);
        });
      }
    }
  }

  /** `{ meta, summary }` as JSON (what save() writes beside the trace). */
  summaryJson(): string {
    return `${JSON.stringify({ meta: this.meta, summary: this.summary() }, null, 2)}\n`;
  }

  /**
   * Writes `gpu-capture-<id>.trace.json` (Chrome/Perfetto) and `gpu-capture-<id>.summary.json` into
   * `dir` (created 0700 if missing; files 0600, never through symlinks), then deletes the oldest
   * captures beyond keepFiles (default 20) and those older than keepDays (default 14).
   */
  async save(dir: string, options?: StoreOptions): Promise<SavedCapture> {
    const store = await CaptureStore.open(dir, options);
    return store.write(this.meta.id, this.chromeTraceChunks(), this.summaryJson());
  }
}
