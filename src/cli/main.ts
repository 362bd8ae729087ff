/** The gpu-telemetry command line: `main(argv, io)` runs one command and returns its exit code. */
import { createRequire } from 'node:module';
import { describeError, processIo, UsageError, type Io } from './common.js';
import { scenariosCommand, SCENARIOS_HELP } from './scenarios.js';
import { serveCommand, SERVE_HELP } from './serve.js';
import { snapshotCommand, SNAPSHOT_HELP } from './snapshot.js';
import { watchCommand, WATCH_HELP } from './watch.js';

export const MAIN_HELP = `Usage: gpu-telemetry <command> [options]

NVIDIA GPU telemetry from NVML (and the built-in driver simulator).

Commands:
  snapshot     print one sample of every GPU and field (--json for JSON)
  watch        a live terminal view of every GPU (like nvitop)
  serve        a Prometheus exporter: /metrics, /healthz, /readyz
  scenarios    list the driver-simulator scenarios
  capture      a kernel trace of another CUDA process, armed by pid (--pid, --list)
  inject-path  print the injection library's path (for CUDA_INJECTION64_PATH)
  help [cmd]   show help for a command

Run "gpu-telemetry <command> --help" for a command's options.
Without a GPU, add --simulate h100-sxm-8 (or set GPU_TELEMETRY_SIMULATE).
`;

const HELP: Record<string, string> = { snapshot: SNAPSHOT_HELP, scenarios: SCENARIOS_HELP, serve: SERVE_HELP, watch: WATCH_HELP };

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '-h':
      case '--help':
        io.out(MAIN_HELP);
        return command === undefined ? 2 : 0;
      case 'help': {
        const topic = rest[0];
        if (topic === undefined) {
          io.out(MAIN_HELP);
          return 0;
        }
        if (topic === 'capture' || topic === 'inject-path') {
          const c = await import('./capture.js');
          io.out(topic === 'capture' ? c.CAPTURE_HELP : c.INJECT_PATH_HELP);
          return 0;
        }
        if (!Object.hasOwn(HELP, topic)) throw new UsageError(`no help for "${topic}": unknown command`);
        io.out(HELP[topic]);
        return 0;
      }
      case '-v':
      case '--version': {
        const require = createRequire(import.meta.url);
        io.out(`${(require('../../package.json') as { version: string }).version}\n`);
        return 0;
      }
      case 'snapshot':
        return await snapshotCommand(rest, io);
      case 'scenarios':
        return scenariosCommand(rest, io);
      case 'serve':
        return await serveCommand(rest, io);
      case 'watch':
        return await watchCommand(rest, io);
      // Loaded on demand: the capture client is not part of the other commands' start-up.
      case 'capture':
        return await (await import('./capture.js')).captureCommand(rest, io);
      case 'inject-path':
        return (await import('./capture.js')).injectPathCommand(rest, io);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`gpu-telemetry: ${e.message}\n\n${command && Object.hasOwn(HELP, command) ? HELP[command] : MAIN_HELP}`);
      return 2;
    }
    io.err(`gpu-telemetry: ${describeError(e)}\n`);
    return 1;
  }
}
