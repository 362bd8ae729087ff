/**
 * The injection library's test bench: test/native/fake_cuda_app.c built into a temporary folder,
 * started as a CUDA process with CUDA_INJECTION64_PATH (and NVTX_INJECTION64_PATH) naming the
 * built libraries and GPU_TELEMETRY_CUPTI_LIB the simulator, and a raw protocol client.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { injectLibraryPath, PACKAGE_ROOT, simulatorLibraryPath } from '../src/paths.js';
import { FrameDecoder, FRAME, decodeJson, encodeFrame, encodeJson } from '../src/inject/protocol.js';
import { waitFor } from './helpers.js';

export const APP_SOURCE = path.join(PACKAGE_ROOT, 'test', 'native', 'fake_cuda_app.c');
export const NVTX3_INCLUDE = ['/usr/local/cuda/include'].find((d) => fs.existsSync(path.join(d, 'nvtx3', 'nvToolsExt.h'))) ?? null;

/** The scenario the fake application configures the simulator with: no kernels of the simulator's own. */
export const APP_SCENARIO = {
  name: 'fake-cuda-app',
  description: 'The fake CUDA application runs every kernel itself (gtsim_cuda_launch_kernel)',
  devices: [{ name: 'NVIDIA H100 80GB HBM3 (simulated)', memoryTotalBytes: 85899345920 }],
  cupti: { version: 130001, kernelsPerSecond: 0 },
};

export interface Bench {
  /** A folder for this test file (mode 0755: other uids run the app from it). */
  dir: string;
  app: string;
  sim: string;
  inject: string;
  scenario: string;
  /** A 0700 folder used as XDG_RUNTIME_DIR for same-uid targets and clients. */
  xdg: string;
  cleanup(): void;
}

/** Builds the fake application (and, when nvtx3 headers exist, its real-NVTX variant). */
export function makeBench(variant: 'own-nvtx' | 'real-nvtx' = 'own-nvtx'): Bench {
  const sim = simulatorLibraryPath();
  const inject = injectLibraryPath();
  if (sim === null || inject === null) throw new Error('build/Release lacks the simulator or the injection library: npm run build:native');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-inject-'));
  fs.chmodSync(dir, 0o755);
  const app = path.join(dir, variant === 'real-nvtx' ? 'fake_cuda_app_nvtx3' : 'fake_cuda_app');
  const args = ['-std=c11', '-O1', '-Wall', '-Wextra', '-Werror', APP_SOURCE, '-o', app, '-ldl', '-lpthread'];
  if (variant === 'real-nvtx') args.unshift('-DGT_REAL_NVTX', `-I${NVTX3_INCLUDE}`);
  execFileSync('gcc', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // Copies other uids can read (the build folder may not be reachable for them).
  const libs = path.join(dir, 'lib');
  fs.mkdirSync(libs, { mode: 0o755 });
  const simCopy = path.join(libs, path.basename(sim));
  const injectCopy = path.join(libs, path.basename(inject));
  fs.copyFileSync(sim, simCopy);
  fs.copyFileSync(inject, injectCopy);
  fs.chmodSync(simCopy, 0o755);
  fs.chmodSync(injectCopy, 0o755);
  const scenario = path.join(dir, 'scenario.json');
  fs.writeFileSync(scenario, JSON.stringify(APP_SCENARIO), { mode: 0o644 });
  const xdg = path.join(dir, 'xdg');
  fs.mkdirSync(xdg, { mode: 0o700 });
  return {
    dir,
    app,
    sim: simCopy,
    inject: injectCopy,
    scenario,
    xdg,
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export interface TargetOptions {
  args?: string[];
  env?: Record<string, string | undefined>;
  /** Run as this uid (and gid), through setpriv (needs root). */
  uid?: number;
  /** No CUDA_INJECTION64_PATH: a CUDA process without the library. */
  injected?: boolean;
  /** No NVTX_INJECTION64_PATH. */
  nvtxInjection?: boolean;
  /** A scenario file other than the bench's. */
  scenario?: string;
}

export interface Target {
  pid: number;
  child: ChildProcess;
  stdout: string[];
  stderr(): string;
  /** Sends a command line and returns the first new stdout line starting with `prefix`. */
  ask(command: string, prefix: string): Promise<string>;
  exited: Promise<number | null>;
  kill(): Promise<void>;
}

const running = new Set<Target>();

export async function startTarget(bench: Bench, options: TargetOptions = {}): Promise<Target> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    XDG_RUNTIME_DIR: bench.xdg,
    GPU_TELEMETRY_CUPTI_LIB: bench.sim,
    ...(options.injected === false ? {} : { CUDA_INJECTION64_PATH: bench.inject }),
    ...(options.nvtxInjection === false ? {} : { NVTX_INJECTION64_PATH: bench.sim }),
    ...options.env,
  };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const argv = [bench.app, '--scenario', options.scenario ?? bench.scenario, ...(options.args ?? [])];
  const child =
    options.uid !== undefined
      ? spawn('setpriv', [`--reuid=${options.uid}`, `--regid=${options.uid}`, '--clear-groups', '--', ...argv], { env: env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(argv[0], argv.slice(1), { env: env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  let err = '';
  let partial = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    stdout.push(...lines);
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const target: Target = {
    pid: 0,
    child,
    stdout,
    stderr: () => err,
    async ask(command, prefix) {
      const from = stdout.length;
      child.stdin!.write(`${command}\n`);
      return waitFor(() => stdout.slice(from).find((l) => l.startsWith(prefix)), 10_000);
    },
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      running.delete(target);
    },
  };
  running.add(target);
  const ready = await Promise.race([
    waitFor(() => stdout.find((l) => l.startsWith('READY')), 20_000),
    exited.then((code) => {
      throw new Error(`the fake application exited (${code}) before READY: ${err}`);
    }),
  ]);
  target.pid = Number(/pid=(\d+)/.exec(ready)![1]);
  return target;
}

export async function killAllTargets(): Promise<void> {
  for (const t of [...running]) await t.kill();
}

/** The socket the library of `pid` made under a bench XDG_RUNTIME_DIR. */
export function socketOf(xdg: string, pid: number): string {
  return path.join(xdg, 'gpu-telemetry', `${pid}.sock`);
}

/** A raw protocol client: send bytes, read decoded JSON replies, see the connection end. */
export class RawClient {
  readonly socket: net.Socket;
  readonly messages: Record<string, unknown>[] = [];
  readonly frames: { type: number; length: number }[] = [];
  closed = false;
  error: Error | null = null;
  private readonly decoder = new FrameDecoder();

  private constructor(socketPath: string) {
    this.socket = net.createConnection({ path: socketPath });
    this.socket.on('data', (chunk: Buffer) => {
      for (const f of this.decoder.push(chunk)) {
        this.frames.push({ type: f.type, length: f.payload.length });
        if (f.type === FRAME.json) this.messages.push(decodeJson(f.payload));
      }
    });
    this.socket.on('error', (e) => (this.error = e));
    this.socket.on('close', () => (this.closed = true));
  }

  static async connect(socketPath: string): Promise<RawClient> {
    const c = new RawClient(socketPath);
    await new Promise<void>((resolve, reject) => {
      c.socket.once('connect', resolve);
      c.socket.once('error', reject);
    });
    return c;
  }

  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  json(message: Record<string, unknown>): void {
    this.socket.write(encodeJson(message));
  }

  frame(type: number, payload: Buffer): void {
    this.socket.write(encodeFrame(type, payload));
  }

  /** The next reply whose op is `op` (after the ones already seen when `from` is given). */
  next(op: string, from = 0, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    return waitFor(() => this.messages.slice(from).find((m) => m.op === op), timeoutMs);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Whether this process can run others as another uid (root with setpriv). */
export function canSwitchUid(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root: cannot run a process as another uid';
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'setpriv (util-linux) is not installed';
  }
  return null;
}
