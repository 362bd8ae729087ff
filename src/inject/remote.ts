/**
 * armProcess(): a kernel-trace capture of another process, through the injection library inside
 * it. The library runs the same capture engine as the addon; over its control socket it streams
 * the records as they are parsed, which RemoteCaptureNative assembles into the same native result
 * a capture in this process gives: CaptureHandle and KernelTrace (states, ready/done, progress,
 * summary, Chrome/Perfetto output, bounds) are the in-process ones.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { GpuTelemetryError, invalidOption, type GpuTelemetryErrorCode } from '../errors.js';
import type { PrewarmResult } from '../capture/capture.js';
import { CaptureHandle } from '../capture/capture-handle.js';
import type {
  CaptureNative,
  CaptureNativeEventListener,
  CaptureNativeOptions,
  CaptureNativeProgress,
  CaptureNativeResult,
  CaptureNativeStartResult,
} from '../capture/native-capture.js';
import { CAPTURE_LIMITS, resolveCaptureOptions, type CaptureOptions, type ResolvedCaptureOptions } from '../capture/options.js';
import {
  COLUMNS,
  FRAME,
  FrameDecoder,
  decodeColumns,
  decodeJson,
  decodeStrings,
  encodeJson,
  protocolError,
  type ColumnName,
} from './protocol.js';
import { checkSocketDir, hasExited, locateTarget, ownSocketDir, processStatus, type Target } from './target.js';

export interface ProcessCaptureOptions extends Omit<CaptureOptions, 'stepRange'> {
  /**
   * Count steps by the target's NVTX ranges of this name (what PyTorch, vLLM and most serving
   * stacks emit; the target needs NVTX_INJECTION64_PATH pointing at its libcupti). Give either
   * stepRange (with steps, default 10) or durationMs.
   */
  stepRange?: string | null;
  /** Capture a time window instead of steps, 1 – 3,600,000 ms (for a target that emits no NVTX). */
  durationMs?: number | null;
}

export const PROCESS_CAPTURE_LIMITS = Object.freeze({ durationMs: { min: 1, max: 3_600_000 }, pid: { min: 1, max: 4_194_304 } });

export interface ResolvedProcessCaptureOptions {
  capture: ResolvedCaptureOptions;
  durationMs: number | null;
}

/** Validates armProcess()'s options (INVALID_OPTION naming the option, as capture.arm() does). */
export function resolveProcessCaptureOptions(options: unknown): ResolvedProcessCaptureOptions {
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw invalidOption('', 'process capture options must be a plain object like { steps: 10, stepRange: "decode_step" }');
  }
  const { durationMs: rawDuration, ...rest } = options as Record<string, unknown>;
  let durationMs: number | null = null;
  if (rawDuration !== undefined && rawDuration !== null) {
    const L = PROCESS_CAPTURE_LIMITS.durationMs;
    if (typeof rawDuration !== 'number' || !Number.isInteger(rawDuration) || rawDuration < L.min || rawDuration > L.max) {
      throw invalidOption('durationMs', `must be a whole number of milliseconds from ${L.min} to ${L.max}, not ${String(rawDuration)}`);
    }
    durationMs = rawDuration;
  }
  const hasRange = rest.stepRange !== undefined && rest.stepRange !== null;
  if (hasRange === (durationMs !== null)) {
    throw invalidOption(
      hasRange ? 'durationMs' : 'stepRange',
      'a capture of another process needs exactly one of stepRange (its NVTX ranges are the steps, e.g. "decode_step") and durationMs (a time window)',
    );
  }
  if (durationMs !== null) {
    for (const key of ['steps', 'startAfterSteps', 'stepDomain']) {
      if (rest[key] !== undefined && rest[key] !== null) throw invalidOption(key, 'goes with stepRange, not durationMs');
    }
    // The window must fit in the wall-time cap: by default the cap grows with it.
    if (rest.timeoutMs === undefined) rest.timeoutMs = Math.min(CAPTURE_LIMITS.timeoutMs.max, Math.max(CAPTURE_LIMITS.timeoutMs.default, durationMs + 30_000));
  }
  const resolved = resolveCaptureOptions(rest);
  if (durationMs !== null && durationMs > resolved.timeoutMs) {
    throw invalidOption('durationMs', `must not be longer than timeoutMs (${resolved.timeoutMs} ms)`);
  }
  // A time window counts no steps.
  return { capture: durationMs !== null ? { ...resolved, steps: 0 } : resolved, durationMs };
}

/** The arm request sent to the injection library (native/inject/protocol.h). */
function armRequest(o: ResolvedProcessCaptureOptions): Record<string, unknown> {
  const c = o.capture;
  const request: Record<string, unknown> = {
    op: 'arm',
    maxBytes: c.maxBytes,
    maxRecords: c.maxRecords,
    bufferBytes: c.bufferBytes,
    timeoutMs: c.timeoutMs,
    flushIntervalMs: c.flushIntervalMs,
    drainTimeoutMs: c.drainTimeoutMs,
    kinds: { ...c.kinds },
  };
  if (o.durationMs !== null) {
    request.durationMs = o.durationMs;
  } else {
    request.steps = c.steps;
    request.stepRange = c.stepRange;
    request.startAfterSteps = c.startAfterSteps;
    if (c.stepDomain !== null) request.stepDomain = c.stepDomain;
  }
  return request;
}

// What the library's error codes mean here.
const SERVER_CODES: Record<string, GpuTelemetryErrorCode> = {
  PERMISSION_DENIED: 'NO_PERMISSION',
  BAD_REQUEST: 'PROTOCOL_ERROR',
  BAD_JSON: 'PROTOCOL_ERROR',
  BAD_FRAME: 'PROTOCOL_ERROR',
  OVERSIZE: 'PROTOCOL_ERROR',
  UNSUPPORTED_VERSION: 'PROTOCOL_ERROR',
  TOO_MANY_CONNECTIONS: 'CAPTURE_BUSY',
};

/** How long, after the connection ends without an "end", to wait for the target to be seen exiting. */
const EXIT_CHECK_MS = 2_000;
const EXIT_POLL_MS = 20;

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}
function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/**
 * The CaptureNative of a capture in another process: start() connects and arms; the library's
 * messages become the native events ('started', 'failed', 'stopped'); result() assembles what
 * arrived. A connection that ends before the library said "end" stops the capture with reason
 * target_exited (the process is gone) or disconnected (it still runs), keeping what arrived.
 */
export class RemoteCaptureNative implements CaptureNative {
  private socket: net.Socket | null = null;
  private readonly decoder = new FrameDecoder();
  private started: CaptureNativeStartResult | null = null;
  private failed: CaptureNativeStartResult | null = null;
  private progressNow: CaptureNativeProgress = {
    state: 'starting',
    steps: 0,
    records: 0,
    bytes: 0,
    droppedByCupti: 0,
    droppedByUs: 0,
    droppedIncomplete: 0,
  };
  private readonly columns = new Map<ColumnName, Float64Array[]>(COLUMNS.map((c) => [c, []]));
  private receivedBytes = 0;
  private strings: string[] = [];
  private meta: Record<string, unknown> = {};
  private end: Record<string, unknown> | null = null;
  private endReason: string | null = null;
  private clock: { clockNs: number; atMs: number } | null = null;
  private finished = false;
  private closed = false;
  private resultTaken = false;
  private readonly maxReceive: number;

  constructor(
    private readonly target: Target,
    private readonly request: Record<string, unknown>,
    private readonly onEvent: CaptureNativeEventListener,
  ) {
    // The library bounds the trace by maxBytes; a stream beyond that (plus the frames' slack) is not
    // one this client asked for.
    this.maxReceive = num(request.maxBytes) * 1.25 + (8 << 20);
  }

  start(): CaptureNativeStartResult {
    if (this.socket !== null || this.closed) return { ok: false, code: 'CAPTURE_BUSY', message: 'this capture was already started' };
    const socket = net.createConnection({ path: this.target.socketPath });
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e: NodeJS.ErrnoException) => this.onSocketEnd(e));
    socket.on('close', () => this.onSocketEnd(null));
    socket.write(encodeJson(this.request));
    return { ok: true };
  }

  startResult(): CaptureNativeStartResult | null {
    return this.started ?? this.failed;
  }

  step(): number {
    return 0;
  }

  /** The target's CUPTI clock (ns since baseNs), estimated from the "started" answer and the wall time since. */
  timestamp(): number {
    if (this.clock === null) return 0;
    return this.clock.clockNs + (Date.now() - this.clock.atMs) * 1e6;
  }

  progress(): CaptureNativeProgress {
    return { ...this.progressNow };
  }

  stop(reason?: string): void {
    if (this.finished || this.socket === null || this.closed) return;
    this.socket.write(encodeJson({ op: 'stop', reason: reason === 'timeout' ? 'timeout' : 'cancelled' }));
  }

  result(): CaptureNativeResult {
    const empty = this.resultTaken;
    this.resultTaken = true;
    const cols = {} as Record<ColumnName, Float64Array>;
    for (const name of COLUMNS) {
      const parts = empty ? [] : (this.columns.get(name) ?? []);
      const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      cols[name] = out;
      this.columns.set(name, []);
    }
    const src = { ...this.meta, ...(this.end ?? {}) };
    const reason = this.endReason ?? str(src.reason);
    const progress = this.progressNow;
    const fromEnd = (key: 'droppedByCupti' | 'droppedByUs' | 'droppedIncomplete'): number =>
      this.end !== null ? num(this.end[key]) : progress[key];
    const layout = str(src.layout);
    return {
      baseNs: str(src.baseNs) || '0',
      cuptiVersion: num(src.cuptiVersion),
      layout: (['cuda11', 'cuda12', 'cuda13'].includes(layout) ? layout : 'unsupported') as CaptureNativeResult['layout'],
      libraryPath: str(src.libraryPath),
      simulated: src.simulated === true,
      reason,
      truncated: this.end !== null ? this.end.truncated === true : true,
      ...cols,
      strings: empty ? [] : this.strings,
      droppedByCupti: fromEnd('droppedByCupti'),
      droppedByUs: fromEnd('droppedByUs'),
      droppedIncomplete: fromEnd('droppedIncomplete'),
      subscriberMode: src.subscriberMode === 'shared' ? 'shared' : 'exclusive',
      peakBytes: this.end !== null ? num(this.end.peakBytes) : progress.bytes,
      buffersCompleted: this.end !== null ? num(this.end.buffersCompleted) : 0,
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // A live capture ends with the connection: the library stops it when its client hangs up.
    this.socket?.destroy();
  }

  // ---- the stream -----------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.finished) return;
    try {
      for (const frame of this.decoder.push(chunk)) {
        if (frame.type === FRAME.json) this.onMessage(decodeJson(frame.payload));
        else if (frame.type === FRAME.columns) this.onColumns(frame.payload);
        else this.onStrings(frame.payload);
        if (this.finished) return;
      }
    } catch (e) {
      this.abort(e instanceof GpuTelemetryError ? e : protocolError((e as Error).message));
    }
  }

  private onMessage(m: Record<string, unknown>): void {
    const op = m.op;
    if (op === 'started') {
      if (this.started !== null) return;
      if (num(m.pid) !== this.target.pid) throw protocolError(`the control socket of pid ${this.target.pid} answered for pid ${num(m.pid)}`);
      this.meta = m;
      this.clock = { clockNs: num(m.clockNs), atMs: Date.now() };
      this.progressNow.state = m.state === 'waiting' ? 'waiting' : 'capturing';
      this.started = {
        ok: true,
        libraryPath: str(m.libraryPath),
        cuptiVersion: num(m.cuptiVersion),
        startMs: num(m.startMs),
        subscriberMode: m.subscriberMode === 'shared' ? 'shared' : 'exclusive',
      };
      this.onEvent('started');
    } else if (op === 'progress') {
      const s = m.state;
      this.progressNow = {
        state: s === 'waiting' || s === 'capturing' || s === 'stopping' || s === 'finished' ? s : this.progressNow.state,
        steps: num(m.steps),
        records: num(m.records),
        bytes: num(m.bytes),
        droppedByCupti: num(m.droppedByCupti),
        droppedByUs: num(m.droppedByUs),
        droppedIncomplete: num(m.droppedIncomplete),
      };
    } else if (op === 'end') {
      this.end = m;
      this.progressNow = { ...this.progressNow, state: 'finished' };
      this.finish(str(m.reason) || 'error');
    } else if (op === 'error') {
      const raw = str(m.code) || 'CUPTI_ERROR';
      const failure: CaptureNativeStartResult = {
        ok: false,
        code: SERVER_CODES[raw] ?? raw,
        message: `process ${this.target.pid} (${this.target.processName}): ${str(m.message) || raw}`,
        ...(typeof m.vendorCode === 'number' ? { vendorCode: m.vendorCode, vendorMessage: str(m.vendorMessage) } : {}),
        ...(typeof m.libraryPath === 'string' ? { libraryPath: m.libraryPath } : {}),
        ...(typeof m.cuptiVersion === 'number' ? { cuptiVersion: m.cuptiVersion } : {}),
      };
      if (this.started === null) {
        this.fail(failure);
      } else {
        throw protocolError(`the injection library reported ${raw} during the capture: ${str(m.message)}`);
      }
    }
    // Other ops (a later protocol's additions) are ignored.
  }

  private onColumns(payload: Buffer): void {
    if (this.started === null) throw protocolError('records arrived before the capture started');
    const { column, data } = decodeColumns(payload);
    this.receivedBytes += data.byteLength;
    if (this.receivedBytes > this.maxReceive) throw protocolError(`the target sent more than ${this.maxReceive} bytes of records (maxBytes ${num(this.request.maxBytes)})`);
    this.columns.get(column)!.push(data);
  }

  private onStrings(payload: Buffer): void {
    if (this.started === null) throw protocolError('strings arrived before the capture started');
    const { first, strings } = decodeStrings(payload);
    if (first !== this.strings.length) throw protocolError(`strings out of order: got index ${first}, expected ${this.strings.length}`);
    for (const s of strings) this.receivedBytes += s.length;
    if (this.receivedBytes > this.maxReceive) throw protocolError(`the target sent more than ${this.maxReceive} bytes of records`);
    this.strings.push(...strings);
  }

  private fail(r: CaptureNativeStartResult): void {
    if (this.finished) return;
    this.finished = true;
    this.failed = r;
    this.progressNow = { ...this.progressNow, state: 'finished' };
    this.socket?.destroy();
    this.onEvent('failed');
  }

  private finish(reason: string): void {
    if (this.finished) return;
    this.finished = true;
    this.endReason = reason;
    this.progressNow = { ...this.progressNow, state: 'finished' };
    this.socket?.end();
    this.onEvent('stopped', reason);
  }

  /** The stream broke (garbage, limits): nothing more is read from it. */
  private abort(e: GpuTelemetryError): void {
    if (this.started === null) {
      this.fail({ ok: false, code: e.code, message: `process ${this.target.pid}: ${e.message}` });
    } else {
      this.finish('error');
    }
  }

  /** The connection ended (or failed) before "end": why depends on whether the target still runs. */
  private onSocketEnd(error: NodeJS.ErrnoException | null): void {
    if (this.finished || this.closed) return;
    if (this.socket !== null && !this.socket.destroyed && error === null && !this.socket.readableEnded) return;
    if (error !== null && this.started === null && (error.code === 'ECONNREFUSED' || error.code === 'ENOENT')) {
      this.fail({
        ok: false,
        code: hasExited(this.target.pid) ? 'TARGET_EXITED' : 'NOT_INJECTED',
        message: `process ${this.target.pid}: nobody listens on ${this.target.socketPath} (${error.code}): a socket left by an earlier process`,
      });
      return;
    }
    const deadline = Date.now() + EXIT_CHECK_MS;
    const check = (): void => {
      if (this.finished || this.closed) return;
      const exited = hasExited(this.target.pid);
      if (!exited && Date.now() < deadline) {
        setTimeout(check, EXIT_POLL_MS).unref();
        return;
      }
      if (this.started === null) {
        this.fail({
          ok: false,
          code: exited ? 'TARGET_EXITED' : 'PROTOCOL_ERROR',
          message: exited
            ? `process ${this.target.pid} (${this.target.processName}) exited before the capture was armed`
            : `process ${this.target.pid}: the control connection ended before the capture was armed${error ? ` (${error.code ?? error.message})` : ''}`,
        });
      } else {
        this.finish(exited ? 'target_exited' : 'disconnected');
      }
    };
    check();
  }
}

/** Remote captures armed from this process, by target pid (one at a time per target). */
const liveByPid = new Map<number, CaptureHandle>();
const CREATOR = Object.freeze({ armProcess: true });

/**
 * Arms a kernel-trace capture in another CUDA process — one started with
 * CUDA_INJECTION64_PATH=$(npx gpu-telemetry inject-path) — and returns at once with the same
 * CaptureHandle as capture.arm(): `ready` resolves once the target's CUPTI is set up, `done` with
 * the KernelTrace (meta.pid, meta.processName). Steps are the target's NVTX ranges (stepRange,
 * steps, stepDomain) or a time window (durationMs).
 *
 * Throws (known without talking to the target): INVALID_OPTION, TARGET_NOT_FOUND, NO_PERMISSION
 * (another user's process), NOT_INJECTED (no control socket), CAPTURE_BUSY (this process already
 * captures that target). `ready`/`done` reject with what the target answers: CAPTURE_BUSY (another
 * client's capture is live there), CUPTI_BUSY (Kineto or Nsight holds CUPTI there, with the holder's
 * name when CUPTI says it), LIBRARY_NOT_FOUND (no CUPTI found in the target), TARGET_EXITED,
 * PROTOCOL_ERROR. A target that exits mid-capture ends it with reason `target_exited`, keeping the
 * records that had arrived.
 */
export function armProcess(pid: number, options?: ProcessCaptureOptions): CaptureHandle {
  const L = PROCESS_CAPTURE_LIMITS.pid;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < L.min || pid > L.max) {
    throw invalidOption('pid', `must be a process id (a whole number from ${L.min} to ${L.max}), not ${String(pid)}`);
  }
  const resolved = resolveProcessCaptureOptions(options);
  const live = liveByPid.get(pid);
  if (live !== undefined) {
    throw new GpuTelemetryError(
      'CAPTURE_BUSY',
      `armProcess(${pid}): capture ${live.id} of that process is still ${live.state} (one capture at a time per process: CUPTI has one subscriber); await its done promise or cancel() it first`,
    );
  }
  const target = locateTarget(pid);
  const request = armRequest(resolved);
  const factory = (_options: CaptureNativeOptions, onEvent: CaptureNativeEventListener): CaptureNative =>
    new RemoteCaptureNative(target, request, onEvent);
  const nativeOptions: CaptureNativeOptions = {
    cuptiCandidates: [],
    maxBytes: resolved.capture.maxBytes,
    bufferBytes: resolved.capture.bufferBytes,
    maxRecords: resolved.capture.maxRecords,
    steps: resolved.capture.steps,
    startAfterSteps: resolved.capture.startAfterSteps,
    stepRange: resolved.capture.stepRange,
    kinds: { ...resolved.capture.kinds },
    flushIntervalMs: resolved.capture.flushIntervalMs,
    drainTimeoutMs: resolved.capture.drainTimeoutMs,
  };
  const handle = new CaptureHandle(resolved.capture, factory, nativeOptions, CREATOR, {
    pid,
    processName: target.processName,
    durationMs: resolved.durationMs,
  });
  handle.start();
  liveByPid.set(pid, handle);
  const forget = (): void => {
    if (liveByPid.get(pid) === handle) liveByPid.delete(pid);
  };
  handle.done.then(forget, forget);
  return handle;
}

/** What capture.prewarm() resolves with, for the process `pid`. */
export interface ProcessPrewarmResult extends PrewarmResult {
  pid: number;
  /** How long loading CUPTI, subscribing and the first enable took in the target (ms). */
  startMs: number;
  /** Wall time from prewarmProcess() to the answer (ms). */
  elapsedMs: number;
}

/**
 * Pays CUPTI's start-up cost in process `pid` ahead of a capture, as capture.prewarm() does in
 * process: its injection library loads CUPTI, subscribes, enables the kinds a capture uses (CUPTI's
 * first enable can stall for seconds) and releases them again, so that a later armProcess() is
 * armed at once. Nothing stays subscribed or enabled. Rejects like armProcess (TARGET_NOT_FOUND,
 * NOT_INJECTED, NO_PERMISSION, CAPTURE_BUSY, CUPTI_BUSY, LIBRARY_NOT_FOUND, …) or with TIMEOUT
 * after `timeoutMs` (default 60,000).
 */
export async function prewarmProcess(pid: number, options: { timeoutMs?: number } = {}): Promise<ProcessPrewarmResult> {
  const L = PROCESS_CAPTURE_LIMITS.pid;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < L.min || pid > L.max) {
    throw invalidOption('pid', `must be a process id (a whole number from ${L.min} to ${L.max}), not ${String(pid)}`);
  }
  const timeoutMs = options.timeoutMs ?? 60_000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 3_600_000) {
    throw invalidOption('timeoutMs', 'must be a whole number of milliseconds from 100 to 3600000');
  }
  if (liveByPid.has(pid)) throw new GpuTelemetryError('CAPTURE_BUSY', `prewarmProcess(${pid}): a capture of that process is live`);
  const target = locateTarget(pid);
  const t0 = Date.now();
  return new Promise<ProcessPrewarmResult>((resolve, reject) => {
    const socket = net.createConnection({ path: target.socketPath });
    const decoder = new FrameDecoder();
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    const timer = setTimeout(
      () => settle(() => reject(new GpuTelemetryError('TIMEOUT', `prewarmProcess(${pid}): no answer within ${timeoutMs} ms (the pre-warm is cancelled)`))),
      timeoutMs,
    );
    timer.unref();
    socket.on('error', (e: NodeJS.ErrnoException) =>
      settle(() => reject(new GpuTelemetryError(hasExited(pid) ? 'TARGET_EXITED' : 'PROTOCOL_ERROR', `prewarmProcess(${pid}): ${e.code ?? e.message}`))),
    );
    socket.on('close', () =>
      settle(() => reject(new GpuTelemetryError(hasExited(pid) ? 'TARGET_EXITED' : 'PROTOCOL_ERROR', `prewarmProcess(${pid}): the connection ended without an answer`))),
    );
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of decoder.push(chunk)) {
          if (f.type !== FRAME.json) continue;
          const m = decodeJson(f.payload);
          if (m.op === 'error') {
            const raw = str(m.code) || 'CUPTI_ERROR';
            const code = (SERVER_CODES[raw] ?? raw) as GpuTelemetryErrorCode;
            settle(() =>
              reject(
                new GpuTelemetryError(code, `prewarmProcess(${pid}): process ${pid} (${target.processName}): ${str(m.message) || raw}`, {
                  vendorCode: typeof m.vendorCode === 'number' ? m.vendorCode : null,
                  vendorMessage: str(m.vendorMessage),
                  libraryPath: str(m.libraryPath),
                }),
              ),
            );
            return;
          }
          if (m.op === 'prewarmed') {
            settle(() =>
              resolve({
                pid,
                libraryPath: str(m.libraryPath),
                cuptiVersion: num(m.cuptiVersion),
                layout: str(m.layout),
                startMs: num(m.startMs),
                subscriberMode: m.subscriberMode === 'shared' ? 'shared' : 'exclusive',
                elapsedMs: Date.now() - t0,
              }),
            );
            return;
          }
        }
      } catch (e) {
        settle(() => reject(e));
      }
    });
    socket.write(encodeJson({ op: 'prewarm' }));
  });
}

export interface InjectedProcess {
  pid: number;
  /** /proc/<pid>/comm, as the library reports it. */
  processName: string;
  uid: number;
  /** 'dormant', or the live capture's state ('starting', 'waiting', 'capturing', 'stopping'); 'unreachable' when it did not answer. */
  state: string;
  protocolVersion: number;
  /** The library's name and protocol, e.g. "gpu-telemetry-inject/1". */
  library: string;
  socketPath: string;
  /** Why it is unreachable (state 'unreachable'). */
  error?: string;
}

export interface ListInjectedOptions {
  /** A socket folder to list instead of the defaults (this user's; for root, every user's). */
  dir?: string;
  /** How long each process may take to answer (ms, default 1000). */
  timeoutMs?: number;
}

/**
 * The processes whose injection library is listening, with their state. Sockets of processes that
 * have exited (or whose pid now belongs to a process that is not listening) are removed.
 */
export async function listInjectedProcesses(options: ListInjectedOptions = {}): Promise<InjectedProcess[]> {
  if (typeof options !== 'object' || options === null) throw invalidOption('', 'options must be an object like { dir: "/run/user/1000/gpu-telemetry" }');
  const timeoutMs = options.timeoutMs ?? 1000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000) throw invalidOption('timeoutMs', 'must be a whole number of milliseconds from 1 to 60000');
  const me = typeof process.geteuid === 'function' ? process.geteuid() : -1;
  const dirs = new Set<string>();
  if (options.dir !== undefined) {
    if (typeof options.dir !== 'string' || options.dir === '') throw invalidOption('dir', 'must be a directory path');
    dirs.add(options.dir);
  } else {
    dirs.add(ownSocketDir());
    dirs.add(`/tmp/gpu-telemetry-${me}`);
    if (me === 0) {
      for (const parent of ['/tmp', '/run/user']) {
        try {
          for (const e of fs.readdirSync(parent)) {
            if (parent === '/tmp' && /^gpu-telemetry-\d+$/.test(e)) dirs.add(path.join(parent, e));
            if (parent === '/run/user' && /^\d+$/.test(e)) dirs.add(path.join(parent, e, 'gpu-telemetry'));
          }
        } catch {
          // not there
        }
      }
    }
  }
  const probes: Promise<InjectedProcess | null>[] = [];
  for (const dir of dirs) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(dir);
    } catch {
      continue;
    }
    // Only folders that pass the library's own check (owned by their user, 0700).
    if (checkSocketDir(dir, st.uid) !== null) continue;
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const m = /^(\d+)\.sock$/.exec(name);
      if (!m) continue;
      const pid = Number(m[1]);
      const socketPath = path.join(dir, name);
      const status = processStatus(pid);
      if (status === null || status.state === 'Z' || status.state === 'X') {
        fs.rmSync(socketPath, { force: true }); // the process is gone: its socket is stale
        continue;
      }
      probes.push(hello(pid, socketPath, timeoutMs).then((r) => {
        if (r === 'stale') {
          fs.rmSync(socketPath, { force: true }); // the pid was reused by a process that does not listen
          return null;
        }
        return r;
      }));
    }
  }
  const found = (await Promise.all(probes)).filter((p): p is InjectedProcess => p !== null);
  return found.sort((a, b) => a.pid - b.pid);
}

function hello(pid: number, socketPath: string, timeoutMs: number): Promise<InjectedProcess | 'stale'> {
  return new Promise((resolve) => {
    const unreachable = (error: string): InjectedProcess => ({
      pid,
      processName: processNameOf(pid),
      uid: -1,
      state: 'unreachable',
      protocolVersion: 0,
      library: '',
      socketPath,
      error,
    });
    const socket = net.createConnection({ path: socketPath });
    const decoder = new FrameDecoder();
    let done = false;
    const settle = (r: InjectedProcess | 'stale'): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => settle(unreachable(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', (e: NodeJS.ErrnoException) => settle(e.code === 'ECONNREFUSED' ? 'stale' : unreachable(e.code ?? e.message)));
    socket.on('close', () => settle(unreachable('the connection closed without an answer')));
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of decoder.push(chunk)) {
          if (f.type !== FRAME.json) continue;
          const m = decodeJson(f.payload);
          if (m.op === 'error') {
            settle(unreachable(`${str(m.code)}: ${str(m.message)}`));
            return;
          }
          if (m.op !== 'hello') continue;
          if (num(m.pid) !== pid) {
            settle(unreachable(`the socket answered for pid ${num(m.pid)}`));
            return;
          }
          settle({
            pid,
            processName: str(m.processName),
            uid: num(m.uid),
            state: str(m.state) || 'dormant',
            protocolVersion: num(m.v),
            library: str(m.library),
            socketPath,
          });
          return;
        }
      } catch (e) {
        settle(unreachable((e as Error).message));
      }
    });
    socket.write(encodeJson({ op: 'hello' }));
  });
}

function processNameOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}
