/**
 * Finding an injected process's control socket, and checking that it may be trusted.
 *
 * The injection library puts its socket at <folder>/<pid>.sock, the folder being
 * $XDG_RUNTIME_DIR/gpu-telemetry (when XDG_RUNTIME_DIR is absolute) or /tmp/gpu-telemetry-<euid>,
 * mode 0700 and owned by the process's effective uid (native/inject/server.cc). From here the
 * target's own environment says which (/proc/<pid>/environ, readable by its user and root); the
 * folder and the socket must belong to the target's uid with no group/other access, so nobody else
 * could have put a socket there. Only the target's user or root may arm it (the library checks the
 * caller's uid too, with SO_PEERCRED).
 */
import fs from 'node:fs';
import path from 'node:path';
import { GpuTelemetryError } from '../errors.js';

export interface ProcessStatus {
  pid: number;
  /** /proc/<pid>/comm. */
  name: string;
  /** Effective uid. */
  euid: number;
  /** One-letter state (R, S, D, Z, X, …). */
  state: string;
}

/** /proc/<pid>/status, or null when there is no such process. */
export function processStatus(pid: number): ProcessStatus | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1] ?? '';
  const uids = field('Uid').split(/\s+/).map(Number);
  return { pid, name: field('Name'), euid: uids[1] ?? uids[0] ?? -1, state: field('State').charAt(0) };
}

/** Whether `pid` has exited (gone, or a zombie waiting to be reaped). */
export function hasExited(pid: number): boolean {
  const s = processStatus(pid);
  return s === null || s.state === 'Z' || s.state === 'X';
}

function euid(): number {
  return typeof process.geteuid === 'function' ? process.geteuid() : -1;
}

/** The socket folder the injection library of a process with this environment and uid uses. */
export function socketDirFor(xdgRuntimeDir: string | undefined, uid: number): string {
  if (xdgRuntimeDir !== undefined && xdgRuntimeDir.startsWith('/')) {
    return path.join(xdgRuntimeDir.replace(/\/+$/, '') || '/', 'gpu-telemetry');
  }
  return `/tmp/gpu-telemetry-${uid}`;
}

/** This process's own socket folder (where its own user's injected processes usually are). */
export function ownSocketDir(): string {
  return socketDirFor(process.env.XDG_RUNTIME_DIR, euid());
}

/** null when `dir` is a real directory of `uid` with no group/other access; else why not. */
export function checkSocketDir(dir: string, uid: number): string | null {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (e) {
    return `${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
  if (st.isSymbolicLink()) return `${dir} is a symlink`;
  if (!st.isDirectory()) return `${dir} is not a directory`;
  if (st.uid !== uid) return `${dir} belongs to uid ${st.uid}, not ${uid}`;
  if ((st.mode & 0o077) !== 0) return `${dir} has mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}, not 0700`;
  return null;
}

function environVar(pid: number, name: string): string | undefined {
  try {
    const environ = fs.readFileSync(`/proc/${pid}/environ`);
    for (const entry of environ.toString('utf8').split('\0')) {
      if (entry.startsWith(`${name}=`)) return entry.slice(name.length + 1);
    }
  } catch {
    // not readable (another user's process, or a non-dumpable one): the other candidates remain
  }
  return undefined;
}

export interface Target {
  pid: number;
  processName: string;
  euid: number;
  socketPath: string;
}

/**
 * The control socket of process `pid`, checked. Throws TARGET_NOT_FOUND (no such process),
 * NO_PERMISSION (another user's process and we are not root, or a socket folder that is not safe),
 * NOT_INJECTED (no socket: the process was not started with CUDA_INJECTION64_PATH, or has not
 * initialised CUDA yet).
 */
export function locateTarget(pid: number): Target {
  const status = processStatus(pid);
  if (status === null || status.state === 'Z' || status.state === 'X') {
    throw new GpuTelemetryError('TARGET_NOT_FOUND', `armProcess(${pid}): no process with pid ${pid}${status ? ' (it has exited)' : ''}`);
  }
  const me = euid();
  if (me !== 0 && me !== status.euid) {
    throw new GpuTelemetryError(
      'NO_PERMISSION',
      `armProcess(${pid}): process ${pid} (${status.name}) runs as uid ${status.euid}; only that user or root may arm it (this process is uid ${me})`,
    );
  }
  const dirs = [socketDirFor(environVar(pid, 'XDG_RUNTIME_DIR'), status.euid), `/run/user/${status.euid}/gpu-telemetry`, `/tmp/gpu-telemetry-${status.euid}`];
  if (me === status.euid) dirs.push(ownSocketDir());
  const looked: string[] = [];
  for (const dir of [...new Set(dirs)]) {
    const socketPath = path.join(dir, `${pid}.sock`);
    looked.push(socketPath);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(socketPath);
    } catch {
      continue;
    }
    const unsafe = checkSocketDir(dir, status.euid);
    if (unsafe !== null) {
      throw new GpuTelemetryError('NO_PERMISSION', `armProcess(${pid}): refusing the control socket ${socketPath}: ${unsafe}`);
    }
    if (!st.isSocket() || st.uid !== status.euid) {
      throw new GpuTelemetryError('NO_PERMISSION', `armProcess(${pid}): ${socketPath} is not a socket of uid ${status.euid}`);
    }
    return { pid, processName: status.name, euid: status.euid, socketPath };
  }
  throw new GpuTelemetryError(
    'NOT_INJECTED',
    `armProcess(${pid}): process ${pid} (${status.name}) has no gpu-telemetry control socket (looked for ${looked.join(', ')}). ` +
      'Start it with CUDA_INJECTION64_PATH=$(npx gpu-telemetry inject-path); the socket appears when it initialises CUDA.',
  );
}
