/**
 * The capture store: a directory of saved captures (trace + summary per capture, 0600) that keeps at
 * most `keepFiles` captures and none older than `keepDays`. Files are created with O_EXCL |
 * O_NOFOLLOW under a temporary name and renamed into place, so a symlink planted in the directory is
 * never followed; retention only ever deletes regular files whose names this store writes.
 */
import { constants as FS } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { GpuTelemetryError, invalidOption } from '../errors.js';

export interface StoreOptions {
  /** Keep at most this many captures (each is a .trace.json and a .summary.json), 1 – 10,000 (default 20). */
  keepFiles?: number;
  /** Delete captures older than this many days, 0.001 – 3650 (default 14). */
  keepDays?: number;
}

export interface SavedCapture {
  id: string;
  /** The Chrome/Perfetto trace JSON. */
  tracePath: string;
  /** The summary JSON (summary() plus meta). */
  summaryPath: string;
  /** Files deleted by retention during this save. */
  removed: string[];
}

export interface StoredCapture {
  id: string;
  tracePath: string | null;
  summaryPath: string | null;
  /** Modification time of the newest file of the capture (ms since the epoch). */
  mtimeMs: number;
  bytes: number;
}

const PREFIX = 'gpu-capture-';
const FILE_RE = /^gpu-capture-([A-Za-z0-9._-]{1,128})\.(trace|summary)\.json$/;
const DAY_MS = 86_400_000;

export function resolveStoreOptions(options: StoreOptions | undefined): { keepFiles: number; keepDays: number } {
  const o = (options ?? {}) as Record<string, unknown>;
  if (typeof o !== 'object' || Array.isArray(o)) throw invalidOption('', 'store options must be an object like { keepFiles: 20, keepDays: 14 }');
  for (const key of Object.keys(o)) {
    if (key !== 'keepFiles' && key !== 'keepDays') throw invalidOption(key, 'unknown store option (allowed: keepFiles, keepDays)');
  }
  let keepFiles = 20;
  if (o.keepFiles !== undefined) {
    if (typeof o.keepFiles !== 'number' || !Number.isInteger(o.keepFiles) || o.keepFiles < 1 || o.keepFiles > 10_000) {
      throw invalidOption('keepFiles', `must be a whole number of captures from 1 to 10000, not ${String(o.keepFiles)}`);
    }
    keepFiles = o.keepFiles;
  }
  let keepDays = 14;
  if (o.keepDays !== undefined) {
    if (typeof o.keepDays !== 'number' || !Number.isFinite(o.keepDays) || o.keepDays < 0.001 || o.keepDays > 3650) {
      throw invalidOption('keepDays', `must be a number of days from 0.001 to 3650, not ${String(o.keepDays)}`);
    }
    keepDays = o.keepDays;
  }
  return { keepFiles, keepDays };
}

export function checkCaptureId(id: string): string {
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(id) || id === '.' || id === '..') {
    throw new GpuTelemetryError('INVALID_OPTION', `capture id "${id}" may only contain letters, digits, ".", "_" and "-"`);
  }
  return id;
}

/** Creates `dir` (0700) if missing; it must be a directory (a symlink to one is the caller's choice). */
async function prepareDir(dir: string): Promise<string> {
  if (typeof dir !== 'string' || dir === '' || dir.includes('\0')) {
    throw invalidOption('dir', `must be a directory path, not ${JSON.stringify(dir)}`);
  }
  const abs = path.resolve(dir);
  try {
    await fs.mkdir(abs, { recursive: true, mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new GpuTelemetryError('INVALID_OPTION', `options.dir: cannot create the capture directory ${abs}: ${(e as Error).message}`, {
        option: 'dir',
        cause: e,
      });
    }
  }
  const st = await fs.stat(abs);
  if (!st.isDirectory()) throw invalidOption('dir', `${abs} is not a directory`);
  return abs;
}

async function writeAll(handle: fs.FileHandle, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await handle.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

/** Writes one file inside `dir` from chunks: 0600, never through a symlink, atomically renamed. */
export async function writeFileSafely(
  dir: string,
  fileName: string,
  chunks: Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>,
): Promise<string> {
  if (fileName.includes('/') || fileName.startsWith('.')) throw new Error(`bad file name ${fileName}`);
  const tmp = path.join(dir, `.${fileName}.${randomBytes(6).toString('hex')}.tmp`);
  const final = path.join(dir, fileName);
  const handle = await fs.open(tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL | FS.O_NOFOLLOW, 0o600);
  let ok = false;
  try {
    await handle.chmod(0o600); // exactly 0600 whatever the umask
    for await (const chunk of chunks) {
      await writeAll(handle, typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
    }
    await handle.sync();
    ok = true;
  } finally {
    await handle.close();
    if (!ok) await fs.unlink(tmp).catch(() => undefined);
  }
  // rename() replaces a planted symlink itself, never its target.
  await fs.rename(tmp, final);
  return final;
}

export class CaptureStore {
  readonly keepFiles: number;
  readonly keepDays: number;

  private constructor(
    readonly dir: string,
    options: { keepFiles: number; keepDays: number },
  ) {
    this.keepFiles = options.keepFiles;
    this.keepDays = options.keepDays;
  }

  /** Opens (creating it 0700 if needed) a store directory. */
  static async open(dir: string, options?: StoreOptions): Promise<CaptureStore> {
    const resolved = resolveStoreOptions(options);
    return new CaptureStore(await prepareDir(dir), resolved);
  }

  tracePath(id: string): string {
    return path.join(this.dir, `${PREFIX}${checkCaptureId(id)}.trace.json`);
  }

  summaryPath(id: string): string {
    return path.join(this.dir, `${PREFIX}${checkCaptureId(id)}.summary.json`);
  }

  /** Writes a capture's two files, then applies retention. */
  async write(id: string, trace: Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>, summary: string): Promise<SavedCapture> {
    checkCaptureId(id);
    const summaryPath = await writeFileSafely(this.dir, `${PREFIX}${id}.summary.json`, [summary]);
    const tracePath = await writeFileSafely(this.dir, `${PREFIX}${id}.trace.json`, trace);
    const removed = await this.prune(id);
    return { id, tracePath, summaryPath, removed };
  }

  /** The stored captures, newest first (only regular files with this store's names). */
  async list(): Promise<StoredCapture[]> {
    const entries = await fs.readdir(this.dir, { withFileTypes: true });
    const byId = new Map<string, StoredCapture>();
    for (const entry of entries) {
      const m = FILE_RE.exec(entry.name);
      if (!m || !entry.isFile()) continue; // symlinks and directories are never ours
      let st;
      try {
        st = await fs.lstat(path.join(this.dir, entry.name));
      } catch {
        continue;
      }
      if (!st.isFile()) continue;
      const id = m[1];
      let c = byId.get(id);
      if (!c) byId.set(id, (c = { id, tracePath: null, summaryPath: null, mtimeMs: 0, bytes: 0 }));
      if (m[2] === 'trace') c.tracePath = path.join(this.dir, entry.name);
      else c.summaryPath = path.join(this.dir, entry.name);
      c.mtimeMs = Math.max(c.mtimeMs, st.mtimeMs);
      c.bytes += st.size;
    }
    return [...byId.values()].sort((a, b) => b.mtimeMs - a.mtimeMs || (a.id < b.id ? 1 : -1));
  }

  /** Deletes captures beyond keepFiles (oldest first) and older than keepDays; returns the paths removed. */
  async prune(keep?: string): Promise<string[]> {
    const list = await this.list();
    const cutoff = Date.now() - this.keepDays * DAY_MS;
    const removed: string[] = [];
    let kept = 0;
    for (const c of list) {
      const protectedNow = c.id === keep;
      if (protectedNow || (kept < this.keepFiles && c.mtimeMs >= cutoff)) {
        kept++;
        continue;
      }
      for (const p of [c.tracePath, c.summaryPath]) {
        if (!p) continue;
        try {
          const st = await fs.lstat(p);
          if (!st.isFile()) continue;
          await fs.unlink(p);
          removed.push(p);
        } catch {
          // gone meanwhile: fine
        }
      }
    }
    return removed;
  }
}
