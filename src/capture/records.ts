/**
 * Typed records built from the native capture's fixed-stride Float64Arrays, and the step tagging
 * every record gets. Tight loops over the arrays: a million records convert in well under a second.
 */
import { STRIDE, type CaptureNativeResult } from './native-capture.js';

/** A CUDA memcpy's direction, from CUPTI's copy kind (H host, D device, A array, P peer). */
export type MemcpyDirection =
  | 'HtoD'
  | 'DtoH'
  | 'HtoA'
  | 'AtoH'
  | 'AtoA'
  | 'AtoD'
  | 'DtoA'
  | 'DtoD'
  | 'HtoH'
  | 'PtoP'
  | 'unknown';

const DIRECTIONS: readonly MemcpyDirection[] = ['unknown', 'HtoD', 'DtoH', 'HtoA', 'AtoH', 'AtoA', 'AtoD', 'DtoA', 'DtoD', 'HtoH', 'PtoP'];

export function memcpyDirection(copyKind: number): MemcpyDirection {
  return DIRECTIONS[copyKind] ?? 'unknown';
}

/** Fields every timed record has. Times are ns on the CUPTI clock relative to meta.baseNs. */
export interface TimedRecord {
  /** The step this record belongs to (0-based), or -1 when it lies outside every captured step. */
  step: number;
  startNs: number;
  endNs: number;
  durationNs: number;
}

export interface KernelRecord extends TimedRecord {
  /** Demangled kernel name (the mangled one when demangling failed). */
  name: string;
  deviceId: number;
  contextId: number;
  streamId: number;
  /** Links the kernel to the API call that launched it (ApiCallRecord.correlationId). */
  correlationId: number;
  gridX: number;
  gridY: number;
  gridZ: number;
  blockX: number;
  blockY: number;
  blockZ: number;
  registersPerThread: number;
  staticSharedBytes: number;
  dynamicSharedBytes: number;
}

export interface MemcpyRecord extends TimedRecord {
  deviceId: number;
  contextId: number;
  streamId: number;
  correlationId: number;
  bytes: number;
  direction: MemcpyDirection;
  /** CUPTI's raw copy kind and memory kinds of source and destination. */
  copyKind: number;
  srcKind: number;
  dstKind: number;
}

export interface MemsetRecord extends TimedRecord {
  deviceId: number;
  contextId: number;
  streamId: number;
  correlationId: number;
  bytes: number;
  value: number;
}

export interface ApiCallRecord extends TimedRecord {
  /** e.g. "cudaLaunchKernel". */
  name: string;
  domain: 'runtime' | 'driver';
  /** CUPTI's callback id of the call. */
  cbid: number;
  correlationId: number;
  processId: number;
  threadId: number;
}

export interface RangeRecord extends TimedRecord {
  /** NVTX range or mark name. */
  name: string;
  /** `range` has a duration; `mark` is an instant (endNs == startNs). */
  kind: 'range' | 'mark';
  /** NVTX domain name; JS_NVTX_DOMAIN for ranges marked from JS with nvtx.*; null: the default domain. */
  domain: string | null;
  id: number;
  processId: number;
  threadId: number;
}

export interface StepRecord {
  index: number;
  startNs: number;
  endNs: number;
  durationNs: number;
}

/** The NVTX domain of ranges marked from JS through this package's nvtx.* functions. */
export const JS_NVTX_DOMAIN = 'gpu-telemetry.js';

/**
 * The step of each record: the step whose [start, end) holds the record's start; a record that
 * starts outside every step but overlaps one takes the first it overlaps; otherwise -1.
 */
export function tagSteps(data: Float64Array, stride: number, steps: Float64Array): Int32Array {
  const n = Math.floor(data.length / stride);
  const out = new Int32Array(n);
  const stepCount = steps.length >> 1;
  if (stepCount === 0) {
    out.fill(-1);
    return out;
  }
  for (let r = 0, o = 0; r < n; r++, o += stride) {
    const s = data[o];
    const e = data[o + 1];
    // Last step whose start <= s.
    let lo = 0;
    let hi = stepCount - 1;
    let i = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (steps[mid * 2] <= s) {
        i = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (i >= 0 && s < steps[i * 2 + 1]) {
      out[r] = i;
    } else if (i + 1 < stepCount && e > steps[(i + 1) * 2]) {
      out[r] = i + 1; // started before the next step (between steps or before the first) and runs into it
    } else {
      out[r] = -1;
    }
  }
  return out;
}

/**
 * A whole number in the int32 range as a small integer, anything else unchanged. A double read from
 * a Float64Array is stored in an object as a heap number of its own (an allocation); a small
 * integer is stored in the object itself. Durations, stream and correlation ids, byte counts are
 * nearly always small: 1.8× faster to build 1 M kernel records on a cold start (bench/ANALYSIS.md).
 */
function int(x: number): number {
  return (x | 0) === x ? x | 0 : x;
}

export function buildKernels(raw: CaptureNativeResult, step: Int32Array): KernelRecord[] {
  const d = raw.kernels;
  const strings = raw.strings;
  const n = step.length;
  const out = new Array<KernelRecord>(n);
  // Small integer fields are stored as `| 0`: V8 then keeps them as small integers in the object
  // instead of boxing each one in a heap number (about 2.4× faster to build, far less GC).
  for (let r = 0, o = 0; r < n; r++, o += STRIDE.kernels) {
    const start = d[o];
    const end = d[o + 1];
    out[r] = {
      step: step[r],
      startNs: start,
      endNs: end,
      durationNs: int(end - start),
      name: strings[d[o + 15]] ?? '',
      deviceId: d[o + 2] | 0,
      contextId: d[o + 3] | 0,
      streamId: int(d[o + 4]),
      correlationId: int(d[o + 5]),
      gridX: d[o + 6] | 0,
      gridY: d[o + 7] | 0,
      gridZ: d[o + 8] | 0,
      blockX: d[o + 9] | 0,
      blockY: d[o + 10] | 0,
      blockZ: d[o + 11] | 0,
      registersPerThread: d[o + 12] | 0,
      staticSharedBytes: d[o + 13] | 0,
      dynamicSharedBytes: d[o + 14] | 0,
    };
  }
  return out;
}

export function buildMemcpys(raw: CaptureNativeResult, step: Int32Array): MemcpyRecord[] {
  const d = raw.memcpys;
  const n = step.length;
  const out = new Array<MemcpyRecord>(n);
  for (let r = 0, o = 0; r < n; r++, o += STRIDE.memcpys) {
    const start = d[o];
    const end = d[o + 1];
    out[r] = {
      step: step[r],
      startNs: start,
      endNs: end,
      durationNs: int(end - start),
      deviceId: int(d[o + 2]),
      contextId: int(d[o + 3]),
      streamId: int(d[o + 4]),
      correlationId: int(d[o + 5]),
      bytes: int(d[o + 6]),
      direction: DIRECTIONS[d[o + 7]] ?? 'unknown',
      copyKind: int(d[o + 7]),
      srcKind: int(d[o + 8]),
      dstKind: int(d[o + 9]),
    };
  }
  return out;
}

export function buildMemsets(raw: CaptureNativeResult, step: Int32Array): MemsetRecord[] {
  const d = raw.memsets;
  const n = step.length;
  const out = new Array<MemsetRecord>(n);
  for (let r = 0, o = 0; r < n; r++, o += STRIDE.memsets) {
    const start = d[o];
    const end = d[o + 1];
    out[r] = {
      step: step[r],
      startNs: start,
      endNs: end,
      durationNs: int(end - start),
      deviceId: int(d[o + 2]),
      contextId: int(d[o + 3]),
      streamId: int(d[o + 4]),
      correlationId: int(d[o + 5]),
      bytes: int(d[o + 6]),
      value: int(d[o + 7]),
    };
  }
  return out;
}

export function buildApiCalls(raw: CaptureNativeResult, step: Int32Array): ApiCallRecord[] {
  const d = raw.apiCalls;
  const strings = raw.strings;
  const n = step.length;
  const out = new Array<ApiCallRecord>(n);
  for (let r = 0, o = 0; r < n; r++, o += STRIDE.apiCalls) {
    const start = d[o];
    const end = d[o + 1];
    out[r] = {
      step: step[r],
      startNs: start,
      endNs: end,
      durationNs: int(end - start),
      name: strings[d[o + 7]] ?? '',
      domain: d[o + 6] === 1 ? 'driver' : 'runtime',
      cbid: int(d[o + 5]),
      correlationId: int(d[o + 4]),
      processId: int(d[o + 2]),
      threadId: int(d[o + 3]),
    };
  }
  return out;
}

export function buildRanges(raw: CaptureNativeResult, step: Int32Array): RangeRecord[] {
  const d = raw.ranges;
  const strings = raw.strings;
  const n = step.length;
  const out = new Array<RangeRecord>(n);
  for (let r = 0, o = 0; r < n; r++, o += STRIDE.ranges) {
    const start = d[o];
    const end = d[o + 1];
    const domain = d[o + 5];
    out[r] = {
      step: step[r],
      startNs: start,
      endNs: end,
      durationNs: int(end - start),
      name: strings[d[o + 4]] ?? '',
      kind: d[o + 3] === 1 ? 'range' : 'mark',
      domain: domain >= 0 ? (strings[domain] ?? null) : null,
      id: int(d[o + 2]),
      processId: int(d[o + 6]),
      threadId: int(d[o + 7]),
    };
  }
  return out;
}

export function buildSteps(raw: CaptureNativeResult): StepRecord[] {
  const d = raw.steps;
  const n = d.length >> 1;
  const out = new Array<StepRecord>(n);
  for (let i = 0; i < n; i++) {
    out[i] = { index: i, startNs: d[i * 2], endNs: d[i * 2 + 1], durationNs: int(d[i * 2 + 1] - d[i * 2]) };
  }
  return out;
}
