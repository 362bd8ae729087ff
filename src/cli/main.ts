/** The gpu-telemetry command line: `main(argv, io)` runs one command and returns its exit code. */
import { createRequire } from 'node:module';
import { describeError, processIo, UsageError, type Io } from './common.js';

interface Command {
  run(argv: string[], io: Io): number | Promise<number>;
  help: string;
}

// Each command's module is loaded only when that command runs: `serve` pulls in the HTTP server,
// prom-client and the Kubernetes client (gRPC), which `snapshot` has no use for. Loading all of
// them cost ~0.2 s of every `snapshot` (bench, section 5c).
const COMMANDS: Record<string, () => Promise<Command>> = {
  snapshot: async () => {
    const m = await import('./snapshot.js');
    return { run: m.snapshotCommand, help: m.SNAPSHOT_HELP };
  },
  scenarios: async () => {
    const m = await import('./scenarios.js');
    return { run: m.scenariosCommand, help: m.SCENARIOS_HELP };
  },
  serve: async () => {
    const m = await import('./serve.js');
    return { run: (argv, io) => m.serveCommand(argv, io), help: m.SERVE_HELP };
  },
  watch: async () => {
    const m = await import('./watch.js');
    return { run: m.watchCommand, help: m.WATCH_HELP };
  },
  capture: async () => {
    const m = await import('./capture.js');
    return { run: (argv, io) => m.captureCommand(argv, io), help: m.CAPTURE_HELP };
  },
  'inject-path': async () => {
    const m = await import('./capture.js');
    return { run: m.injectPathCommand, help: m.INJECT_PATH_HELP };
  },
};

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

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [command, ...rest] = argv;
  let loaded: Command | null = null;
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
        if (!Object.hasOwn(COMMANDS, topic)) throw new UsageError(`no help for "${topic}": unknown command`);
        io.out((await COMMANDS[topic]()).help);
        return 0;
      }
      case '-v':
      case '--version': {
        const require = createRequire(import.meta.url);
        io.out(`${(require('../../package.json') as { version: string }).version}\n`);
        return 0;
      }
      default:
        if (!Object.hasOwn(COMMANDS, command)) throw new UsageError(`unknown command "${command}"`);
        loaded = await COMMANDS[command]();
        return await loaded.run(rest, io);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`gpu-telemetry: ${e.message}\n\n${loaded ? loaded.help : MAIN_HELP}`);
      return 2;
    }
    io.err(`gpu-telemetry: ${describeError(e)}\n`);
    return 1;
  }
}
