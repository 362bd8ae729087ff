/**
 * trace.summary(): what an operator reads first. Computed from the raw record arrays.
 *
 * Definitions (also in the README):
 * - percentiles are nearest-rank: pN = the ceil(N/100 × count)-th smallest value;
 * - the window is [first step start, last step end] when steps were captured, else the span of all
 *   kernel/memcpy/memset records; busy ratios are (union of kernel intervals, clipped to the
 *   window) / window duration, per device and per device+stream;
 * - an idle gap is time between two consecutive kernels of a device (kernel intervals merged
 *   across its streams) in which none runs; only the part inside captured steps counts, and its
 *   share is relative to the total step time. Per step, the same over the union of all devices.
 */
import { STRIDE, type CaptureNativeResult } from './native-capture.js';
import { memcpyDirection, type MemcpyDirection } from './records.js';

export interface DistributionNs {
  count: number;
  totalNs: number;
  meanNs: number;
  p50Ns: number;
  p99Ns: number;
  minNs: number;
  maxNs: number;
}

export interface KernelNameStats extends DistributionNs {
  name: string;
  /** totalNs / total kernel time of the capture (0–1). */
  shareOfKernelTime: number;
}

export interface IdleGapStats {
  /** Gaps with any part inside a captured step (whole window when no steps were captured). */
  count: number;
  totalNs: number;
  p50Ns: number;
  maxNs: number;
  /** totalNs / total step time (0–1); null without steps. */
  shareOfStepTime: number | null;
}

export interface StreamBusy {
  deviceId: number;
  streamId: number;
  kernels: number;
  busyNs: number;
  /** busyNs / window duration (0–1); null for an empty window. */
  busyRatio: number | null;
}

export interface DeviceBusy {
  deviceId: number;
  kernels: number;
  busyNs: number;
  busyRatio: number | null;
  idleGaps: IdleGapStats;
  streams: StreamBusy[];
}

export interface StepSummary {
  index: number;
  startNs: number;
  endNs: number;
  durationNs: number;
  /** Kernels tagged with this step. */
  kernels: number;
  /** Sum of their durations (can exceed durationNs with concurrent streams). */
  kernelNs: number;
  /** Time in the step where any GPU ran a kernel. */
  busyNs: number;
  /** Time in the step between kernels (all GPUs merged) where none ran. */
  idleGapNs: number;
  /** idleGapNs / durationNs (0–1); null for a zero-length step. */
  idleGapShare: number | null;
}

export interface MemcpyVolume {
  direction: MemcpyDirection;
  count: number;
  bytes: number;
  totalNs: number;
  /** bytes / total copy time (bytes per second while copying); null when the copies took no time. */
  bytesPerSecond: number | null;
}

export interface TraceSummary {
  reason: string;
  truncated: boolean;
  window: { startNs: number; endNs: number; durationNs: number };
  records: { kernels: number; memcpys: number; memsets: number; apiCalls: number; ranges: number; steps: number };
  /** Records lost: CUPTI's drops, ours (caps), and those CUPTI handed back incomplete. */
  drops: { byCupti: number; byUs: number; incomplete: number; total: number };
  /** Per kernel name, by total time, largest first. */
  topKernels: KernelNameStats[];
  devices: DeviceBusy[];
  steps: StepSummary[];
  /** Distribution of step durations; null without steps. */
  stepDurations: DistributionNs | null;
  /** Memcpy volume per direction, largest first. */
  memcpy: MemcpyVolume[];
  memset: { count: number; bytes: number };
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  return sorted[Math.min(n, rank) - 1];
}

export function distribution(values: Float64Array): DistributionNs {
  const n = values.length;
  if (n === 0) return { count: 0, totalNs: 0, meanNs: 0, p50Ns: 0, p99Ns: 0, minNs: 0, maxNs: 0 };
  const sorted = values.slice().sort();
  let total = 0;
  for (let i = 0; i < n; i++) total += sorted[i];
  return {
    count: n,
    totalNs: total,
    meanNs: total / n,
    p50Ns: percentile(sorted, 50),
    p99Ns: percentile(sorted, 99),
    minNs: sorted[0],
    maxNs: sorted[n - 1],
  };
}

/** Row indices of `data` ordered by start time (no sort when they already are). */
function orderByStart(data: Float64Array, stride: number): Uint32Array {
  const n = Math.floor(data.length / stride);
  const order = new Uint32Array(n);
  let sorted = true;
  for (let r = 0; r < n; r++) {
    order[r] = r;
    if (r > 0 && data[r * stride] < data[(r - 1) * stride]) sorted = false;
  }
  if (!sorted) {
    const starts = new Float64Array(n);
    for (let r = 0; r < n; r++) starts[r] = data[r * stride];
    order.sort((a, b) => starts[a] - starts[b]);
  }
  return order;
}

/**
 * Union of the intervals of the rows `idx` (ordered by start) of `data`, clipped to [lo, hi]; flat
 * [s0, e0, s1, e1, …].
 */
function mergeIntervals(data: Float64Array, stride: number, idx: ArrayLike<number>, lo: number, hi: number): Float64Array {
  const m = idx.length;
  const out: number[] = [];
  let cs = NaN;
  let ce = NaN;
  for (let k = 0; k < m; k++) {
    const row = idx[k] * stride;
    const s = Math.max(data[row], lo);
    const e = Math.min(data[row + 1], hi);
    if (!(e > s)) continue;
    if (cs !== cs) {
      cs = s;
      ce = e;
    } else if (s <= ce) {
      if (e > ce) ce = e;
    } else {
      out.push(cs, ce);
      cs = s;
      ce = e;
    }
  }
  if (cs === cs) out.push(cs, ce);
  return Float64Array.from(out);
}

function totalLength(merged: Float64Array): number {
  let t = 0;
  for (let i = 0; i < merged.length; i += 2) t += merged[i + 1] - merged[i];
  return t;
}

/** Length of [a, b] ∩ [c, d]. */
function overlap(a: number, b: number, c: number, d: number): number {
  const v = Math.min(b, d) - Math.max(a, c);
  return v > 0 ? v : 0;
}

/** The gaps between consecutive merged intervals, the part of each inside `steps` (all of it without steps). */
function gapPieces(merged: Float64Array, steps: Float64Array): Float64Array {
  const gaps: number[] = [];
  const stepCount = steps.length >> 1;
  let j = 0;
  for (let i = 2; i < merged.length; i += 2) {
    const g0 = merged[i - 1];
    const g1 = merged[i];
    if (stepCount === 0) {
      gaps.push(g1 - g0);
      continue;
    }
    while (j < stepCount && steps[j * 2 + 1] <= g0) j++;
    let inside = 0;
    for (let k = j; k < stepCount && steps[k * 2] < g1; k++) inside += overlap(g0, g1, steps[k * 2], steps[k * 2 + 1]);
    if (inside > 0) gaps.push(inside);
  }
  return Float64Array.from(gaps);
}

function gapStats(pieces: Float64Array, stepTime: number | null): IdleGapStats {
  const sorted = pieces.slice().sort();
  let total = 0;
  for (let i = 0; i < sorted.length; i++) total += sorted[i];
  return {
    count: sorted.length,
    totalNs: total,
    p50Ns: percentile(sorted, 50),
    maxNs: sorted.length ? sorted[sorted.length - 1] : 0,
    shareOfStepTime: stepTime ? total / stepTime : null,
  };
}

export function summarize(raw: CaptureNativeResult, kernelSteps: Int32Array, extra: { truncated: boolean; reason: string }): TraceSummary {
  const K = raw.kernels;
  const KS = STRIDE.kernels;
  const nK = Math.floor(K.length / KS);
  const steps = raw.steps;
  const nSteps = steps.length >> 1;

  // Window.
  let lo = Infinity;
  let hi = -Infinity;
  if (nSteps > 0) {
    lo = steps[0];
    hi = steps[nSteps * 2 - 1];
  } else {
    for (const [data, stride] of [
      [K, KS],
      [raw.memcpys, STRIDE.memcpys],
      [raw.memsets, STRIDE.memsets],
    ] as const) {
      for (let o = 0; o + stride <= data.length; o += stride) {
        if (data[o] < lo) lo = data[o];
        if (data[o + 1] > hi) hi = data[o + 1];
      }
    }
  }
  if (!(hi > lo)) {
    lo = 0;
    hi = 0;
  }
  const windowNs = hi - lo;
  const ratio = (v: number): number | null => (windowNs > 0 ? v / windowNs : null);
  let stepTime = 0;
  for (let i = 0; i < nSteps; i++) stepTime += steps[i * 2 + 1] - steps[i * 2];

  // Per kernel name.
  const byName = new Map<number, number[]>();
  let kernelTotal = 0;
  for (let o = 0; o < nK * KS; o += KS) {
    const d = K[o + 1] - K[o];
    kernelTotal += d;
    let list = byName.get(K[o + 15]);
    if (list === undefined) byName.set(K[o + 15], (list = []));
    list.push(d);
  }
  const topKernels: KernelNameStats[] = [];
  for (const [nameIndex, durations] of byName) {
    const dist = distribution(Float64Array.from(durations));
    topKernels.push({ name: raw.strings[nameIndex] ?? '', ...dist, shareOfKernelTime: kernelTotal > 0 ? dist.totalNs / kernelTotal : 0 });
  }
  topKernels.sort((a, b) => b.totalNs - a.totalNs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  // Per device and stream: rows grouped in start order, so every merge is one linear pass.
  const order = orderByStart(K, KS);
  const byDevice = new Map<number, { rows: number[]; streams: Map<number, number[]> }>();
  for (let k = 0; k < nK; k++) {
    const r = order[k];
    const deviceId = K[r * KS + 2];
    const streamId = K[r * KS + 4];
    let dev = byDevice.get(deviceId);
    if (dev === undefined) byDevice.set(deviceId, (dev = { rows: [], streams: new Map() }));
    dev.rows.push(r);
    let srows = dev.streams.get(streamId);
    if (srows === undefined) dev.streams.set(streamId, (srows = []));
    srows.push(r);
  }
  const devices: DeviceBusy[] = [];
  for (const deviceId of [...byDevice.keys()].sort((a, b) => a - b)) {
    const dev = byDevice.get(deviceId)!;
    const merged = mergeIntervals(K, KS, dev.rows, lo, hi);
    const busy = totalLength(merged);
    const streams: StreamBusy[] = [...dev.streams.keys()]
      .sort((a, b) => a - b)
      .map((streamId) => {
        const srows = dev.streams.get(streamId)!;
        const sb = totalLength(mergeIntervals(K, KS, srows, lo, hi));
        return { deviceId, streamId, kernels: srows.length, busyNs: sb, busyRatio: ratio(sb) };
      });
    devices.push({
      deviceId,
      kernels: dev.rows.length,
      busyNs: busy,
      busyRatio: ratio(busy),
      idleGaps: gapStats(gapPieces(merged, steps), nSteps > 0 ? stepTime : null),
      streams,
    });
  }

  // Per step (all devices merged).
  const stepSummaries: StepSummary[] = [];
  if (nSteps > 0) {
    const merged = mergeIntervals(K, KS, order, lo, hi);
    const counts = new Float64Array(nSteps);
    const kernelNs = new Float64Array(nSteps);
    for (let r = 0; r < nK; r++) {
      const s = kernelSteps[r];
      if (s >= 0) {
        counts[s]++;
        kernelNs[s] += K[r * KS + 1] - K[r * KS];
      }
    }
    let j = 0;
    for (let i = 0; i < nSteps; i++) {
      const ss = steps[i * 2];
      const se = steps[i * 2 + 1];
      while (j < merged.length && merged[j + 1] <= ss) j += 2;
      let busy = 0;
      let gap = 0;
      for (let k = j; k < merged.length && merged[k] < se; k += 2) {
        busy += overlap(merged[k], merged[k + 1], ss, se);
      }
      // Gaps: between consecutive merged intervals, clipped to the step.
      const first = Math.max(2, j);
      for (let k = first; k < merged.length && merged[k - 1] < se; k += 2) {
        gap += overlap(merged[k - 1], merged[k], ss, se);
      }
      const dur = se - ss;
      stepSummaries.push({
        index: i,
        startNs: ss,
        endNs: se,
        durationNs: dur,
        kernels: counts[i],
        kernelNs: kernelNs[i],
        busyNs: busy,
        idleGapNs: gap,
        idleGapShare: dur > 0 ? gap / dur : null,
      });
    }
  }
  let stepDurations: DistributionNs | null = null;
  if (nSteps > 0) {
    const d = new Float64Array(nSteps);
    for (let i = 0; i < nSteps; i++) d[i] = steps[i * 2 + 1] - steps[i * 2];
    stepDurations = distribution(d);
  }

  // Memcpy volume by direction.
  const M = raw.memcpys;
  const MS = STRIDE.memcpys;
  const vol = new Map<MemcpyDirection, MemcpyVolume>();
  for (let o = 0; o + MS <= M.length; o += MS) {
    const dir = memcpyDirection(M[o + 7]);
    let v = vol.get(dir);
    if (!v) vol.set(dir, (v = { direction: dir, count: 0, bytes: 0, totalNs: 0, bytesPerSecond: null }));
    v.count++;
    v.bytes += M[o + 6];
    v.totalNs += M[o + 1] - M[o];
  }
  const memcpy = [...vol.values()]
    .map((v) => ({ ...v, bytesPerSecond: v.totalNs > 0 ? v.bytes / (v.totalNs / 1e9) : null }))
    .sort((a, b) => b.bytes - a.bytes || (a.direction < b.direction ? -1 : 1));
  const S = raw.memsets;
  let memsetBytes = 0;
  for (let o = 0; o + STRIDE.memsets <= S.length; o += STRIDE.memsets) memsetBytes += S[o + 6];

  return {
    reason: extra.reason,
    truncated: extra.truncated,
    window: { startNs: lo, endNs: hi, durationNs: windowNs },
    records: {
      kernels: nK,
      memcpys: Math.floor(M.length / MS),
      memsets: Math.floor(S.length / STRIDE.memsets),
      apiCalls: Math.floor(raw.apiCalls.length / STRIDE.apiCalls),
      ranges: Math.floor(raw.ranges.length / STRIDE.ranges),
      steps: nSteps,
    },
    drops: {
      byCupti: raw.droppedByCupti,
      byUs: raw.droppedByUs,
      incomplete: raw.droppedIncomplete ?? 0,
      total: raw.droppedByCupti + raw.droppedByUs + (raw.droppedIncomplete ?? 0),
    },
    topKernels,
    devices,
    steps: stepSummaries,
    stepDurations,
    memcpy,
    memset: { count: Math.floor(S.length / STRIDE.memsets), bytes: memsetBytes },
  };
}
