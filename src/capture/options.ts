/**
 * Options of capture.arm(): types, defaults, caps and validation. Every bad value is an
 * INVALID_OPTION naming the option and what is allowed; the native side trusts what it gets.
 */
import { describeValue, invalidOption } from '../errors.js';
import type { CaptureNativeKinds } from './native-capture.js';

export interface CaptureKinds {
  /** Kernel executions (default true). */
  kernels?: boolean;
  /** Memory copies (default true). */
  memcpy?: boolean;
  /** Memory sets (default true). */
  memset?: boolean;
  /** CUDA runtime API calls: the launch side of the launch→kernel flows (default true). */
  runtimeApi?: boolean;
  /** CUDA driver API calls (default false: noisy; turn on for code that launches through cuLaunchKernel). */
  driverApi?: boolean;
  /** NVTX ranges and marks through CUPTI's marker activity (default true; needs NVTX_INJECTION64_PATH). */
  nvtx?: boolean;
}

export interface CaptureOptions {
  /** Steps to capture, 1 – 100,000 (default 10). The capture stops by itself after them. */
  steps?: number;
  /** Step boundaries to let pass before capturing, 0 – 1,000,000 (default 0: the next step). */
  startAfterSteps?: number;
  /**
   * Count steps by NVTX ranges of this name, as CUPTI records them (NVTX calls in native code, which
   * need NVTX_INJECTION64_PATH; JS nvtx.range() calls do not count), instead of cap.step() calls.
   * Default null: cap.step() marks the steps.
   */
  stepRange?: string | null;
  /**
   * With stepRange: only ranges of this NVTX domain count as steps (e.g. the domain PyTorch or your
   * own code creates with nvtxDomainCreate). Default null: a range of that name in any domain.
   * An empty string is the default domain (ranges pushed with nvtxRangePush).
   */
  stepDomain?: string | null;
  /** Cap on all capture memory (CUPTI buffers + records + names), 1 MiB – 4 GiB (default 64 MiB). */
  maxBytes?: number;
  /** Cap on records, 1 – 50,000,000 (default 1,000,000). */
  maxRecords?: number;
  /** Size of one CUPTI activity buffer, 64 KiB – 64 MiB, at most maxBytes / 2 (default min(4 MiB, maxBytes / 4)). */
  bufferBytes?: number;
  /** Wall-time cap, 100 ms – 1 h (default 60,000). The capture then ends with reason 'timeout'. */
  timeoutMs?: number;
  /** Which records to collect. */
  kinds?: CaptureKinds;
  /**
   * How often the capture thread asks CUPTI for the buffers whose records are all complete (a
   * default flush), 10 – 10,000 ms (default 100).
   */
  flushIntervalMs?: number;
  /**
   * At the end of a capture, how long to wait for records still in flight (kernels still running)
   * before the final forced flush, 0 – 10,000 ms (default 1,000). The drain ends as soon as CUPTI
   * has handed every buffer back; records still incomplete then are lost and counted in
   * meta.droppedIncomplete.
   */
  drainTimeoutMs?: number;
}

export interface ResolvedCaptureOptions {
  steps: number;
  startAfterSteps: number;
  stepRange: string | null;
  stepDomain: string | null;
  maxBytes: number;
  maxRecords: number;
  bufferBytes: number;
  timeoutMs: number;
  kinds: CaptureNativeKinds;
  flushIntervalMs: number;
  drainTimeoutMs: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const CAPTURE_LIMITS = Object.freeze({
  steps: { min: 1, max: 100_000, default: 10 },
  startAfterSteps: { min: 0, max: 1_000_000, default: 0 },
  maxBytes: { min: 1 * MiB, max: 4 * GiB, default: 64 * MiB },
  maxRecords: { min: 1, max: 50_000_000, default: 1_000_000 },
  bufferBytes: { min: 64 * KiB, max: 64 * MiB, default: 4 * MiB },
  timeoutMs: { min: 100, max: 3_600_000, default: 60_000 },
  flushIntervalMs: { min: 10, max: 10_000, default: 100 },
  drainTimeoutMs: { min: 0, max: 10_000, default: 1_000 },
  stepRangeLength: 256,
});

const DEFAULT_KINDS: CaptureNativeKinds = Object.freeze({
  kernels: true,
  memcpy: true,
  memset: true,
  runtimeApi: true,
  driverApi: false,
  nvtx: true,
});

const KNOWN = [
  'steps',
  'startAfterSteps',
  'stepRange',
  'stepDomain',
  'maxBytes',
  'maxRecords',
  'bufferBytes',
  'timeoutMs',
  'kinds',
  'flushIntervalMs',
  'drainTimeoutMs',
];

const describe = describeValue;

function integer(option: string, value: unknown, min: number, max: number, unit: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw invalidOption(option, `must be a whole number of ${unit} from ${min} to ${max}, not ${describe(value)}`);
  }
  if (!Number.isInteger(value)) throw invalidOption(option, `must be a whole number of ${unit}, not ${value}`);
  if (value < min || value > max) throw invalidOption(option, `must be from ${min} to ${max} ${unit}, not ${value}`);
  return value;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function resolveCaptureOptions(options: unknown): ResolvedCaptureOptions {
  if (options === undefined || options === null) options = {};
  if (!isPlainObject(options)) throw invalidOption('', `capture options must be a plain object like { steps: 50 }, not ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!KNOWN.includes(key)) throw invalidOption(key, `unknown capture option (allowed: ${KNOWN.join(', ')})`);
  }
  const o = options;
  const L = CAPTURE_LIMITS;
  const pick = (key: keyof typeof L & string, unit: string): number => {
    const lim = L[key] as { min: number; max: number; default: number };
    return o[key] === undefined ? lim.default : integer(key, o[key], lim.min, lim.max, unit);
  };
  const steps = pick('steps', 'steps');
  const startAfterSteps = pick('startAfterSteps', 'steps');
  const maxBytes = pick('maxBytes', 'bytes');
  const maxRecords = pick('maxRecords', 'records');
  const timeoutMs = pick('timeoutMs', 'milliseconds');
  const flushIntervalMs = pick('flushIntervalMs', 'milliseconds');
  const drainTimeoutMs = pick('drainTimeoutMs', 'milliseconds');
  let bufferBytes: number;
  if (o.bufferBytes === undefined) {
    bufferBytes = Math.max(L.bufferBytes.min, Math.min(L.bufferBytes.default, Math.floor(maxBytes / 4)));
  } else {
    bufferBytes = integer('bufferBytes', o.bufferBytes, L.bufferBytes.min, L.bufferBytes.max, 'bytes');
    if (bufferBytes > maxBytes / 2) {
      throw invalidOption(
        'bufferBytes',
        `must be at most half of maxBytes (${maxBytes / 2} bytes) so that CUPTI can fill one buffer while another is read, not ${bufferBytes}`,
      );
    }
  }
  if (bufferBytes % 8 !== 0) throw invalidOption('bufferBytes', `must be a multiple of 8 bytes (CUPTI's alignment), not ${bufferBytes}`);

  let stepRange: string | null = null;
  if (o.stepRange !== undefined && o.stepRange !== null) {
    if (typeof o.stepRange !== 'string' || o.stepRange.trim() === '') {
      throw invalidOption('stepRange', `must be the name of an NVTX range (e.g. "decode_step") or null, not ${describe(o.stepRange)}`);
    }
    if (o.stepRange.length > L.stepRangeLength) {
      throw invalidOption('stepRange', `must be at most ${L.stepRangeLength} characters, not ${o.stepRange.length}`);
    }
    if (o.stepRange.includes('\0')) throw invalidOption('stepRange', 'must not contain a NUL character');
    stepRange = o.stepRange;
  }
  let stepDomain: string | null = null;
  if (o.stepDomain !== undefined && o.stepDomain !== null) {
    if (typeof o.stepDomain !== 'string') {
      throw invalidOption('stepDomain', `must be the name of an NVTX domain ("" for the default domain) or null, not ${describe(o.stepDomain)}`);
    }
    if (o.stepDomain.length > L.stepRangeLength) {
      throw invalidOption('stepDomain', `must be at most ${L.stepRangeLength} characters, not ${o.stepDomain.length}`);
    }
    if (o.stepDomain.includes('\0')) throw invalidOption('stepDomain', 'must not contain a NUL character');
    if (stepRange === null) throw invalidOption('stepDomain', 'goes with stepRange (it narrows which NVTX ranges count as steps)');
    stepDomain = o.stepDomain;
  }

  const kinds: CaptureNativeKinds = { ...DEFAULT_KINDS };
  if (o.kinds !== undefined) {
    if (!isPlainObject(o.kinds)) {
      throw invalidOption('kinds', `must be an object like { kernels: true, driverApi: false }, not ${describe(o.kinds)}`);
    }
    for (const [key, value] of Object.entries(o.kinds)) {
      if (!(key in DEFAULT_KINDS)) {
        throw invalidOption(`kinds.${key}`, `unknown record kind (allowed: ${Object.keys(DEFAULT_KINDS).join(', ')})`);
      }
      if (value === undefined) continue;
      if (typeof value !== 'boolean') throw invalidOption(`kinds.${key}`, `must be true or false, not ${describe(value)}`);
      kinds[key as keyof CaptureNativeKinds] = value;
    }
    if (!kinds.kernels && !kinds.memcpy && !kinds.memset && !kinds.runtimeApi && !kinds.driverApi && !kinds.nvtx) {
      throw invalidOption('kinds', 'turns every record kind off: nothing would be captured');
    }
  }
  if (stepRange !== null && !kinds.nvtx) {
    // JS ranges still count, but NVTX ranges from native code would be invisible: say so.
    throw invalidOption('kinds.nvtx', `must stay on when stepRange is set ("${stepRange}" ranges are NVTX records)`);
  }
  return { steps, startAfterSteps, stepRange, stepDomain, maxBytes, maxRecords, bufferBytes, timeoutMs, kinds, flushIntervalMs, drainTimeoutMs };
}
