/**
 * The capture endpoint of createTelemetryServer (off unless a token is configured):
 *   POST /capture              {steps, …}  → 201 {id, state, progress}, Location: /capture/<id>
 *                              {pid, stepRange | durationMs, …}: a capture of another CUDA process
 *                              through its injection library (armProcess)
 *   GET  /capture/<id>                     → 202 {id, state, progress} while running,
 *                                            200 the Chrome/Perfetto trace JSON when finished
 *   GET  /capture/<id>/summary             → 202 progress, then 200 {meta, summary}
 * Every request needs `Authorization: Bearer <token>` (compared in constant time over SHA-256
 * digests, so neither content nor length leaks). Checks, in order: unknown path 404, wrong method
 * 405, token 401, body size 413, JSON 400, options 400, a capture already live 409; with a pid: no
 * such process or no injection library in it 404, another user's process 403.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { constants as FS } from 'node:fs';
import fsp from 'node:fs/promises';
import type http from 'node:http';
import { GpuTelemetryError, invalidOption } from '../errors.js';
import type { TelemetryProvider } from '../exporters/source.js';
import type { CaptureHandle, CaptureProgress, CaptureState } from './capture-handle.js';
import type { CaptureOptions } from './options.js';
import { armProcess, type ProcessCaptureOptions } from '../inject/remote.js';
import { resolveStoreOptions, type SavedCapture } from './store.js';
import type { KernelTrace } from './trace.js';

export interface CaptureEndpointOptions {
  /** Bearer token every /capture request must carry (at least 16 characters). Required: no token, no endpoint. */
  token: string;
  /** Save finished captures into this store directory (and serve them from it); default: keep the latest in memory. */
  dir?: string;
  /** Largest accepted POST body (bytes, 2 – 1,048,576; default 16,384). */
  maxBodyBytes?: number;
  /** Store retention when `dir` is set (defaults 20 captures, 14 days). */
  keepFiles?: number;
  keepDays?: number;
}

interface Entry {
  id: string;
  /** The captured process, for a capture of another process (armProcess). */
  pid: number | null;
  /** The live handle; dropped once the capture has ended (its done promise holds the trace). */
  handle: CaptureHandle | null;
  /** State and progress at the end. */
  final: { state: CaptureState; progress: CaptureProgress } | null;
  trace: KernelTrace | null;
  saved: SavedCapture | null;
  error: GpuTelemetryError | null;
  /** The trace was dropped from memory for a newer one. */
  evicted: boolean;
}

/** Captures remembered for GET (ids beyond this are forgotten, oldest first). */
const MAX_ENTRIES = 32;
const ID_RE = /^[A-Za-z0-9._-]{1,128}$/;

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(`${JSON.stringify(body)}\n`);
}

function sendError(res: http.ServerResponse, status: number, message: string, extra: Record<string, unknown> = {}, headers: http.OutgoingHttpHeaders = {}): void {
  sendJson(res, status, { error: message, ...extra }, headers);
}

function digest(s: string | Buffer): Buffer {
  return createHash('sha256').update(s).digest();
}

export type CaptureRoute = (req: http.IncomingMessage, res: http.ServerResponse, pathname: string) => boolean;

export function createCaptureEndpoint(provider: TelemetryProvider, options: CaptureEndpointOptions): CaptureRoute {
  if (typeof options !== 'object' || options === null) throw invalidOption('capture', 'must be an object like { token: "…" }');
  for (const key of Object.keys(options)) {
    if (!['token', 'dir', 'maxBodyBytes', 'keepFiles', 'keepDays'].includes(key)) {
      throw invalidOption(`capture.${key}`, 'unknown option (allowed: token, dir, maxBodyBytes, keepFiles, keepDays)');
    }
  }
  if (typeof options.token !== 'string' || options.token.length < 16) {
    throw invalidOption('capture.token', 'must be a string of at least 16 characters (the endpoint stays off without one)');
  }
  const maxBodyBytes = options.maxBodyBytes ?? 16_384;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 2 || maxBodyBytes > 1 << 20) {
    throw invalidOption('capture.maxBodyBytes', `must be a whole number of bytes from 2 to 1048576, not ${String(options.maxBodyBytes)}`);
  }
  if (options.dir !== undefined && (typeof options.dir !== 'string' || options.dir === '' || options.dir.includes('\0'))) {
    throw invalidOption('capture.dir', 'must be a directory path');
  }
  const retention = resolveStoreOptions({ keepFiles: options.keepFiles, keepDays: options.keepDays });
  const expected = digest(options.token);
  const entries = new Map<string, Entry>();

  const authorized = (req: http.IncomingMessage): boolean => {
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    // Hash whatever was sent (or nothing) so the comparison does the same work either way.
    const given = digest(m ? m[1] : '');
    return timingSafeEqual(given, expected) && m !== null;
  };

  const remember = (entry: Entry): void => {
    entries.set(entry.id, entry);
    while (entries.size > MAX_ENTRIES) entries.delete(entries.keys().next().value as string);
  };

  const onFinished = (entry: Entry, trace: KernelTrace): void => {
    if (options.dir === undefined) {
      // Only the newest finished trace stays in memory.
      for (const other of entries.values()) {
        if (other !== entry && other.trace) {
          other.trace = null;
          other.evicted = true;
        }
      }
      entry.trace = trace;
      return;
    }
    entry.trace = trace; // served from memory until saved
    trace.save(options.dir, retention).then(
      (saved) => {
        entry.saved = saved;
        entry.trace = null;
      },
      (e: unknown) => {
        entry.error = new GpuTelemetryError('CAPTURE_FAILED', `saving capture ${entry.id} into ${options.dir} failed: ${(e as Error).message}`, {
          cause: e,
        });
      },
    );
  };

  const stateOf = (entry: Entry): CaptureState => entry.final?.state ?? entry.handle!.state;
  const status = (entry: Entry) => ({
    id: entry.id,
    ...(entry.pid !== null ? { pid: entry.pid } : {}),
    state: stateOf(entry),
    progress: entry.final?.progress ?? entry.handle!.progress,
    trace: `/capture/${entry.id}`,
    summary: `/capture/${entry.id}/summary`,
  });
  const settle = (entry: Entry): void => {
    const h = entry.handle!;
    entry.final = { state: h.state, progress: h.progress };
    entry.handle = null;
  };

  const post = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBodyBytes) {
      req.resume();
      sendError(res, 413, `request body of ${declared} bytes is larger than the limit of ${maxBodyBytes} bytes`, {}, { connection: 'close' });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let rejected = false;
    req.on('data', (chunk: Buffer) => {
      if (rejected) return;
      size += chunk.length;
      if (size > maxBodyBytes) {
        rejected = true;
        chunks.length = 0;
        sendError(res, 413, `request body is larger than the limit of ${maxBodyBytes} bytes`, {}, { connection: 'close' });
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => {
      rejected = true;
    });
    req.on('end', () => {
      if (rejected) return;
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = {};
      if (text.trim() !== '') {
        try {
          body = JSON.parse(text);
        } catch (e) {
          sendError(res, 400, `malformed JSON body: ${(e as Error).message}`);
          return;
        }
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        sendError(res, 400, 'the body must be a JSON object of capture options, e.g. {"steps": 50}');
        return;
      }
      if (Object.hasOwn(body, 'pid')) {
        armRemote(res, body as Record<string, unknown>);
        return;
      }
      const gpu = provider.telemetry();
      if (!gpu) {
        const err = provider.lastError();
        sendError(res, 503, `no GPU telemetry instance is open${err ? ` (${err.code}: ${err.message})` : ''}`);
        return;
      }
      const refuse = (e: unknown): void => {
        if (!(e instanceof GpuTelemetryError)) {
          sendError(res, 500, `internal error: ${(e as Error).message}`);
          return;
        }
        if (e.code === 'INVALID_OPTION') sendError(res, 400, e.message, { code: e.code, option: e.option });
        else if (e.code === 'CAPTURE_BUSY' || e.code === 'CUPTI_BUSY') {
          const busy = gpu.capture.active;
          sendError(res, 409, e.message, { code: e.code, ...(busy ? { active: `/capture/${busy.id}` } : {}) });
        } else sendError(res, 503, `capture could not start: ${e.code}: ${e.message}`, { code: e.code, vendorMessage: e.vendorMessage });
      };
      let handle: CaptureHandle;
      try {
        handle = gpu.capture.arm(body as CaptureOptions);
      } catch (e) {
        refuse(e);
        return;
      }
      // arm() returns at once; CUPTI answers on the capture's native thread (its first enable can
      // take seconds): the request waits for that answer, the event loop does not.
      handle.ready.then(
        () => accepted(res, handle),
        (e: unknown) => refuse(e),
      );
    });
  };

  // A capture of another process: needs no GPU instance here (the target's CUDA is captured).
  const armRemote = (res: http.ServerResponse, body: Record<string, unknown>): void => {
    const { pid, ...options } = body;
    const refuse = (e: unknown): void => {
      if (!(e instanceof GpuTelemetryError)) {
        sendError(res, 500, `internal error: ${(e as Error).message}`);
        return;
      }
      const status: Partial<Record<string, number>> = {
        INVALID_OPTION: 400,
        CAPTURE_BUSY: 409,
        CUPTI_BUSY: 409,
        TARGET_NOT_FOUND: 404,
        NOT_INJECTED: 404,
        NO_PERMISSION: 403,
      };
      sendError(res, status[e.code] ?? 503, e.code === 'INVALID_OPTION' ? e.message : `capture of process ${String(pid)} could not start: ${e.code}: ${e.message}`, {
        code: e.code,
        ...(e.option !== null ? { option: e.option } : {}),
        ...(e.vendorMessage ? { vendorMessage: e.vendorMessage } : {}),
      });
    };
    let handle: CaptureHandle;
    try {
      handle = armProcess(pid as number, options as ProcessCaptureOptions);
    } catch (e) {
      refuse(e);
      return;
    }
    handle.ready.then(
      () => accepted(res, handle),
      (e: unknown) => refuse(e),
    );
  };

  const accepted = (res: http.ServerResponse, handle: CaptureHandle): void => {
    const entry: Entry = { id: handle.id, pid: handle.remote?.pid ?? null, handle, final: null, trace: null, saved: null, error: null, evicted: false };
    remember(entry);
    handle.done.then(
      (trace) => {
        settle(entry);
        onFinished(entry, trace);
      },
      (e: unknown) => {
        settle(entry);
        entry.error =
          e instanceof GpuTelemetryError ? e : new GpuTelemetryError('CAPTURE_FAILED', (e as Error).message, { cause: e });
      },
    );
    sendJson(res, 201, status(entry), { location: `/capture/${handle.id}` });
  };

  const get = (res: http.ServerResponse, id: string, what: 'trace' | 'summary'): void => {
    const entry = entries.get(id);
    if (!entry) {
      sendError(res, 404, `no capture with id ${id} (it may have been forgotten: the server remembers the last ${MAX_ENTRIES})`);
      return;
    }
    const state = stateOf(entry);
    if (entry.error && !entry.trace && !entry.saved) {
      sendError(res, 500, `capture ${id} failed: ${entry.error.code}: ${entry.error.message}`, { id, state, code: entry.error.code });
      return;
    }
    if (state !== 'finished' || (!entry.trace && !entry.saved && !entry.evicted)) {
      sendJson(res, 202, status(entry));
      return;
    }
    if (entry.evicted && !entry.trace) {
      sendError(res, 410, `capture ${id} is no longer held in memory (only the newest is; configure capture.dir to keep them)`);
      return;
    }
    const headers = { 'cache-control': 'no-store', 'x-capture-state': state };
    if (entry.trace) {
      const trace = entry.trace;
      if (what === 'summary') {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', ...headers });
        res.end(trace.summaryJson());
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-disposition': `attachment; filename="gpu-capture-${id}.trace.json"`,
        ...headers,
      });
      trace.writeChromeTrace(res).then(
        () => res.end(),
        () => res.destroy(),
      );
      return;
    }
    const file = what === 'summary' ? entry.saved!.summaryPath : entry.saved!.tracePath;
    fsp.open(file, FS.O_RDONLY | FS.O_NOFOLLOW).then(
      (fh) => {
        const stream = fh.createReadStream();
        stream.once('error', () => res.destroy());
        res.writeHead(200, {
          'content-type': 'application/json; charset=utf-8',
          ...(what === 'trace' ? { 'content-disposition': `attachment; filename="gpu-capture-${id}.trace.json"` } : {}),
          ...headers,
        });
        stream.pipe(res);
      },
      (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') sendError(res, 410, `capture ${id} was removed from the store by retention`);
        else sendError(res, 500, `reading capture ${id} failed: ${e.message}`);
      },
    );
  };

  return (req, res, pathname) => {
    if (pathname !== '/capture' && !pathname.startsWith('/capture/')) return false;
    const parts = pathname.split('/').slice(2); // after "/capture"
    const method = req.method ?? 'GET';
    let allow: string;
    let kind: 'post' | 'trace' | 'summary';
    if (pathname === '/capture') {
      allow = 'POST';
      kind = 'post';
    } else if (parts.length === 1 && ID_RE.test(parts[0])) {
      allow = 'GET, HEAD';
      kind = 'trace';
    } else if (parts.length === 2 && ID_RE.test(parts[0]) && parts[1] === 'summary') {
      allow = 'GET, HEAD';
      kind = 'summary';
    } else {
      sendError(res, 404, `not found: ${pathname} (capture routes: POST /capture, GET /capture/<id>, GET /capture/<id>/summary)`);
      return true;
    }
    if (!allow.split(', ').includes(method)) {
      req.resume();
      sendError(res, 405, `method ${method} not allowed on ${pathname}`, {}, { allow });
      return true;
    }
    if (!authorized(req)) {
      req.resume();
      sendError(res, 401, 'missing or wrong capture token: send "Authorization: Bearer <token>"', {}, {
        'www-authenticate': 'Bearer realm="gpu-telemetry capture"',
      });
      return true;
    }
    if (kind === 'post') post(req, res);
    else get(res, parts[0], kind);
    return true;
  };
}
