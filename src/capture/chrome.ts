/**
 * Chrome trace event JSON (opens in Perfetto and chrome://tracing), written straight from the record
 * arrays in chunks, never as one giant object.
 *
 * Layout:
 * - host processes (the pid CUPTI reports): one thread track per OS thread with its CUDA runtime /
 *   driver API calls (`X` slices); NVTX ranges as async slices (`b`/`e`, they need not nest) and
 *   NVTX marks as instants (`i`) of that process/thread;
 * - one process per GPU ("GPU <deviceId>", pid GPU_PID_BASE + deviceId), one thread track per CUDA
 *   stream ("stream <id>") with its kernels, memcpys and memsets;
 * - a "capture" process (pid STEPS_PID) with the captured steps;
 * - flow arrows (`s` → `f`, bound to the enclosing slices) from each API call to the kernels,
 *   memcpys and memsets it launched (same correlation id).
 * ts and dur are microseconds (ns / 1000, fractional) relative to meta.baseNs on the CUPTI clock.
 */
import { STRIDE, type CaptureNativeResult } from './native-capture.js';
import { JS_NVTX_DOMAIN, memcpyDirection } from './records.js';

export const GPU_PID_BASE = 1_000_000_000;
export const STEPS_PID = 999_999_999;

const DEFAULT_CHUNK_CHARS = 1 << 20;

export interface ChromeTraceInput {
  raw: CaptureNativeResult;
  /** Extra "otherData" written into the trace (the capture metadata). */
  otherData: Record<string, unknown>;
}

function us(ns: number): string {
  return String(ns / 1000);
}

/** Yields the trace JSON in pieces of about chunkChars characters. */
export function* chromeTraceChunks(input: ChromeTraceInput, chunkChars = DEFAULT_CHUNK_CHARS): Generator<string> {
  const { raw } = input;
  const strings = raw.strings;
  const esc: (string | undefined)[] = new Array(strings.length);
  const name = (i: number): string => {
    const v = esc[i];
    if (v !== undefined) return v;
    return (esc[i] = JSON.stringify(strings[i] ?? ''));
  };

  let parts: string[] = [];
  let size = 0;
  let first = true;
  const out: string[] = [];
  // Pushes one event; the caller drains `out` at loop checkpoints.
  const emit = (event: string): void => {
    if (first) {
      parts.push(event);
      first = false;
    } else {
      parts.push(',\n', event);
    }
    size += event.length + 2;
    if (size >= chunkChars) {
      out.push(parts.join(''));
      parts = [];
      size = 0;
    }
  };
  function* drain(): Generator<string> {
    while (out.length) yield out.shift()!;
  }

  yield `{"displayTimeUnit":"ns","otherData":${JSON.stringify(input.otherData)},"traceEvents":[\n`;

  // Track names.
  const hostThreads = new Map<number, Set<number>>();
  const addHost = (pid: number, tid: number): void => {
    let s = hostThreads.get(pid);
    if (!s) hostThreads.set(pid, (s = new Set()));
    s.add(tid);
  };
  const A = raw.apiCalls;
  const AS = STRIDE.apiCalls;
  for (let o = 0; o + AS <= A.length; o += AS) addHost(A[o + 2], A[o + 3]);
  const R = raw.ranges;
  const RS = STRIDE.ranges;
  let jsDomain = -1;
  for (let i = 0; i < strings.length; i++) if (strings[i] === JS_NVTX_DOMAIN) jsDomain = i;
  const jsThreads = new Set<string>();
  for (let o = 0; o + RS <= R.length; o += RS) {
    addHost(R[o + 6], R[o + 7]);
    if (jsDomain >= 0 && R[o + 5] === jsDomain) jsThreads.add(`${R[o + 6]}:${R[o + 7]}`);
  }
  const gpuStreams = new Map<number, Set<number>>();
  const addGpu = (data: Float64Array, stride: number): void => {
    for (let o = 0; o + stride <= data.length; o += stride) {
      let s = gpuStreams.get(data[o + 2]);
      if (!s) gpuStreams.set(data[o + 2], (s = new Set()));
      s.add(data[o + 4]);
    }
  };
  addGpu(raw.kernels, STRIDE.kernels);
  addGpu(raw.memcpys, STRIDE.memcpys);
  addGpu(raw.memsets, STRIDE.memsets);

  for (const [pid, tids] of hostThreads) {
    emit(`{"ph":"M","name":"process_name","pid":${pid},"tid":0,"ts":0,"args":{"name":"host process ${pid}"}}`);
    emit(`{"ph":"M","name":"process_sort_index","pid":${pid},"tid":0,"ts":0,"args":{"sort_index":0}}`);
    for (const tid of tids) {
      const label = jsThreads.has(`${pid}:${tid}`) ? `JS thread ${tid} (nvtx.*)` : `thread ${tid}`;
      emit(`{"ph":"M","name":"thread_name","pid":${pid},"tid":${tid},"ts":0,"args":{"name":"${label}"}}`);
    }
  }
  for (const deviceId of [...gpuStreams.keys()].sort((a, b) => a - b)) {
    const pid = GPU_PID_BASE + deviceId;
    emit(`{"ph":"M","name":"process_name","pid":${pid},"tid":0,"ts":0,"args":{"name":"GPU ${deviceId}"}}`);
    emit(`{"ph":"M","name":"process_sort_index","pid":${pid},"tid":0,"ts":0,"args":{"sort_index":${10 + deviceId}}}`);
    for (const streamId of [...gpuStreams.get(deviceId)!].sort((a, b) => a - b)) {
      emit(`{"ph":"M","name":"thread_name","pid":${pid},"tid":${streamId},"ts":0,"args":{"name":"stream ${streamId}"}}`);
    }
  }
  const steps = raw.steps;
  if (steps.length > 0) {
    emit(`{"ph":"M","name":"process_name","pid":${STEPS_PID},"tid":0,"ts":0,"args":{"name":"capture steps"}}`);
    emit(`{"ph":"M","name":"process_sort_index","pid":${STEPS_PID},"tid":0,"ts":0,"args":{"sort_index":-1}}`);
    emit(`{"ph":"M","name":"thread_name","pid":${STEPS_PID},"tid":0,"ts":0,"args":{"name":"steps"}}`);
    for (let i = 0; i < steps.length >> 1; i++) {
      const s = steps[i * 2];
      const e = steps[i * 2 + 1];
      emit(`{"ph":"X","cat":"step","name":"step ${i}","pid":${STEPS_PID},"tid":0,"ts":${us(s)},"dur":${us(e - s)},"args":{"step":${i}}}`);
    }
  }
  yield* drain();

  // API calls, and the launch side of the flows.
  const launchByCorrelation = new Map<number, number>();
  for (let o = 0; o + AS <= A.length; o += AS) {
    const s = A[o];
    const e = A[o + 1];
    const domain = A[o + 6] === 1 ? 'cuda_driver' : 'cuda_runtime';
    emit(
      `{"ph":"X","cat":"${domain}","name":${name(A[o + 7])},"pid":${A[o + 2]},"tid":${A[o + 3]},"ts":${us(s)},"dur":${us(e - s)},"args":{"correlationId":${A[o + 4]},"cbid":${A[o + 5]}}}`,
    );
    if (A[o + 4] !== 0) launchByCorrelation.set(A[o + 4], o);
    if (out.length) yield* drain();
  }

  let flowId = 1;
  const flow = (correlationId: number, pid: number, tid: number, s: number, e: number): void => {
    const a = launchByCorrelation.get(correlationId);
    if (a === undefined) return;
    const id = flowId++;
    const as = A[a];
    const ae = A[a + 1];
    emit(`{"ph":"s","cat":"launch","name":"launch","id":${id},"pid":${A[a + 2]},"tid":${A[a + 3]},"ts":${us(as + (ae - as) / 2)}}`);
    emit(`{"ph":"f","bp":"e","cat":"launch","name":"launch","id":${id},"pid":${pid},"tid":${tid},"ts":${us(s + (e - s) / 2)}}`);
  };

  const K = raw.kernels;
  const KS = STRIDE.kernels;
  for (let o = 0; o + KS <= K.length; o += KS) {
    const s = K[o];
    const e = K[o + 1];
    const pid = GPU_PID_BASE + K[o + 2];
    const tid = K[o + 4];
    emit(
      `{"ph":"X","cat":"kernel","name":${name(K[o + 15])},"pid":${pid},"tid":${tid},"ts":${us(s)},"dur":${us(e - s)},"args":{"correlationId":${K[o + 5]},"grid":[${K[o + 6]},${K[o + 7]},${K[o + 8]}],"block":[${K[o + 9]},${K[o + 10]},${K[o + 11]}],"registersPerThread":${K[o + 12]},"staticSharedBytes":${K[o + 13]},"dynamicSharedBytes":${K[o + 14]},"device":${K[o + 2]},"context":${K[o + 3]},"stream":${tid}}}`,
    );
    if (K[o + 5] !== 0) flow(K[o + 5], pid, tid, s, e);
    if (out.length) yield* drain();
  }
  const M = raw.memcpys;
  const MS = STRIDE.memcpys;
  for (let o = 0; o + MS <= M.length; o += MS) {
    const s = M[o];
    const e = M[o + 1];
    const pid = GPU_PID_BASE + M[o + 2];
    const tid = M[o + 4];
    const dir = memcpyDirection(M[o + 7]);
    emit(
      `{"ph":"X","cat":"memcpy","name":"memcpy ${dir}","pid":${pid},"tid":${tid},"ts":${us(s)},"dur":${us(e - s)},"args":{"correlationId":${M[o + 5]},"bytes":${M[o + 6]},"copyKind":${M[o + 7]},"srcKind":${M[o + 8]},"dstKind":${M[o + 9]}}}`,
    );
    if (M[o + 5] !== 0) flow(M[o + 5], pid, tid, s, e);
    if (out.length) yield* drain();
  }
  const S = raw.memsets;
  const SS = STRIDE.memsets;
  for (let o = 0; o + SS <= S.length; o += SS) {
    const s = S[o];
    const e = S[o + 1];
    const pid = GPU_PID_BASE + S[o + 2];
    const tid = S[o + 4];
    emit(
      `{"ph":"X","cat":"memset","name":"memset","pid":${pid},"tid":${tid},"ts":${us(s)},"dur":${us(e - s)},"args":{"correlationId":${S[o + 5]},"bytes":${S[o + 6]},"value":${S[o + 7]}}}`,
    );
    if (S[o + 5] !== 0) flow(S[o + 5], pid, tid, s, e);
    if (out.length) yield* drain();
  }

  // NVTX ranges (async slices: ranges of one thread need not nest) and marks.
  let asyncId = 1;
  for (let o = 0; o + RS <= R.length; o += RS) {
    const s = R[o];
    const e = R[o + 1];
    const pid = R[o + 6];
    const tid = R[o + 7];
    const domainIndex = R[o + 5];
    const domain = domainIndex >= 0 ? name(domainIndex) : 'null';
    if (R[o + 3] === 1) {
      const id = asyncId++;
      const cat = domainIndex === jsDomain && jsDomain >= 0 ? 'nvtx_js' : 'nvtx';
      emit(`{"ph":"b","cat":"${cat}","name":${name(R[o + 4])},"id":${id},"pid":${pid},"tid":${tid},"ts":${us(s)},"args":{"domain":${domain}}}`);
      emit(`{"ph":"e","cat":"${cat}","name":${name(R[o + 4])},"id":${id},"pid":${pid},"tid":${tid},"ts":${us(e)}}`);
    } else {
      emit(`{"ph":"i","s":"t","cat":"nvtx","name":${name(R[o + 4])},"pid":${pid},"tid":${tid},"ts":${us(s)},"args":{"domain":${domain}}}`);
    }
    if (out.length) yield* drain();
  }
  if (parts.length) out.push(parts.join(''));
  yield* drain();
  yield '\n]}\n';
}

export function chromeTraceString(input: ChromeTraceInput): string {
  let s = '';
  for (const chunk of chromeTraceChunks(input)) s += chunk;
  return s;
}
