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
import { ByteWriter, CHUNK_BYTES, frag, jsonString } from './bytes.js';
import { STRIDE, type CaptureNativeResult } from './native-capture.js';
import { JS_NVTX_DOMAIN, memcpyDirection } from './records.js';

export const GPU_PID_BASE = 1_000_000_000;
export const STEPS_PID = 999_999_999;

export interface ChromeTraceInput {
  raw: CaptureNativeResult;
  /** Extra "otherData" written into the trace (the capture metadata). */
  otherData: Record<string, unknown>;
}

const F = {
  sep: frag(',\n'),
  apiRuntime: frag('{"ph":"X","cat":"cuda_runtime","name":'),
  apiDriver: frag('{"ph":"X","cat":"cuda_driver","name":'),
  pid: frag(',"pid":'),
  tid: frag(',"tid":'),
  ts: frag(',"ts":'),
  dur: frag(',"dur":'),
  argsCorrelation: frag(',"args":{"correlationId":'),
  cbid: frag(',"cbid":'),
  close2: frag('}}'),
  close1: frag('}'),
  flowStart: frag('{"ph":"s","cat":"launch","name":"launch","id":'),
  flowEnd: frag('{"ph":"f","bp":"e","cat":"launch","name":"launch","id":'),
  kernel: frag('{"ph":"X","cat":"kernel","name":'),
  memcpy: frag('{"ph":"X","cat":"memcpy","name":"memcpy '),
  memcpyEnd: frag('"'),
  bytes: frag(',"bytes":'),
  copyKind: frag(',"copyKind":'),
  srcKind: frag(',"srcKind":'),
  dstKind: frag(',"dstKind":'),
  memset: frag('{"ph":"X","cat":"memset","name":"memset"'),
  value: frag(',"value":'),
  rangeBegin: frag('{"ph":"b","cat":"nvtx","name":'),
  rangeBeginJs: frag('{"ph":"b","cat":"nvtx_js","name":'),
  rangeEnd: frag('{"ph":"e","cat":"nvtx","name":'),
  rangeEndJs: frag('{"ph":"e","cat":"nvtx_js","name":'),
  id: frag(',"id":'),
  argsDomain: frag(',"args":{"domain":'),
  mark: frag('{"ph":"i","s":"t","cat":"nvtx","name":'),
  nullValue: frag('null'),
};

/** Yields the trace JSON (UTF-8) in Buffers of about chunkBytes bytes. */
export function* chromeTraceChunks(input: ChromeTraceInput, chunkBytes = CHUNK_BYTES): Generator<Buffer> {
  const { raw } = input;
  const strings = raw.strings;
  const encoded: (Uint8Array | undefined)[] = new Array(strings.length);
  const name = (i: number): Uint8Array => {
    const v = encoded[i];
    if (v !== undefined) return v;
    return (encoded[i] = jsonString(strings[i] ?? ''));
  };
  const w = new ByteWriter(chunkBytes);
  let first = true;
  /** Starts an event with room for `extra` bytes beyond the fixed part. */
  const begin = (extra: number): void => {
    w.ensure(600 + extra);
    if (first) first = false;
    else w.bytes(F.sep);
  };
  const text = (event: string): void => {
    begin(event.length * 3);
    w.ascii(event);
  };
  function* drain(): Generator<Buffer> {
    while (w.done.length) yield w.done.shift()!;
  }

  w.ascii(`{"displayTimeUnit":"ns","otherData":${JSON.stringify(input.otherData)},"traceEvents":[\n`);

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
    let lastDevice = NaN;
    let lastStream = NaN;
    for (let o = 0; o + stride <= data.length; o += stride) {
      if (data[o + 2] === lastDevice && data[o + 4] === lastStream) continue;
      lastDevice = data[o + 2];
      lastStream = data[o + 4];
      let s = gpuStreams.get(lastDevice);
      if (!s) gpuStreams.set(lastDevice, (s = new Set()));
      s.add(lastStream);
    }
  };
  addGpu(raw.kernels, STRIDE.kernels);
  addGpu(raw.memcpys, STRIDE.memcpys);
  addGpu(raw.memsets, STRIDE.memsets);

  for (const [pid, tids] of hostThreads) {
    text(`{"ph":"M","name":"process_name","pid":${pid},"tid":0,"ts":0,"args":{"name":"host process ${pid}"}}`);
    text(`{"ph":"M","name":"process_sort_index","pid":${pid},"tid":0,"ts":0,"args":{"sort_index":0}}`);
    for (const tid of tids) {
      const label = jsThreads.has(`${pid}:${tid}`) ? `JS thread ${tid} (nvtx.*)` : `thread ${tid}`;
      text(`{"ph":"M","name":"thread_name","pid":${pid},"tid":${tid},"ts":0,"args":{"name":"${label}"}}`);
    }
  }
  for (const deviceId of [...gpuStreams.keys()].sort((a, b) => a - b)) {
    const pid = GPU_PID_BASE + deviceId;
    text(`{"ph":"M","name":"process_name","pid":${pid},"tid":0,"ts":0,"args":{"name":"GPU ${deviceId}"}}`);
    text(`{"ph":"M","name":"process_sort_index","pid":${pid},"tid":0,"ts":0,"args":{"sort_index":${10 + deviceId}}}`);
    for (const streamId of [...gpuStreams.get(deviceId)!].sort((a, b) => a - b)) {
      text(`{"ph":"M","name":"thread_name","pid":${pid},"tid":${streamId},"ts":0,"args":{"name":"stream ${streamId}"}}`);
    }
  }
  const steps = raw.steps;
  if (steps.length > 0) {
    text(`{"ph":"M","name":"process_name","pid":${STEPS_PID},"tid":0,"ts":0,"args":{"name":"capture steps"}}`);
    text(`{"ph":"M","name":"process_sort_index","pid":${STEPS_PID},"tid":0,"ts":0,"args":{"sort_index":-1}}`);
    text(`{"ph":"M","name":"thread_name","pid":${STEPS_PID},"tid":0,"ts":0,"args":{"name":"steps"}}`);
    for (let i = 0; i < steps.length >> 1; i++) {
      const s = steps[i * 2];
      const e = steps[i * 2 + 1];
      text(`{"ph":"X","cat":"step","name":"step ${i}","pid":${STEPS_PID},"tid":0,"ts":${s / 1000},"dur":${(e - s) / 1000},"args":{"step":${i}}}`);
    }
  }
  yield* drain();

  // API calls, and the launch side of the flows.
  const launchByCorrelation = new Map<number, number>();
  for (let o = 0; o + AS <= A.length; o += AS) {
    const s = A[o];
    const e = A[o + 1];
    const n = name(A[o + 7]);
    begin(n.length);
    w.bytes(A[o + 6] === 1 ? F.apiDriver : F.apiRuntime);
    w.bytes(n);
    w.bytes(F.pid);
    w.num(A[o + 2]);
    w.bytes(F.tid);
    w.num(A[o + 3]);
    w.bytes(F.ts);
    w.micros(s);
    w.bytes(F.dur);
    w.micros(e - s);
    w.bytes(F.argsCorrelation);
    w.num(A[o + 4]);
    w.bytes(F.cbid);
    w.num(A[o + 5]);
    w.bytes(F.close2);
    if (A[o + 4] !== 0) launchByCorrelation.set(A[o + 4], o);
    if (w.done.length) yield* drain();
  }

  let flowId = 1;
  const flow = (correlationId: number, pid: number, tid: number, s: number, e: number): void => {
    const a = launchByCorrelation.get(correlationId);
    if (a === undefined) return;
    const id = flowId++;
    const as = A[a];
    const ae = A[a + 1];
    begin(0);
    w.bytes(F.flowStart);
    w.num(id);
    w.bytes(F.pid);
    w.num(A[a + 2]);
    w.bytes(F.tid);
    w.num(A[a + 3]);
    w.bytes(F.ts);
    w.micros(as + Math.floor((ae - as) / 2));
    w.bytes(F.close1);
    begin(0);
    w.bytes(F.flowEnd);
    w.num(id);
    w.bytes(F.pid);
    w.num(pid);
    w.bytes(F.tid);
    w.num(tid);
    w.bytes(F.ts);
    w.micros(s + Math.floor((e - s) / 2));
    w.bytes(F.close1);
  };

  // Kernels: the parts that repeat for a kernel name (name, track, launch geometry) are encoded
  // once per distinct configuration and copied as blocks.
  const K = raw.kernels;
  const KS = STRIDE.kernels;
  interface KernelShape {
    key: Float64Array; // deviceId, contextId, streamId, grid xyz, block xyz, regs, static, dynamic
    head: Uint8Array; // {"ph":"X","cat":"kernel","name":…,"pid":…,"tid":…,"ts":
    tail: Uint8Array; // ,"grid":[…],…}}
  }
  // Per kernel name, the last few distinct shapes (a kernel usually runs with few configurations).
  const shapes = new Map<number, KernelShape[]>();
  let nextSlot = 0;
  const shapeOf = (o: number): KernelShape => {
    const nameIndex = K[o + 15];
    let list = shapes.get(nameIndex);
    if (list === undefined) shapes.set(nameIndex, (list = []));
    for (let i = 0; i < list.length; i++) {
      const key = list[i].key;
      if (
        key[0] === K[o + 2] &&
        key[1] === K[o + 3] &&
        key[2] === K[o + 4] &&
        key[3] === K[o + 6] &&
        key[4] === K[o + 7] &&
        key[5] === K[o + 8] &&
        key[6] === K[o + 9] &&
        key[7] === K[o + 10] &&
        key[8] === K[o + 11] &&
        key[9] === K[o + 12] &&
        key[10] === K[o + 13] &&
        key[11] === K[o + 14]
      ) {
        return list[i];
      }
    }
    const key = Float64Array.from([K[o + 2], K[o + 3], K[o + 4], K[o + 6], K[o + 7], K[o + 8], K[o + 9], K[o + 10], K[o + 11], K[o + 12], K[o + 13], K[o + 14]]);
    const n = Buffer.from(name(nameIndex));
    const head = Buffer.concat([
      F.kernel,
      n,
      Buffer.from(`,"pid":${GPU_PID_BASE + K[o + 2]},"tid":${K[o + 4]},"ts":`, 'latin1'),
    ]);
    const tail = Buffer.from(
      `,"grid":[${K[o + 6]},${K[o + 7]},${K[o + 8]}],"block":[${K[o + 9]},${K[o + 10]},${K[o + 11]}],` +
        `"registersPerThread":${K[o + 12]},"staticSharedBytes":${K[o + 13]},"dynamicSharedBytes":${K[o + 14]},` +
        `"device":${K[o + 2]},"context":${K[o + 3]},"stream":${K[o + 4]}}}`,
      'latin1',
    );
    const shape = { key, head, tail };
    if (list.length < 8) list.push(shape);
    else list[nextSlot++ & 7] = shape;
    return shape;
  };
  for (let o = 0; o + KS <= K.length; o += KS) {
    const s = K[o];
    const e = K[o + 1];
    const shape = shapeOf(o);
    begin(shape.head.length + shape.tail.length);
    w.bytes(shape.head);
    w.micros(s);
    w.bytes(F.dur);
    w.micros(e - s);
    w.bytes(F.argsCorrelation);
    w.num(K[o + 5]);
    w.bytes(shape.tail);
    if (K[o + 5] !== 0) flow(K[o + 5], GPU_PID_BASE + K[o + 2], K[o + 4], s, e);
    if (w.done.length) yield* drain();
  }
  const M = raw.memcpys;
  const MS = STRIDE.memcpys;
  for (let o = 0; o + MS <= M.length; o += MS) {
    const s = M[o];
    const e = M[o + 1];
    const pid = GPU_PID_BASE + M[o + 2];
    const tid = M[o + 4];
    begin(0);
    w.bytes(F.memcpy);
    w.ascii(memcpyDirection(M[o + 7]));
    w.bytes(F.memcpyEnd);
    w.bytes(F.pid);
    w.num(pid);
    w.bytes(F.tid);
    w.num(tid);
    w.bytes(F.ts);
    w.micros(s);
    w.bytes(F.dur);
    w.micros(e - s);
    w.bytes(F.argsCorrelation);
    w.num(M[o + 5]);
    w.bytes(F.bytes);
    w.num(M[o + 6]);
    w.bytes(F.copyKind);
    w.num(M[o + 7]);
    w.bytes(F.srcKind);
    w.num(M[o + 8]);
    w.bytes(F.dstKind);
    w.num(M[o + 9]);
    w.bytes(F.close2);
    if (M[o + 5] !== 0) flow(M[o + 5], pid, tid, s, e);
    if (w.done.length) yield* drain();
  }
  const S = raw.memsets;
  const SS = STRIDE.memsets;
  for (let o = 0; o + SS <= S.length; o += SS) {
    const s = S[o];
    const e = S[o + 1];
    const pid = GPU_PID_BASE + S[o + 2];
    const tid = S[o + 4];
    begin(0);
    w.bytes(F.memset);
    w.bytes(F.pid);
    w.num(pid);
    w.bytes(F.tid);
    w.num(tid);
    w.bytes(F.ts);
    w.micros(s);
    w.bytes(F.dur);
    w.micros(e - s);
    w.bytes(F.argsCorrelation);
    w.num(S[o + 5]);
    w.bytes(F.bytes);
    w.num(S[o + 6]);
    w.bytes(F.value);
    w.num(S[o + 7]);
    w.bytes(F.close2);
    if (S[o + 5] !== 0) flow(S[o + 5], pid, tid, s, e);
    if (w.done.length) yield* drain();
  }

  // NVTX ranges (async slices: ranges of one thread need not nest) and marks.
  let asyncId = 1;
  for (let o = 0; o + RS <= R.length; o += RS) {
    const s = R[o];
    const e = R[o + 1];
    const pid = R[o + 6];
    const tid = R[o + 7];
    const domainIndex = R[o + 5];
    const domain = domainIndex >= 0 ? name(domainIndex) : F.nullValue;
    const n = name(R[o + 4]);
    const js = jsDomain >= 0 && domainIndex === jsDomain;
    if (R[o + 3] === 1) {
      const id = asyncId++;
      begin(2 * n.length + domain.length);
      w.bytes(js ? F.rangeBeginJs : F.rangeBegin);
      w.bytes(n);
      w.bytes(F.id);
      w.num(id);
      w.bytes(F.pid);
      w.num(pid);
      w.bytes(F.tid);
      w.num(tid);
      w.bytes(F.ts);
      w.micros(s);
      w.bytes(F.argsDomain);
      w.bytes(domain);
      w.bytes(F.close2);
      w.bytes(F.sep);
      w.bytes(js ? F.rangeEndJs : F.rangeEnd);
      w.bytes(n);
      w.bytes(F.id);
      w.num(id);
      w.bytes(F.pid);
      w.num(pid);
      w.bytes(F.tid);
      w.num(tid);
      w.bytes(F.ts);
      w.micros(e);
      w.bytes(F.close1);
    } else {
      begin(n.length + domain.length);
      w.bytes(F.mark);
      w.bytes(n);
      w.bytes(F.pid);
      w.num(pid);
      w.bytes(F.tid);
      w.num(tid);
      w.bytes(F.ts);
      w.micros(s);
      w.bytes(F.argsDomain);
      w.bytes(domain);
      w.bytes(F.close2);
    }
    if (w.done.length) yield* drain();
  }
  w.ascii('\n]}\n');
  w.cut();
  yield* drain();
}

export function chromeTraceBuffer(input: ChromeTraceInput): Buffer {
  return Buffer.concat([...chromeTraceChunks(input)]);
}
