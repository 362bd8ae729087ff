/**
 * Options of openGpuTelemetry: their types, defaults and validation. Validation lives here (the
 * native side trusts what it is given); every message names the option and what is allowed.
 */
import { describeValue, invalidOption } from './errors.js';
import { resolveScenario, type ResolvedScenario } from './simulator.js';

export interface LibraryPaths {
  /** Path or soname of NVML (default: $GPU_TELEMETRY_NVML_LIB, then libnvidia-ml.so.1). */
  nvml?: string;
  /** Path or soname of DCGM (default: $GPU_TELEMETRY_DCGM_LIB, then libdcgm.so.4, libdcgm.so.3). */
  dcgm?: string;
  /** Path or soname of CUPTI (default: $GPU_TELEMETRY_CUPTI_LIB, then libcupti.so). */
  cupti?: string;
}

/**
 * Per backend: `true` = must be used (open fails with SOURCE_UNAVAILABLE if it cannot),
 * `false` = never used, absent = used where it works (the default).
 */
export interface SourceSelection {
  /** NVIDIA DCGM (profiling fields, embedded or a running nv-hostengine). */
  dcgm?: boolean;
  /** NVML GPU Performance Monitoring (Hopper and later; no DCGM needed). */
  gpm?: boolean;
}

export type SourceMode = 'auto' | 'required' | 'disabled';

/**
 * Which DCGM host engine to use:
 * - `'auto'` (default): a running nv-hostengine — `host` when given, else one on this machine
 *   (`localhost:5555`, then the unix socket `/tmp/nv-hostengine`) — and only when none is running,
 *   an embedded host engine inside this process;
 * - `'hostengine'`: a running nv-hostengine only (`host`, else the local addresses); never embedded;
 * - `'embedded'`: an embedded host engine only (`dcgmStartEmbedded`), even next to a running one.
 */
export type DcgmMode = 'auto' | 'hostengine' | 'embedded';
export const DCGM_MODES: readonly DcgmMode[] = ['auto', 'hostengine', 'embedded'];

/** How to reach DCGM. Default: a running local nv-hostengine, else an embedded host engine. */
export interface DcgmConnection {
  /** See DcgmMode (default 'auto'). */
  mode?: DcgmMode;
  /** A running nv-hostengine: "host:port" (e.g. "localhost:5555"), or an absolute unix socket path. */
  host?: string;
  /** How long connecting may take (100 to 60,000 ms; default 5,000; a local one found in 'auto' mode: at most 1,000). */
  connectTimeoutMs?: number;
}

export interface GpuTelemetryOptions {
  /** Sampling interval in milliseconds (10 to 3,600,000; default 1000). */
  intervalMs?: number;
  /**
   * Run against the driver simulator instead of a GPU: a shipped scenario name (`h100-sxm-8`,
   * `gb10`, `a100-pcie-2`, …) or a path to a scenario JSON file. Default: $GPU_TELEMETRY_SIMULATE.
   */
  simulate?: string;
  /** Vendor library paths; the GPU_TELEMETRY_*_LIB environment variables mean the same. */
  libraries?: LibraryPaths;
  /** A sample older than this is reported `stale` (default: max(3 × intervalMs, 1000)). */
  staleAfterMs?: number;
  /** How long opening may take before it fails with TIMEOUT (default 30,000). */
  openTimeoutMs?: number;
  /** How often a lost GPU is probed again (default 5,000). */
  lostRetryMs?: number;
  /** How long close() waits for the sampling thread before resolving anyway (default 2,000). */
  closeTimeoutMs?: number;
  /**
   * Where unified-memory GPUs (GB10) get their memory figures (default /proc/meminfo; a simulator
   * scenario may name its own file).
   */
  meminfoPath?: string;
  /** Force or forbid backends, e.g. { dcgm: false }. */
  sources?: SourceSelection;
  /**
   * Where DCGM runs: a running nv-hostengine when there is one, else embedded (default), or as
   * said: { mode: 'embedded' }, { host: 'localhost:5555' }, { mode: 'hostengine' }.
   */
  dcgm?: DcgmConnection;
  /**
   * Read each process's SM / memory / encoder / decoder utilisation (snapshot `processes[i]`), on a
   * thread of its own (default false: one more NVML call per GPU per interval; a hung one then
   * stalls only this).
   */
  processUtilization?: boolean;
}

export interface ResolvedOptions {
  intervalMs: number;
  staleAfterMs: number;
  openTimeoutMs: number;
  lostRetryMs: number;
  closeTimeoutMs: number;
  nvmlCandidates: string[];
  scenario: ResolvedScenario | null;
  meminfoPath: string;
  sources: { dcgm: SourceMode; gpm: SourceMode };
  /** DCGM libraries to try; empty with `dcgmAbsentReason` when there is nothing to try. */
  dcgmCandidates: string[];
  /** The simulator: DCGM's entry points are in the simulator library itself. */
  dcgmFromNvmlLibrary: boolean;
  dcgmAbsentReason: string;
  dcgmHost: string;
  dcgmHostIsUnixSocket: boolean;
  dcgmEngine: DcgmMode;
  dcgmConnectTimeoutMs: number;
  /** libraries.cupti, for kernel-trace capture (null: $GPU_TELEMETRY_CUPTI_LIB or the defaults). */
  cuptiLibrary: string | null;
  processUtilization: boolean;
}

const KNOWN_OPTIONS = new Set([
  'intervalMs',
  'simulate',
  'libraries',
  'staleAfterMs',
  'openTimeoutMs',
  'lostRetryMs',
  'closeTimeoutMs',
  'meminfoPath',
  'sources',
  'dcgm',
  'processUtilization',
]);
const KNOWN_SOURCES = new Set(['dcgm', 'gpm']);
const KNOWN_LIBRARIES = new Set(['nvml', 'dcgm', 'cupti']);
const DEFAULT_NVML = ['libnvidia-ml.so.1', 'libnvidia-ml.so'];
const DEFAULT_DCGM = ['libdcgm.so.4', 'libdcgm.so.3'];

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  // A Date, Map or class instance is not an options object (its keys would be silently ignored).
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

const describe = describeValue;

export function checkNumber(option: string, value: unknown, min: number, max: number, integer = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw invalidOption(option, `must be a finite number of milliseconds between ${min} and ${max}, not ${describe(value)}`);
  }
  if (value < min || value > max) {
    throw invalidOption(option, `must be between ${min} and ${max}, not ${value}`);
  }
  if (integer && !Number.isInteger(value)) throw invalidOption(option, `must be a whole number, not ${value}`);
  return value;
}

function checkLibraryPath(option: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw invalidOption(option, `must be a non-empty path or soname (e.g. "libnvidia-ml.so.1"), not ${describe(value)}`);
  }
  if (value.includes('\0')) throw invalidOption(option, 'must not contain a NUL character');
  if (value.length > 4096) throw invalidOption(option, 'is longer than 4096 characters');
  return value;
}

function envValue(name: string): string | undefined {
  const v = process.env[name];
  return v !== undefined && v.trim() !== '' ? v : undefined;
}

export function resolveOptions(options: GpuTelemetryOptions | undefined): ResolvedOptions {
  if (options === undefined || options === null) options = {};
  if (!isPlainObject(options)) throw invalidOption('', `must be a plain object like { intervalMs: 500 }, not ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw invalidOption(key, `unknown option (allowed: ${[...KNOWN_OPTIONS].join(', ')})`);
    }
  }
  const o = options as Record<string, unknown>;
  const intervalMs = o.intervalMs === undefined ? 1000 : checkNumber('intervalMs', o.intervalMs, 10, 3_600_000);
  const staleAfterMs =
    o.staleAfterMs === undefined
      ? Math.max(3 * intervalMs, 1000)
      : checkNumber('staleAfterMs', o.staleAfterMs, intervalMs, 86_400_000);
  const openTimeoutMs = o.openTimeoutMs === undefined ? 30_000 : checkNumber('openTimeoutMs', o.openTimeoutMs, 1, 600_000);
  const lostRetryMs = o.lostRetryMs === undefined ? 5_000 : checkNumber('lostRetryMs', o.lostRetryMs, 10, 3_600_000);
  const closeTimeoutMs =
    o.closeTimeoutMs === undefined ? 2_000 : checkNumber('closeTimeoutMs', o.closeTimeoutMs, 0, 600_000);

  let libraries: Record<string, unknown> = {};
  if (o.libraries !== undefined) {
    if (!isPlainObject(o.libraries)) {
      throw invalidOption('libraries', `must be an object like { nvml: '/path/libnvidia-ml.so.1' }, not ${describe(o.libraries)}`);
    }
    libraries = o.libraries;
    for (const key of Object.keys(libraries)) {
      if (!KNOWN_LIBRARIES.has(key)) throw invalidOption(`libraries.${key}`, 'unknown library (allowed: nvml, dcgm, cupti)');
      if (libraries[key] !== undefined) checkLibraryPath(`libraries.${key}`, libraries[key]);
    }
  }

  let simulate: string | undefined;
  if (o.simulate !== undefined) {
    if (typeof o.simulate !== 'string' || o.simulate.trim() === '') {
      throw invalidOption('simulate', `must be a scenario name (e.g. "h100-sxm-8") or a path to a .json file, not ${describe(o.simulate)}`);
    }
    simulate = o.simulate;
  } else if (libraries.nvml === undefined) {
    simulate = envValue('GPU_TELEMETRY_SIMULATE');
  }
  if (simulate !== undefined && libraries.nvml !== undefined) {
    throw invalidOption('simulate', 'cannot be combined with libraries.nvml: the simulator is the NVML library');
  }
  if (o.simulate !== undefined && libraries.cupti !== undefined) {
    throw invalidOption('simulate', 'cannot be combined with libraries.cupti: the simulator is also the CUPTI library');
  }

  let scenario: ResolvedScenario | null = null;
  let nvmlCandidates: string[];
  if (simulate !== undefined) {
    scenario = resolveScenario(simulate);
    nvmlCandidates = [scenario.libraryPath];
  } else if (libraries.nvml !== undefined) {
    nvmlCandidates = [libraries.nvml as string];
  } else {
    const fromEnv = envValue('GPU_TELEMETRY_NVML_LIB');
    nvmlCandidates = fromEnv !== undefined ? [fromEnv] : [...DEFAULT_NVML];
  }
  let meminfoPath = scenario?.meminfoPath ?? '/proc/meminfo';
  if (o.meminfoPath !== undefined) {
    if (typeof o.meminfoPath !== 'string' || o.meminfoPath.trim() === '' || o.meminfoPath.includes('\0')) {
      throw invalidOption('meminfoPath', `must be a file path like "/proc/meminfo", not ${describe(o.meminfoPath)}`);
    }
    meminfoPath = o.meminfoPath;
  }
  const sources: { dcgm: SourceMode; gpm: SourceMode } = { dcgm: 'auto', gpm: 'auto' };
  if (o.sources !== undefined) {
    if (!isPlainObject(o.sources)) throw invalidOption('sources', `must be an object like { dcgm: false }, not ${describe(o.sources)}`);
    for (const [key, value] of Object.entries(o.sources)) {
      if (!KNOWN_SOURCES.has(key)) throw invalidOption(`sources.${key}`, 'unknown source (allowed: dcgm, gpm)');
      if (value === undefined) continue;
      if (typeof value !== 'boolean') {
        throw invalidOption(`sources.${key}`, `must be true (required), false (never) or absent (where it works), not ${describe(value)}`);
      }
      sources[key as 'dcgm' | 'gpm'] = value ? 'required' : 'disabled';
    }
  }
  let dcgmCandidates: string[] = [];
  let dcgmFromNvmlLibrary = false;
  let dcgmAbsentReason = '';
  if (scenario !== null) {
    // The simulator library plays DCGM too, when the simulated machine has it.
    if (libraries.dcgm !== undefined) throw invalidOption('libraries.dcgm', 'cannot be combined with simulate: the simulator plays DCGM');
    dcgmFromNvmlLibrary = scenario.hasDcgm;
    if (!scenario.hasDcgm) dcgmAbsentReason = `the simulated machine has no DCGM (scenario "${scenario.name}" has no "dcgm" key)`;
  } else if (libraries.dcgm !== undefined) {
    dcgmCandidates = [libraries.dcgm as string];
  } else {
    const fromEnv = envValue('GPU_TELEMETRY_DCGM_LIB');
    dcgmCandidates = fromEnv !== undefined ? [fromEnv] : [...DEFAULT_DCGM];
  }
  let dcgmHost = '';
  let dcgmHostIsUnixSocket = false;
  let dcgmConnectTimeoutMs = 5000;
  let dcgmEngine: DcgmMode = 'auto';
  if (o.dcgm !== undefined) {
    if (!isPlainObject(o.dcgm)) throw invalidOption('dcgm', `must be an object like { host: 'localhost:5555' }, not ${describe(o.dcgm)}`);
    for (const key of Object.keys(o.dcgm)) {
      if (key !== 'mode' && key !== 'host' && key !== 'connectTimeoutMs') {
        throw invalidOption(`dcgm.${key}`, 'unknown option (allowed: mode, host, connectTimeoutMs)');
      }
    }
    const mode = o.dcgm.mode;
    if (mode !== undefined) {
      if (typeof mode !== 'string' || !(DCGM_MODES as readonly string[]).includes(mode)) {
        throw invalidOption('dcgm.mode', `must be one of ${DCGM_MODES.map((m) => `'${m}'`).join(', ')}, not ${describe(mode)}`);
      }
      dcgmEngine = mode as DcgmMode;
    }
    const host = o.dcgm.host;
    if (host !== undefined) {
      if (typeof host !== 'string' || host.length === 0 || host.length > 255 || /[\s\0]/.test(host)) {
        throw invalidOption('dcgm.host', `must be "host:port" (e.g. "localhost:5555") or an absolute unix socket path, not ${describe(host)}`);
      }
      dcgmHostIsUnixSocket = host.startsWith('/');
      if (!dcgmHostIsUnixSocket && !/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(host)) {
        throw invalidOption('dcgm.host', `must be "host:port" (e.g. "localhost:5555") or an absolute unix socket path, not ${describe(host)}`);
      }
      if (dcgmEngine === 'embedded') {
        throw invalidOption('dcgm.host', `names a running nv-hostengine: it cannot be combined with dcgm.mode 'embedded'`);
      }
      dcgmHost = host;
    }
    if (o.dcgm.connectTimeoutMs !== undefined) {
      dcgmConnectTimeoutMs = checkNumber('dcgm.connectTimeoutMs', o.dcgm.connectTimeoutMs, 100, 60_000, true);
    }
  }
  if (o.processUtilization !== undefined && typeof o.processUtilization !== 'boolean') {
    throw invalidOption('processUtilization', `must be true or false, not ${describe(o.processUtilization)}`);
  }
  return {
    processUtilization: o.processUtilization === true,
    dcgmCandidates,
    dcgmFromNvmlLibrary,
    dcgmAbsentReason,
    dcgmHost,
    dcgmHostIsUnixSocket,
    dcgmEngine,
    dcgmConnectTimeoutMs,
    intervalMs,
    staleAfterMs,
    openTimeoutMs,
    lostRetryMs,
    closeTimeoutMs,
    nvmlCandidates,
    scenario,
    meminfoPath,
    sources,
    cuptiLibrary: scenario === null && typeof libraries.cupti === 'string' ? libraries.cupti : null,
  };
}
