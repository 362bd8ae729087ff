/**
 * Turning the native sample block (typed arrays the addon copies into) into the typed snapshot a
 * user reads. A new object graph is built only when the sampler published a new sample or the
 * sample turned stale; otherwise snapshot() reuses it (the cost of a call is one native memcpy
 * check and one small object).
 */
import { dcgmReturnName, nvmlReturnName } from './errors.js';
import {
  decodeClockEventReasons,
  FIELD_BY_NAME,
  FIELD_NAMES,
  FIELD_SOURCES,
  FIELD_STATUSES,
  type ClockEventReason,
  type FieldName,
  type FieldSource,
  type FieldStatus,
} from './fields.js';
import type { NativeConstants, NativeLayout } from './native.js';
import { FleetDecoder, type MigInstanceSample, type MigNames, type ProcessSample, type ProcessUtilizationState } from './snapshot-fleet.js';

export type {
  MigComputeInstance,
  MigFieldName,
  MigFieldSources,
  MigFieldStatuses,
  MigFieldValues,
  MigInstanceSample,
  ProcessSample,
  ProcessUtilizationState,
} from './snapshot-fleet.js';
export { MIG_FIELD_NAMES } from './snapshot-fleet.js';

/** Static facts about a device, read once at open. */
export interface DeviceInfo {
  readonly index: number;
  readonly uuid: string;
  /** Marketing name as the driver reports it; simulated devices say "(simulated)". */
  readonly name: string;
  readonly pciBusId: string;
  readonly pciDeviceId: number;
  /**
   * Framebuffer size; on unified-memory GPUs the shared system memory (MemTotal). null when neither
   * is known.
   */
  readonly memoryTotalBytes: number | null;
  /** CUDA compute capability, e.g. { major: 9, minor: 0 } for Hopper. */
  readonly computeCapability: { readonly major: number; readonly minor: number } | null;
  /** True for GPUs that share system memory (GB10 / DGX Spark and other unified-memory parts). */
  readonly unifiedMemory: boolean;
  /** Why it was recognised as unified memory (null when it is not). */
  readonly unifiedMemoryReason: string | null;
  readonly nvlinkCount: number;
  readonly simulated: boolean;
}

export type FieldValues = { readonly [K in FieldName]: number | null };
export type FieldStatuses = { readonly [K in FieldName]: FieldStatus };
export type FieldSources = { readonly [K in FieldName]: FieldSource };

export interface NvlinkSample {
  readonly link: number;
  /** null when the link state could not be read. */
  readonly up: boolean | null;
  readonly txBytesPerSecond: number | null;
  readonly rxBytesPerSecond: number | null;
}

export type DeviceState = 'ok' | 'gpu_lost' | 'error' | 'stale';

export interface DeviceSample {
  readonly index: number;
  readonly uuid: string;
  readonly name: string;
  /** Health of the device as a whole. */
  readonly state: DeviceState;
  /** Every field: a number in its base unit, or null when there is no real reading. */
  readonly fields: FieldValues;
  readonly status: FieldStatuses;
  readonly source: FieldSources;
  /** Why a field is not `ok`, in words (only fields that are not ok appear). */
  readonly reasons: { readonly [K in FieldName]?: string };
  /** clockEventReasons decoded to names; null when not readable. */
  readonly clockEventReasons: readonly ClockEventReason[] | null;
  readonly nvlinks: readonly NvlinkSample[];
  /**
   * Compute processes on the GPU: the 64 using the most memory (more: processesTruncated). In MIG
   * mode without the privileges the GPU-wide list needs, the MIG devices' processes.
   */
  readonly processes: readonly ProcessSample[];
  /** True when the driver listed more processes than are kept (64). */
  readonly processesTruncated: boolean;
  /** Whether `processes[i].*UtilizationRatio` are read, and why not. */
  readonly processUtilization: ProcessUtilizationState;
  /**
   * The GPU instances of a GPU in MIG mode ([] otherwise), each with its own memory, activity and
   * processes.
   */
  readonly migInstances: readonly MigInstanceSample[];
  /** Why `migInstances` is empty although MIG mode is on (a failed listing); else null. */
  readonly migInstancesReason: string | null;
  /** More MIG devices than are kept (8). */
  readonly migInstancesTruncated: boolean;
  /**
   * Whether the GPU is in MIG mode (nvmlDeviceGetMigMode, read every sample); null when the GPU or
   * driver has no MIG. In MIG mode the whole-device utilisation is not supported and its memory and
   * process figures need privileges (`reasons` say so); the MIG instances have their own.
   */
  readonly migMode: boolean | null;
}

export interface GpuSnapshot {
  /** Increases by one per published sample; 0 before the first. */
  readonly seq: number;
  /** Wall-clock time the sample was taken (ms since the epoch). */
  readonly takenAt: number;
  /** Age of the sample when snapshot() was called (ms, monotonic). */
  readonly ageMs: number;
  /** True when the sampler has not published for longer than staleAfterMs. */
  readonly stale: boolean;
  /** Why the sample is stale (which call hangs, for how long). */
  readonly staleReason: string | null;
  readonly devices: readonly DeviceSample[];
}

const DEVICE_STATES: Record<number, DeviceState> = { 0: 'ok', 1: 'gpu_lost', 2: 'error' };

// Header slots written by the native readSnapshot.
const H_SEQ = 0;
const H_TAKEN_AT = 1;
const H_AGE = 2;
const H_IN_FLIGHT_MS = 4;
const H_IN_FLIGHT_DEVICE = 5;

// Device meta slots (native DeviceMeta).
const M_STATE = 0;
const M_PROCESS_COUNT = 1;
const M_PROCESS_TRUNCATED = 2;
const M_LINK_COUNT = 3;
const M_MIG_MODE = 5;
const M_NVLINK_FAILED_LINK = 6;

const MIG_REASON =
  'MIG mode is enabled on this GPU: whole-device utilisation is not supported, and its memory and process figures need privileges (per-instance figures come from its MIG devices)';
const NVLINK_TOTALS = new Set<FieldName>(['nvlinkTxBytesPerSecond', 'nvlinkRxBytesPerSecond']);
// The whole-GPU figures NVIDIA's driver does not give in MIG mode (utilisation) or gives only with
// privileges (memory, processes): only their reasons name MIG mode (a fan-less board's fan is not MIG's doing).
const MIG_AFFECTED = new Set<FieldName>([
  'gpuUtilizationRatio',
  'memoryUtilizationRatio',
  'memoryTotalBytes',
  'memoryUsedBytes',
  'memoryFreeBytes',
  'memoryReservedBytes',
  'gpuProcessMemoryBytes',
  'processCount',
]);

const PROFILING_REASON = 'needs DCGM (libdcgm.so.4/.3) or a Hopper-or-newer GPU with NVML GPM';
const NOT_PROBED_REASON: Partial<Record<FieldName, string>> = {
  grEngineActiveRatio: PROFILING_REASON,
  smActiveRatio: PROFILING_REASON,
  smOccupancyRatio: PROFILING_REASON,
  tensorActiveRatio: PROFILING_REASON,
  dramActiveRatio: PROFILING_REASON,
  fp64ActiveRatio: PROFILING_REASON,
  fp32ActiveRatio: PROFILING_REASON,
  fp16ActiveRatio: PROFILING_REASON,
  xidErrors: 'XID events are not being watched',
  lastXid: 'XID events are not being watched',
};

// DCGM's in-band sentinels (native kCodeDcgmBlank + offset) and our DCGM-specific codes.
const DCGM_SENTINEL_REASONS: Readonly<Record<number, string>> = {
  1000: 'DCGM has no value yet (BLANK: the first value arrives after one update cycle)',
  1001: 'DCGM answered NOT_FOUND for this field',
  1002: 'DCGM answered NOT_SUPPORTED for this field on this GPU',
  1003: 'DCGM answered NOT_PERMISSIONED: the host engine may not read this field',
  1004: 'DCGM answered with an unknown blank value',
  1010: 'DCGM answered with a value of the wrong type',
  1011: 'DCGM has not refreshed this value for several update cycles',
};

function dcgmReason(status: FieldStatus, code: number): string {
  const sentinel = DCGM_SENTINEL_REASONS[code];
  if (sentinel) return sentinel;
  if (code === -21) return 'the connection to the DCGM host engine is gone (DCGM_ST_CONNECTION_NOT_VALID); reconnecting';
  if (code === -34 || code === -37) {
    return `the GPU's profiling counters are held by another DCGM host engine or a profiler (${dcgmReturnName(code)})`;
  }
  const name = dcgmReturnName(code);
  switch (status) {
    case 'not_supported': return `not supported by this GPU (DCGM: ${name})`;
    case 'no_permission': return `DCGM: ${name}; the host engine needs more privileges to read it`;
    case 'pending': return `no reading yet (DCGM: ${name})`;
    case 'gpu_lost': return `the GPU is lost (DCGM: ${name})`;
    case 'stale': return `DCGM reports stale data (${name})`;
    default: return `DCGM failed: ${name} (${code})`;
  }
}

export function reasonFor(field: FieldName, status: FieldStatus, source: FieldSource, code: number): string {
  if (source === 'dcgm' && status !== 'ok') return dcgmReason(status, code);
  const call = FIELD_BY_NAME.get(field)?.nvmlCall ?? 'the vendor call';
  const via = source === 'nvml' || source === 'none' ? call : `${source}`;
  switch (status) {
    case 'not_supported':
      if (code === -1) return `the loaded NVML does not export ${call} (an older driver)`;
      if (code === -2) return NOT_PROBED_REASON[field] ?? 'no source provides this field here';
      if (code === -5) {
        return field === 'memoryReservedBytes'
          ? 'unified memory: there is no framebuffer reservation to report'
          : 'unified-memory GPU on NVLink-C2C: it has no meaningful PCIe link figures and no NVLink';
      }
      return `not supported by this GPU or driver (${via}: ${nvmlReturnName(code)})`;
    case 'no_permission':
      return `${via}: ${nvmlReturnName(code)}; this process needs more privileges to read it`;
    case 'gpu_lost':
      return 'the GPU is lost (NVML_ERROR_GPU_IS_LOST): fallen off the bus or needs a reset';
    case 'error':
      if (code === -6) return 'the system memory file (/proc/meminfo or meminfoPath) could not be read';
      if (code === -7) return `${via} answered with a value that is not a finite number`;
      if (code <= -100 && code >= -355) {
        return `${via} answered with value type ${-100 - code}, which this build does not know (a newer driver): not read`;
      }
      return `${via} failed: ${nvmlReturnName(code)} (${code})`;
    case 'pending':
      if (code === 1100) return 'no reading yet: GPM computes it between two samples at least 100 ms apart';
      return 'no reading yet: a rate needs two samples';
    case 'stale':
      return 'the sampler has not published a fresh sample (see staleReason)';
    default:
      return '';
  }
}

/** Builds `{ [FIELD_NAMES[i]]: a[i] }` as one object literal (field names are plain identifiers). */
if (!FIELD_NAMES.every((n) => /^[A-Za-z_$][\w$]*$/.test(n))) throw new Error('field names must be identifiers');
const BUILD_RECORD = new Function('a', `return {${FIELD_NAMES.map((n, i) => `${n}: a[${i}]`).join(', ')}};`) as (
  a: readonly unknown[],
) => Record<string, unknown>;

export class SnapshotDecoder {
  readonly buffer: ArrayBuffer;
  private readonly values: Float64Array;
  private readonly links: Float64Array;
  private readonly processes: Float64Array;
  private readonly deviceMeta: Float64Array;
  private readonly codes: Int32Array;
  private readonly statuses: Uint8Array;
  private readonly sources: Uint8Array;
  private readonly fieldCount: number;
  private readonly scratchValues: (number | null)[] = [];
  private readonly scratchStatuses: FieldStatus[] = [];
  private readonly scratchSources: FieldSource[] = [];
  // Reasons repeat sample after sample (same field, status, source and code): built once.
  private readonly reasonCache = new Map<string, string>();
  private readonly fleet: FleetDecoder;

  private reason(d: number, i: number, st: FieldStatus, src: FieldSource, code: number, mig: boolean, failedLink: number): string {
    if (code === -2) {
      const note = this.fieldNotes[d]?.[i];
      if (note) return note;
    }
    const key = `${i}|${st}|${src}|${code}|${mig ? 1 : 0}|${failedLink}`;
    let text = this.reasonCache.get(key);
    if (text === undefined) {
      text = reasonFor(FIELD_NAMES[i], st, src, code);
      if (mig && (st === 'not_supported' || st === 'no_permission') && src === 'nvml' && MIG_AFFECTED.has(FIELD_NAMES[i])) {
        text = `${MIG_REASON} (${text})`;
      }
      if (failedLink >= 0 && NVLINK_TOTALS.has(FIELD_NAMES[i]) && st !== 'ok' && st !== 'pending' && st !== 'stale') {
        text = `NVLink link ${failedLink}: ${text}`;
      }
      if (this.reasonCache.size > 10_000) this.reasonCache.clear();
      this.reasonCache.set(key, text);
    }
    return text;
  }

  constructor(
    layout: NativeLayout,
    private readonly constants: NativeConstants,
    private readonly deviceInfo: readonly DeviceInfo[],
    private readonly fieldNotes: (string | null)[][] = [],
    migNames: (device: number) => MigNames = () => ({ generation: 0, uuids: [], profiles: [] }),
    processUtilSymbol = '',
  ) {
    this.fieldCount = constants.fieldCount;
    const n = layout.devices;
    this.buffer = new ArrayBuffer(layout.byteLength);
    this.values = new Float64Array(this.buffer, layout.valuesOffset, n * this.fieldCount);
    this.links = new Float64Array(this.buffer, layout.linksOffset, n * constants.maxLinks * constants.linkStride);
    this.processes = new Float64Array(this.buffer, layout.processesOffset, n * constants.maxProcesses * constants.processStride);
    this.deviceMeta = new Float64Array(this.buffer, layout.deviceMetaOffset, n * constants.deviceMetaStride);
    this.codes = new Int32Array(this.buffer, layout.codesOffset, n * this.fieldCount);
    this.statuses = new Uint8Array(this.buffer, layout.statusOffset, n * this.fieldCount);
    this.sources = new Uint8Array(this.buffer, layout.sourceOffset, n * this.fieldCount);
    this.fleet = new FleetDecoder(this.buffer, layout, constants, migNames, processUtilSymbol);
  }

  /** Builds the device samples from the buffer; `stale` overlays the stale status. */
  decodeDevices(stale: boolean): DeviceSample[] {
    const out: DeviceSample[] = [];
    for (let d = 0; d < this.deviceInfo.length; d++) out.push(this.decodeDevice(d, stale));
    return out;
  }

  private decodeDevice(d: number, stale: boolean): DeviceSample {
    const info = this.deviceInfo[d];
    const reasons: Record<string, string> = {};
    const base = d * this.fieldCount;
    const values = this.scratchValues;
    const statuses = this.scratchStatuses;
    const sources = this.scratchSources;
    const metaBase = d * this.constants.deviceMetaStride;
    const migRaw = this.deviceMeta[metaBase + M_MIG_MODE];
    const failedLink = this.deviceMeta[metaBase + M_NVLINK_FAILED_LINK];
    for (let i = 0; i < this.fieldCount; i++) {
      let st: FieldStatus = FIELD_STATUSES[this.statuses[base + i]] ?? 'error';
      const src: FieldSource = FIELD_SOURCES[this.sources[base + i]] ?? 'none';
      const v = this.values[base + i];
      const real = st === 'ok' && !Number.isNaN(v);
      if (stale && (st === 'ok' || st === 'pending')) st = 'stale';
      values[i] = real ? v : null;
      statuses[i] = st;
      sources[i] = src;
      if (st !== 'ok') reasons[FIELD_NAMES[i]] = this.reason(d, i, st, src, this.codes[base + i], migRaw === 1, failedLink);
    }
    // One object literal per record (generated once for the field list): a fixed shape, built in
    // one allocation, instead of 51 keyed insertions.
    const fields = BUILD_RECORD(values) as Record<string, number | null>;
    const status = BUILD_RECORD(statuses) as Record<string, FieldStatus>;
    const source = BUILD_RECORD(sources) as Record<string, FieldSource>;
    const rawState = DEVICE_STATES[this.deviceMeta[metaBase + M_STATE]] ?? 'error';
    const state: DeviceState = stale && rawState === 'ok' ? 'stale' : rawState;

    const nvlinks: NvlinkSample[] = [];
    const linkCount = this.deviceMeta[metaBase + M_LINK_COUNT];
    if (linkCount > 0) {
      const linkBase = d * this.constants.maxLinks * this.constants.linkStride;
      for (let l = 0; l < this.constants.maxLinks; l++) {
        const o = linkBase + l * this.constants.linkStride;
        const up = this.links[o];
        const tx = this.links[o + 1];
        const rx = this.links[o + 2];
        if (Number.isNaN(up) && Number.isNaN(tx) && Number.isNaN(rx)) continue;
        nvlinks.push({
          link: l,
          up: Number.isNaN(up) ? null : up === 1,
          txBytesPerSecond: Number.isNaN(tx) ? null : tx,
          rxBytesPerSecond: Number.isNaN(rx) ? null : rx,
        });
      }
    }

    const processes = this.fleet.processes(this.processes, this.deviceMeta, d, this.deviceMeta[metaBase + M_PROCESS_COUNT]);
    const mig = this.fleet.migInstances(this.deviceMeta, d, processes, stale);

    const mask = fields.clockEventReasons;
    return Object.freeze({
      index: info.index,
      uuid: info.uuid,
      name: info.name,
      state,
      fields: Object.freeze(fields) as FieldValues,
      status: Object.freeze(status) as FieldStatuses,
      source: Object.freeze(source) as FieldSources,
      reasons: Object.freeze(reasons),
      clockEventReasons: mask === null || mask === undefined ? null : Object.freeze(decodeClockEventReasons(mask)),
      nvlinks: Object.freeze(nvlinks),
      processes: Object.freeze(processes),
      processesTruncated: this.deviceMeta[metaBase + M_PROCESS_TRUNCATED] === 1,
      processUtilization: this.fleet.processUtilization(this.deviceMeta, d, stale),
      migMode: migRaw === 1 ? true : migRaw === 0 ? false : null,
      migInstances: Object.freeze(mig.instances),
      migInstancesReason: mig.reason,
      migInstancesTruncated: mig.truncated,
    });
  }
}

export function headerSeq(header: Float64Array): number {
  return header[H_SEQ];
}
export function headerTakenAt(header: Float64Array): number {
  return header[H_TAKEN_AT];
}
export function headerAge(header: Float64Array): number {
  return header[H_AGE];
}
export function staleReasonFor(header: Float64Array, inFlightCall: string | undefined, intervalMs: number): string {
  const inFlightMs = header[H_IN_FLIGHT_MS];
  if (inFlightCall && inFlightMs > 0) {
    const device = header[H_IN_FLIGHT_DEVICE];
    const where = device >= 0 ? ` on GPU ${device}` : '';
    return `${inFlightCall}${where} has not returned for ${(inFlightMs / 1000).toFixed(1)} s`;
  }
  return `no new sample for ${Math.round(header[H_AGE])} ms (sampling interval ${intervalMs} ms)`;
}
