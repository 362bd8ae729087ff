/**
 * gpu-telemetry capture --pid N …   a kernel trace of another CUDA process (armProcess)
 * gpu-telemetry capture --list      the processes whose injection library is listening
 * gpu-telemetry inject-path         where libgpu_telemetry_inject.so is (for CUDA_INJECTION64_PATH)
 *
 * Loaded by cli/main.ts only when one of these commands runs.
 */
import fs from 'node:fs';
import { once } from 'node:events';
import type { CaptureHandle, CaptureProgress } from '../capture/capture-handle.js';
import { armProcess, injectLibraryPath, listInjectedProcesses, prewarmProcess, type ProcessCaptureOptions } from '../inject/index.js';
import { describeError, intOption, parse, UsageError, type Io } from './common.js';

export const CAPTURE_HELP = `Usage: gpu-telemetry capture --pid <pid> (--step-range <name> [--steps <n>] | --duration-ms <ms>) --out <file>
       gpu-telemetry capture --pid <pid> --prewarm
       gpu-telemetry capture --list [--json]

A kernel trace (CUPTI activity: kernels, memcpy/memset, CUDA API calls, NVTX ranges) of another
CUDA process, armed by pid through the gpu-telemetry injection library inside it. Start the
process with

  CUDA_INJECTION64_PATH=$(npx gpu-telemetry inject-path) NVTX_INJECTION64_PATH=<its libcupti.so> python serve.py

(NVTX_INJECTION64_PATH is needed for NVTX ranges, and so for --step-range). The library stays
dormant until armed; only the process's own user or root may arm it.

Options:
  --pid <pid>               the process to capture
  --step-range <name>       count steps by the process's NVTX ranges of this name (e.g. decode_step)
  --steps <n>               steps to capture (default 10)
  --step-domain <name>      only ranges of this NVTX domain count ("" for the default domain)
  --start-after-steps <n>   step ranges to let pass first (default 0)
  --duration-ms <ms>        capture a time window instead (a process without NVTX ranges)
  --max-bytes <n>           cap on the capture's memory in the process (default 67108864)
  --timeout-ms <ms>         wall-time cap (default 60000, or the window + 30 s)
  --out <file>              write the Chrome/Perfetto trace JSON here (required)
  --summary <file>          also write {meta, summary} JSON here
  --prewarm                 only pay CUPTI's start-up in the process now (its first enable can take
                            seconds), so that a later capture is armed at once
  --list                    list the injected processes (pid, name, state) and exit
  --json                    with --list: JSON output

Progress goes to stderr (one updating line on a terminal). Ctrl-C stops the capture and writes
what was captured. Exit status: 0 a complete trace; 3 a trace was written but is incomplete
(truncated, timed out, cancelled, the process exited); 1 no trace; 2 usage.
`;

export const INJECT_PATH_HELP = `Usage: gpu-telemetry inject-path

Prints the absolute path of libgpu_telemetry_inject.so, the injection library a CUDA process loads
when started with CUDA_INJECTION64_PATH=$(npx gpu-telemetry inject-path). See "gpu-telemetry
capture --help".
`;

export interface CaptureCliOptions {
  /** Whether stderr is a terminal (one updating progress line); default: process.stderr.isTTY. */
  stderrIsTTY?: boolean;
  /** Stop the capture on SIGINT (default true). */
  handleSigint?: boolean;
}

export function injectPathCommand(argv: string[], io: Io): number {
  try {
    parse(argv, { help: { type: 'boolean', short: 'h' } });
  } catch (e) {
    io.err(`gpu-telemetry: ${(e as Error).message}\n\n${INJECT_PATH_HELP}`);
    return 2;
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(INJECT_PATH_HELP);
    return 0;
  }
  try {
    io.out(`${injectLibraryPath()}\n`);
    return 0;
  } catch (e) {
    io.err(`gpu-telemetry: ${describeError(e)}\n`);
    return 1;
  }
}

function progressLine(pid: number, p: CaptureProgress, stepsRequested: number, durationMs: number | null): string {
  const what = durationMs !== null ? `${Math.min(p.elapsedMs, durationMs)}/${durationMs} ms` : `step ${p.steps}/${stepsRequested}`;
  const drops = p.droppedByCupti + p.droppedByUs + p.droppedIncomplete;
  return `pid ${pid}: ${p.state}, ${what}, ${p.records} records, ${(p.bytes / 1048576).toFixed(1)} MiB${drops > 0 ? `, ${drops} dropped` : ''}`;
}

export async function captureCommand(argv: string[], io: Io, cli: CaptureCliOptions = {}): Promise<number> {
  let args;
  try {
    args = parse(argv, {
      pid: { type: 'string' },
      steps: { type: 'string' },
      'step-range': { type: 'string' },
      'step-domain': { type: 'string' },
      'start-after-steps': { type: 'string' },
      'duration-ms': { type: 'string' },
      'max-bytes': { type: 'string' },
      'timeout-ms': { type: 'string' },
      out: { type: 'string' },
      summary: { type: 'string' },
      list: { type: 'boolean' },
      json: { type: 'boolean' },
      prewarm: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    }).values;
    if (args.help) {
      io.out(CAPTURE_HELP);
      return 0;
    }
    if (args.list) return await list(io, args.json === true);
    if (args.pid === undefined) throw new UsageError('--pid is required (or --list)');
    if (args.prewarm) return await prewarm(io, intOption('pid', args.pid, 0, 1, 4_194_304));
    if (args.out === undefined) throw new UsageError('--out <file> is required: where the trace goes');
    if ((args['step-range'] === undefined) === (args['duration-ms'] === undefined)) {
      throw new UsageError('give either --step-range <name> (steps are the process\'s NVTX ranges) or --duration-ms <ms>');
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`gpu-telemetry: ${e.message}\n\n${CAPTURE_HELP}`);
      return 2;
    }
    throw e;
  }
  let pid: number;
  const options: ProcessCaptureOptions = {};
  try {
    pid = intOption('pid', args.pid, 0, 1, 4_194_304);
    if (args['step-range'] !== undefined) {
      options.stepRange = args['step-range'];
      options.steps = intOption('steps', args.steps, 10, 1, 100_000);
      if (args['step-domain'] !== undefined) options.stepDomain = args['step-domain'];
      options.startAfterSteps = intOption('start-after-steps', args['start-after-steps'], 0, 0, 1_000_000);
    } else {
      if (args.steps !== undefined || args['step-domain'] !== undefined || args['start-after-steps'] !== undefined) {
        throw new UsageError('--steps, --step-domain and --start-after-steps go with --step-range, not --duration-ms');
      }
      options.durationMs = intOption('duration-ms', args['duration-ms'], 0, 1, 3_600_000);
    }
    if (args['max-bytes'] !== undefined) options.maxBytes = intOption('max-bytes', args['max-bytes'], 0, 1 << 20, 4 * 1024 ** 3);
    if (args['timeout-ms'] !== undefined) options.timeoutMs = intOption('timeout-ms', args['timeout-ms'], 0, 100, 3_600_000);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`gpu-telemetry: ${e.message}\n\n${CAPTURE_HELP}`);
      return 2;
    }
    throw e;
  }

  let cap: CaptureHandle;
  try {
    cap = armProcess(pid, options);
  } catch (e) {
    io.err(`gpu-telemetry: ${describeError(e)}\n`);
    return 1;
  }
  const tty = cli.stderrIsTTY ?? process.stderr.isTTY === true;
  const durationMs = options.durationMs ?? null;
  let lastLine = '';
  let lastState = '';
  let lastPrinted = 0;
  const show = (final = false): void => {
    const p = cap.progress;
    const line = progressLine(pid, p, cap.options.steps, durationMs);
    if (tty) {
      io.err(`\r\x1b[K${line}${final ? '\n' : ''}`);
    } else if (line !== lastLine && (final || p.state !== lastState || Date.now() - lastPrinted >= 1000)) {
      // Not a terminal (a log): a line on a change of state, else at most one a second.
      io.err(`${line}\n`);
      lastPrinted = Date.now();
    }
    lastLine = line;
    lastState = p.state;
  };
  const ticker = setInterval(() => show(), tty ? 200 : 250);
  let interrupted = 0;
  const onSigint = (): void => {
    interrupted++;
    if (interrupted > 1) process.exit(130);
    io.err(`${tty ? '\n' : ''}gpu-telemetry: stopping the capture (Ctrl-C again to quit at once)\n`);
    cap.cancel().catch(() => undefined);
  };
  if (cli.handleSigint !== false) process.on('SIGINT', onSigint);
  try {
    const trace = await cap.done;
    clearInterval(ticker);
    show(true);
    const stream = fs.createWriteStream(args.out!, { mode: 0o600 });
    await trace.writeChromeTrace(stream);
    stream.end();
    await once(stream, 'finish');
    if (args.summary !== undefined) fs.writeFileSync(args.summary, trace.summaryJson(), { mode: 0o600 });
    const m = trace.meta;
    const complete = !m.truncated && (m.reason === 'steps' || m.reason === 'duration');
    io.err(
      `${complete ? 'captured' : 'captured (incomplete)'}: ${m.durationMs !== null ? `${m.durationMs} ms` : `${m.stepsCaptured}/${m.stepsRequested} steps`} of pid ${m.pid}` +
        ` (${m.processName ?? '?'}), ${trace.kernels.length} kernels, reason ${m.reason}${m.truncated ? ', truncated' : ''} -> ${args.out}\n`,
    );
    return complete ? 0 : 3;
  } catch (e) {
    clearInterval(ticker);
    if (tty) io.err('\n');
    io.err(`gpu-telemetry: ${describeError(e)}\n`);
    return 1;
  } finally {
    clearInterval(ticker);
    process.off('SIGINT', onSigint);
  }
}

async function prewarm(io: Io, pid: number): Promise<number> {
  try {
    const r = await prewarmProcess(pid);
    io.err(`pre-warmed CUPTI in pid ${pid}: ${r.libraryPath} (API ${r.cuptiVersion}, ${r.layout}), set-up ${r.startMs.toFixed(0)} ms\n`);
    return 0;
  } catch (e) {
    io.err(`gpu-telemetry: ${describeError(e)}\n`);
    return 1;
  }
}

async function list(io: Io, json: boolean): Promise<number> {
  const found = await listInjectedProcesses();
  if (json) {
    io.out(`${JSON.stringify(found, null, 2)}\n`);
    return 0;
  }
  if (found.length === 0) {
    io.out('no injected processes found (start one with CUDA_INJECTION64_PATH=$(npx gpu-telemetry inject-path))\n');
    return 0;
  }
  io.out(`${'PID'.padEnd(8)} ${'NAME'.padEnd(16)} ${'UID'.padEnd(6)} ${'STATE'.padEnd(12)} SOCKET\n`);
  for (const p of found) {
    io.out(`${String(p.pid).padEnd(8)} ${p.processName.padEnd(16)} ${String(p.uid).padEnd(6)} ${p.state.padEnd(12)} ${p.socketPath}${p.error ? `  (${p.error})` : ''}\n`);
  }
  return 0;
}

