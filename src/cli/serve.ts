/** `gpu-telemetry serve`: a standalone Prometheus exporter. */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createKubernetesPods, type KubernetesPods, type KubernetesStatus } from '../kubernetes/pods.js';
import { DEFAULT_POD_RESOURCES_SOCKET } from '../kubernetes/podresources.js';
import { DCGM_MODES, type DcgmConnection, type DcgmMode, type GpuTelemetryOptions } from '../options.js';
import { createTelemetryServer } from '../server.js';
import { TelemetrySupervisor } from '../supervisor.js';
import type { GpuTelemetry } from '../telemetry.js';
import { intOption, parse, UsageError, type Io } from './common.js';

export const SERVE_HELP = `Usage: gpu-telemetry serve [options]

Serves the GPU metrics for Prometheus at http://HOST:PORT/metrics (Prometheus text, or
OpenMetrics when the scraper asks for it), plus /healthz and /readyz. Without a usable
driver it keeps answering, with gpu_telemetry_up 0 and the reason, and retries.

Options:
  --host HOST         address to bind (default 127.0.0.1: loopback only)
  --port N            port (default 9400)
  --interval-ms N     sampling interval (default 1000)
  --names MODE        metric names: default (gpu_*, base units) or dcgm
                      (dcgm-exporter's names, units and labels)
  --per-link          add per-link NVLink series (default names only)
  --processes         add per-process series: memory and SM / memory / encoder /
                      decoder utilisation, with pod labels when known (default
                      names only; reads each process's utilisation)
  --max-processes N   per-process series per GPU, those using the most memory
                      (1-64, default 64)
  --dcgm-hostname-label NAME
                      the host name label in --names dcgm: Hostname (default,
                      dcgm-exporter's releases) or hostname (its main, PR #655)
  --simulate NAME     use the driver simulator (see "gpu-telemetry scenarios")
  --nvml PATH         NVML library to load (default libnvidia-ml.so.1)
  --dcgm-mode MODE    which DCGM host engine: auto (default: a running
                      nv-hostengine at localhost:5555 or /tmp/nv-hostengine, else an
                      embedded one), hostengine (a running one only) or embedded
  --dcgm-host ADDR    read the profiling fields from that running nv-hostengine
                      ("host:port" or a unix socket path)
  --no-dcgm           never use DCGM (profiling fields from NVML GPM, or none)
  --reopen-ms N       retry interval while the GPUs are unavailable (default 30000)
  --pod-resources-socket PATH
                      label GPUs with the pods holding them, from the kubelet's
                      PodResources API on this unix socket (default: on when
                      ${DEFAULT_POD_RESOURCES_SOCKET} exists)
  --pod-resources-refresh-ms N
                      how often the kubelet is asked (default 5000)
  --no-kubernetes     never ask the kubelet (no pod labels)
  -h, --help          show this help

Stops cleanly on SIGTERM / SIGINT.
`;

function version(): string {
  const require = createRequire(import.meta.url);
  return (require('../../package.json') as { version: string }).version;
}

export function describeInstance(gpu: GpuTelemetry): string {
  const models = [...new Set(gpu.devices.map((d) => d.name))].join(', ');
  const active = (['dcgm', 'gpm'] as const)
    .filter((b) => gpu.backends[b].state === 'active')
    .map((b) => (gpu.backends[b].detail ? `${b} (${gpu.backends[b].detail})` : b));
  const inactive = (['dcgm', 'gpm'] as const)
    .filter((b) => gpu.backends[b].state !== 'active')
    .map((b) => `${b}: ${gpu.backends[b].state}${gpu.backends[b].reason ? ` (${gpu.backends[b].reason})` : ''}`);
  return (
    `driver ${gpu.driver.driverVersion || '?'} (NVML ${gpu.driver.nvmlVersion || '?'}) · ` +
    `${gpu.devices.length} GPU${gpu.devices.length === 1 ? '' : 's'}${models ? ` (${models})` : ''} · ` +
    `sources: ${['nvml', ...active].join(', ')}${inactive.length ? `; ${inactive.join('; ')}` : ''}` +
    (gpu.driver.simulated ? ` · SIMULATED (scenario ${gpu.driver.scenario})` : '')
  );
}

export async function serveCommand(argv: string[], io: Io, signals: NodeJS.EventEmitter = process): Promise<number> {
  const { values } = parse(argv, {
    host: { type: 'string' },
    port: { type: 'string' },
    'interval-ms': { type: 'string' },
    names: { type: 'string' },
    'per-link': { type: 'boolean' },
    processes: { type: 'boolean' },
    'max-processes': { type: 'string' },
    'dcgm-hostname-label': { type: 'string' },
    simulate: { type: 'string' },
    nvml: { type: 'string' },
    'dcgm-mode': { type: 'string' },
    'dcgm-host': { type: 'string' },
    'no-dcgm': { type: 'boolean' },
    'reopen-ms': { type: 'string' },
    'pod-resources-socket': { type: 'string' },
    'pod-resources-refresh-ms': { type: 'string' },
    'no-kubernetes': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(SERVE_HELP);
    return 0;
  }
  const host = values.host ?? '127.0.0.1';
  // `--host ""` (an empty variable in a unit file) would make Node listen on every interface.
  if (host.trim() === '') throw new UsageError('--host must name an address (default 127.0.0.1; 0.0.0.0 for every interface), not ""');
  const port = intOption('port', values.port, 9400, 0, 65535);
  const intervalMs = intOption('interval-ms', values['interval-ms'], 1000, 10, 3_600_000);
  const reopenMs = intOption('reopen-ms', values['reopen-ms'], 30_000, 100, 86_400_000);
  const names = values.names ?? 'default';
  if (names !== 'default' && names !== 'dcgm') throw new UsageError(`--names must be default or dcgm, not "${names}"`);
  for (const flag of ['per-link', 'processes'] as const) {
    if (names === 'dcgm' && values[flag]) {
      throw new UsageError(`--${flag} cannot be combined with --names dcgm: dcgm-exporter has no such series (use --names default)`);
    }
  }
  const hostnameLabel = values['dcgm-hostname-label'] ?? 'Hostname';
  if (hostnameLabel !== 'Hostname' && hostnameLabel !== 'hostname') {
    throw new UsageError(`--dcgm-hostname-label must be Hostname or hostname, not "${hostnameLabel}"`);
  }
  if (values['dcgm-hostname-label'] !== undefined && names !== 'dcgm') {
    throw new UsageError('--dcgm-hostname-label applies to --names dcgm only');
  }
  if (values['max-processes'] !== undefined && !values.processes) throw new UsageError('--max-processes needs --processes');
  const maxProcesses = intOption('max-processes', values['max-processes'], 64, 1, 64);
  const kubernetes = kubernetesFromArgs(values);

  const dcgmMode = values['dcgm-mode'];
  if (dcgmMode !== undefined && !(DCGM_MODES as readonly string[]).includes(dcgmMode)) {
    throw new UsageError(`--dcgm-mode must be ${DCGM_MODES.join(', ')}, not "${dcgmMode}"`);
  }
  if (dcgmMode === 'embedded' && values['dcgm-host'] !== undefined) {
    throw new UsageError('--dcgm-host names a running nv-hostengine: it cannot be combined with --dcgm-mode embedded');
  }
  const dcgm: DcgmConnection = {
    ...(dcgmMode !== undefined ? { mode: dcgmMode as DcgmMode } : {}),
    ...(values['dcgm-host'] !== undefined ? { host: values['dcgm-host'] } : {}),
  };
  const options: GpuTelemetryOptions = {
    intervalMs,
    ...(values.simulate !== undefined ? { simulate: values.simulate } : {}),
    ...(values.nvml !== undefined ? { libraries: { nvml: values.nvml } } : {}),
    ...(Object.keys(dcgm).length > 0 ? { dcgm } : {}),
    ...(values['no-dcgm'] ? { sources: { dcgm: false } } : {}),
    ...(values.processes ? { processUtilization: true } : {}),
  };
  let announced = false;
  const supervisor = new TelemetrySupervisor(options, {
    reopenMs,
    onAttempt: ({ gpu, error }) => {
      if (gpu) {
        io.out(`${announced ? 'GPUs available again' : 'found'}: ${describeInstance(gpu)}\n`);
      } else if (error && !announced) {
        io.err(
          `GPUs unavailable: ${error.code}: ${error.message}\n` +
            `  /metrics reports gpu_telemetry_up 0; retrying every ${reopenMs / 1000} s\n`,
        );
      }
      announced = true;
    },
  });
  let pods: KubernetesPods | undefined;
  if (kubernetes) {
    pods = createKubernetesPods(kubernetes);
  }
  await Promise.all([supervisor.start(), pods?.ready()]);
  const err = supervisor.lastError();
  if (err && (err.code === 'INVALID_OPTION' || err.code === 'INVALID_SCENARIO')) {
    pods?.close();
    await supervisor.close();
    return 1;
  }
  if (pods) {
    io.out(`kubernetes: ${describeKubernetes(pods.status())}\n`);
    pods.on('status', (st) => (st.state === 'up' ? io.out : io.err)(`kubernetes: ${describeKubernetes(st)}\n`));
  } else {
    io.out(
      `kubernetes: off (${values['no-kubernetes'] ? '--no-kubernetes' : `no kubelet socket at ${DEFAULT_POD_RESOURCES_SOCKET}; --pod-resources-socket PATH to name one`})\n`,
    );
  }

  const server = createTelemetryServer(supervisor, {
    names,
    perLink: values['per-link'] === true,
    processes: values.processes === true,
    ...(values.processes ? { maxProcesses } : {}),
    ...(names === 'dcgm' ? { dcgmHostnameLabel: hostnameLabel } : {}),
    // In a pod, os.hostname() is the pod's name: dcgm-exporter labels with the node's (NODE_NAME) instead.
    ...(process.env.NODE_NAME ? { hostname: process.env.NODE_NAME } : {}),
    ...(pods ? { kubernetes: pods } : {}),
  });
  let address;
  try {
    address = await server.listen(port, host);
  } catch (e) {
    pods?.close();
    await supervisor.close();
    io.err(`cannot listen on ${host}:${port}: ${(e as Error).message}\n`);
    return 1;
  }
  // The signal handlers go in before the line that says we serve: a supervisor (or a test) may
  // send SIGTERM as soon as it reads it, and a signal with no handler yet kills the process with
  // no clean stop (seen under load: the test's SIGTERM came between the line and the handlers).
  let stopping = false;
  let stopped!: (code: number) => void;
  const done = new Promise<number>((resolve) => (stopped = resolve));
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    io.out(`${signal}: stopping\n`);
    pods?.close();
    void Promise.all([server.close(), supervisor.close()]).then(() => stopped(0));
  };
  signals.once('SIGTERM', () => stop('SIGTERM'));
  signals.once('SIGINT', () => stop('SIGINT'));

  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  io.out(
    `gpu-telemetry ${version()} serving http://${shown}:${address.port}/metrics (names: ${names})` +
      (host === '127.0.0.1' || host === '::1' || host === 'localhost'
        ? ' · loopback only (use --host 0.0.0.0 to expose it)'
        : ` · WARNING: listening on ${host}, reachable from the network`) +
      '\n',
  );
  return done;
}

function kubernetesFromArgs(values: {
  'pod-resources-socket'?: string;
  'pod-resources-refresh-ms'?: string;
  'no-kubernetes'?: boolean;
}): { podResourcesSocket: string; refreshMs: number } | null {
  const socket = values['pod-resources-socket'];
  const refreshMs = intOption('pod-resources-refresh-ms', values['pod-resources-refresh-ms'], 5000, 1000, 3_600_000);
  if (values['no-kubernetes']) {
    if (socket !== undefined || values['pod-resources-refresh-ms'] !== undefined) {
      throw new UsageError('--no-kubernetes cannot be combined with --pod-resources-socket or --pod-resources-refresh-ms');
    }
    return null;
  }
  if (socket !== undefined) {
    if (!socket.startsWith('/')) throw new UsageError(`--pod-resources-socket must be an absolute path, not "${socket}"`);
    return { podResourcesSocket: socket, refreshMs };
  }
  // Default: on when the kubelet's socket is there (a node, or a pod with the hostPath mounted).
  return existsSync(DEFAULT_POD_RESOURCES_SOCKET) ? { podResourcesSocket: DEFAULT_POD_RESOURCES_SOCKET, refreshMs } : null;
}

export function describeKubernetes(st: KubernetesStatus): string {
  const where = st.socket;
  if (st.state === 'up') return `pods from ${where}: up (${st.pods} pod${st.pods === 1 ? '' : 's'} holding devices${st.ignored ? `, ${st.ignored} malformed entries ignored` : ''})`;
  if (st.state === 'down') return `pods from ${where}: DOWN (${st.code}: ${st.reason}); retrying`;
  return `pods from ${where}: ${st.state}`;
}
