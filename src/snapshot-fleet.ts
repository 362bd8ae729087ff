/**
 * The fleet parts of a snapshot, decoded from their own blocks of the native sample: MIG instances
 * (entities under their GPU) and per-process utilisation. Kept apart from snapshot-decoder.ts's device
 * decoding; snapshot-decoder.ts calls in.
 */
import { nvmlReturnName } from './errors.js';
import { FIELD_SOURCES, FIELD_STATUSES, type FieldName, type FieldSource, type FieldStatus } from './fields.js';
import type { NativeConstants, NativeLayout } from './native.js';

/** The fields a MIG instance reports (a subset of the device fields, same names and units). */
export const MIG_FIELD_NAMES = [
  'memoryTotalBytes',
  'memoryUsedBytes',
  'memoryFreeBytes',
  'processCount',
  'gpuProcessMemoryBytes',
  'grEngineActiveRatio',
  'smActiveRatio',
  'smOccupancyRatio',
  'tensorActiveRatio',
  'dramActiveRatio',
  'fp64ActiveRatio',
  'fp32ActiveRatio',
  'fp16ActiveRatio',
] as const satisfies readonly FieldName[];
export type MigFieldName = (typeof MIG_FIELD_NAMES)[number];

export interface ProcessSample {
  readonly pid: number;
  /** null when the driver cannot tell (NVML_VALUE_NOT_AVAILABLE). */
  readonly usedMemoryBytes: number | null;
  /** The MIG GPU instance / compute instance it runs in; null outside MIG. */
  readonly gpuInstanceId: number | null;
  readonly computeInstanceId: number | null;
  /**
   * Its share of the GPU's SM, memory-copy, encoder and decoder time (0-1) over the driver's last
   * sample period; 0 when the driver lists it as idle. null unless per-process utilisation is on
   * and readable: see `DeviceSample.processUtilization`.
   */
  readonly smUtilizationRatio: number | null;
  readonly memoryUtilizationRatio: number | null;
  readonly encoderUtilizationRatio: number | null;
  readonly decoderUtilizationRatio: number | null;
}

/** Whether the per-process utilisation of a GPU is read: `off` unless opened with processUtilization. */
export interface ProcessUtilizationState {
  readonly status: FieldStatus | 'off';
  readonly reason: string | null;
}

export type MigFieldValues = { readonly [K in MigFieldName]: number | null };
export type MigFieldStatuses = { readonly [K in MigFieldName]: FieldStatus };
export type MigFieldSources = { readonly [K in MigFieldName]: FieldSource };

/** A MIG compute instance: a MIG device, what pods are assigned by UUID. */
export interface MigComputeInstance {
  readonly computeInstanceId: number;
  /** "MIG-…"; null when the driver did not say. */
  readonly uuid: string | null;
  /** Its nvmlDeviceGetMigDeviceHandleByIndex index. */
  readonly migIndex: number;
}

/** A MIG GPU instance of a GPU in MIG mode, with its own memory, activity and processes. */
export interface MigInstanceSample {
  /** NVML's GPU instance id (dcgm-exporter's GPU_I_ID). */
  readonly gpuInstanceId: number;
  /**
   * The profile, as DCGM names it (dcgm-exporter's GPU_I_PROFILE): slices and memory rounded up to
   * GiB, e.g. "1g.10gb"; null when the driver did not say.
   */
  readonly profile: string | null;
  readonly sliceCount: number | null;
  readonly memorySizeBytes: number | null;
  readonly computeInstances: readonly MigComputeInstance[];
  /** Memory (shared by its compute instances), its processes (all of them) and its activity (NVML GPM). */
  readonly fields: MigFieldValues;
  readonly status: MigFieldStatuses;
  readonly source: MigFieldSources;
  readonly reasons: { readonly [K in MigFieldName]?: string };
  /** The GPU's processes that run in this instance. */
  readonly processes: readonly ProcessSample[];
}

// Device meta slots (native DeviceMeta) of the fleet parts.
const M_PROCESS_UTIL_CODE = 7;
const M_PROCESS_UTIL_MS = 8;
const M_MIG_COUNT = 9;
const M_MIG_CODE = 10;
const M_MIG_GENERATION = 11;
const M_MIG_TRUNCATED = 12;
// Process slots (native ProcessSlot).
const P_PID = 0;
const P_USED = 1;
const P_GI = 2;
const P_CI = 3;
const P_SM = 4;
const P_MEM = 5;
const P_ENC = 6;
const P_DEC = 7;
// MIG meta slots (native MigMeta).
const MM_PRESENT = 0;
const MM_GI = 1;
const MM_CI = 2;
const MM_SLICES = 3;
const MM_MEMORY_MIB = 4;
const MM_INDEX = 5;

const CODE_SYMBOL_MISSING = -1;
const CODE_NOT_PROBED = -2;
const CODE_COUNTER_RESET = -3;
const CODE_HUNG = -4;
const CODE_NOT_FINITE = -7;
const CODE_NO_READING_YET = -8;
const NVML_NOT_SUPPORTED = 3;
const NVML_NO_PERMISSION = 4;
const NVML_GPU_IS_LOST = 15;

function statusOfNvml(code: number): FieldStatus {
  if (code === 0) return 'ok';
  if (code === NVML_NOT_SUPPORTED || code === 13 || code === CODE_SYMBOL_MISSING) return 'not_supported';
  if (code === NVML_NO_PERMISSION) return 'no_permission';
  if (code === NVML_GPU_IS_LOST) return 'gpu_lost';
  return 'error';
}

export interface MigNames {
  generation: number;
  uuids: string[];
  profiles: string[];
}

/** Views on the MIG blocks of one sample block (snapshot-decoder.ts keeps a few blocks: one set per block). */
export class MigViews {
  readonly migValues: Float64Array;
  readonly migMeta: Float64Array;
  readonly migCodes: Int32Array;
  readonly migStatus: Uint8Array;
  readonly migSource: Uint8Array;

  constructor(buffer: ArrayBuffer, layout: NativeLayout, constants: NativeConstants) {
    const fieldCount = constants.migFields.length;
    const slots = layout.devices * constants.maxMigDevices;
    this.migValues = new Float64Array(buffer, layout.migValuesOffset, slots * fieldCount);
    this.migMeta = new Float64Array(buffer, layout.migMetaOffset, slots * constants.migMetaStride);
    this.migCodes = new Int32Array(buffer, layout.migCodesOffset, slots * fieldCount);
    this.migStatus = new Uint8Array(buffer, layout.migStatusOffset, slots * fieldCount);
    this.migSource = new Uint8Array(buffer, layout.migSourceOffset, slots * fieldCount);
  }
}

/** Reads the fleet blocks of a native sample (in the sample block snapshot-decoder.ts hands it). */
export class FleetDecoder {
  private readonly migFieldCount: number;
  private readonly names = new Map<number, MigNames>();

  constructor(
    private readonly constants: NativeConstants,
    private readonly namesOf: (device: number) => MigNames,
    /** The entry point that answers per-process utilisation (for reasons). */
    private readonly utilSymbol: string,
  ) {
    this.migFieldCount = constants.migFields.length;
    if (this.migFieldCount !== MIG_FIELD_NAMES.length || !MIG_FIELD_NAMES.every((f, i) => constants.migFields[i] === f)) {
      throw new Error(`the addon's MIG fields (${constants.migFields.join(', ')}) are not this package's`);
    }
  }

  /** The processes of one device, with instance ids and utilisation. */
  processes(processes: Float64Array, deviceMeta: Float64Array, d: number, count: number): ProcessSample[] {
    const out: ProcessSample[] = [];
    const base = d * this.constants.maxProcesses * this.constants.processStride;
    const num = (v: number) => (Number.isNaN(v) ? null : v);
    const id = (v: number) => (Number.isNaN(v) || v < 0 ? null : v);
    for (let p = 0; p < count; p++) {
      const o = base + p * this.constants.processStride;
      out.push(
        Object.freeze({
          pid: processes[o + P_PID],
          usedMemoryBytes: num(processes[o + P_USED]),
          gpuInstanceId: id(processes[o + P_GI]),
          computeInstanceId: id(processes[o + P_CI]),
          smUtilizationRatio: num(processes[o + P_SM]),
          memoryUtilizationRatio: num(processes[o + P_MEM]),
          encoderUtilizationRatio: num(processes[o + P_ENC]),
          decoderUtilizationRatio: num(processes[o + P_DEC]),
        }),
      );
    }
    return out;
  }

  processUtilization(deviceMeta: Float64Array, d: number, stale: boolean): ProcessUtilizationState {
    const base = d * this.constants.deviceMetaStride;
    const code = deviceMeta[base + M_PROCESS_UTIL_CODE];
    const ms = deviceMeta[base + M_PROCESS_UTIL_MS];
    const call = this.utilSymbol || 'the per-process utilisation call';
    if (code === CODE_NOT_PROBED) return OFF;
    if (code === CODE_NO_READING_YET) return Object.freeze({ status: stale ? 'stale' : 'pending', reason: 'no reading yet' });
    if (code === CODE_HUNG) {
      return Object.freeze({ status: 'stale', reason: `${call} has not returned for ${(ms / 1000).toFixed(1)} s (per-process utilisation only; the GPU's other figures are not held up)` });
    }
    if (code === 0) return stale ? Object.freeze({ status: 'stale', reason: 'the sampler has not published a fresh sample (see staleReason)' }) : OK_STATE;
    const status = statusOfNvml(code);
    let reason: string;
    if (code === CODE_SYMBOL_MISSING) reason = 'the loaded NVML has neither nvmlDeviceGetProcessesUtilizationInfo nor nvmlDeviceGetProcessUtilization';
    else if (status === 'not_supported') reason = `not supported by this GPU or driver (${call}: ${nvmlReturnName(code)}); NVIDIA does not report per-process utilisation in MIG mode`;
    else if (status === 'no_permission') reason = `${call}: ${nvmlReturnName(code)}; this process needs more privileges to read it`;
    else reason = `${call} failed: ${nvmlReturnName(code)} (${code})`;
    return Object.freeze({ status, reason });
  }

  /** The MIG instances of device d (grouped by GPU instance), from the device's processes too. */
  migInstances(views: MigViews, deviceMeta: Float64Array, d: number, processes: readonly ProcessSample[], stale: boolean): {
    instances: MigInstanceSample[];
    reason: string | null;
    truncated: boolean;
  } {
    const base = d * this.constants.deviceMetaStride;
    const count = deviceMeta[base + M_MIG_COUNT];
    const code = deviceMeta[base + M_MIG_CODE];
    const truncated = deviceMeta[base + M_MIG_TRUNCATED] === 1;
    if (code !== 0) {
      const reason =
        code === CODE_SYMBOL_MISSING
          ? 'MIG mode is on but the loaded NVML cannot list MIG devices (nvmlDeviceGetMigDeviceHandleByIndex missing)'
          : `MIG mode is on but its instances could not be listed (${nvmlReturnName(code)}); tried again when the MIG mode changes, or in 60 s`;
      return { instances: [], reason, truncated };
    }
    if (!(count > 0)) return { instances: [], reason: null, truncated };
    const generation = deviceMeta[base + M_MIG_GENERATION];
    let names = this.names.get(d);
    if (!names || names.generation !== generation) {
      names = this.namesOf(d);
      this.names.set(d, names);
    }
    const byGi = new Map<number, { slots: number[] }>();
    for (let s = 0; s < count; s++) {
      const mo = (d * this.constants.maxMigDevices + s) * this.constants.migMetaStride;
      if (views.migMeta[mo + MM_PRESENT] !== 1) continue;
      const gi = views.migMeta[mo + MM_GI];
      let g = byGi.get(gi);
      if (!g) {
        g = { slots: [] };
        byGi.set(gi, g);
      }
      g.slots.push(s);
    }
    const instances: MigInstanceSample[] = [];
    for (const [gi, { slots }] of byGi) {
      const first = slots[0];
      const mo = (d * this.constants.maxMigDevices + first) * this.constants.migMetaStride;
      const slices = views.migMeta[mo + MM_SLICES];
      const memMiB = views.migMeta[mo + MM_MEMORY_MIB];
      const fields: Record<string, number | null> = {};
      const status: Record<string, FieldStatus> = {};
      const source: Record<string, FieldSource> = {};
      const reasons: Record<string, string> = {};
      for (let f = 0; f < this.migFieldCount; f++) {
        const name = MIG_FIELD_NAMES[f];
        // Memory and activity are the GPU instance's (the same on each compute instance); the
        // process figures add up over its compute instances.
        const summed = name === 'processCount' || name === 'gpuProcessMemoryBytes';
        let value: number | null = null;
        let st: FieldStatus = 'ok';
        let src: FieldSource = 'none';
        let code = 0;
        for (const s of summed ? slots : [first]) {
          const i = (d * this.constants.maxMigDevices + s) * this.migFieldCount + f;
          const sst: FieldStatus = FIELD_STATUSES[views.migStatus[i]] ?? 'error';
          src = FIELD_SOURCES[views.migSource[i]] ?? 'none';
          if (sst !== 'ok') {
            st = sst;
            code = views.migCodes[i];
            value = null;
            break;
          }
          value = (value ?? 0) + views.migValues[i];
        }
        if (stale && (st === 'ok' || st === 'pending')) st = 'stale';
        fields[name] = st === 'ok' ? value : null;
        status[name] = st;
        source[name] = src;
        if (st !== 'ok') reasons[name] = migReason(name, st, src, code);
      }
      const computeInstances: MigComputeInstance[] = slots.map((s) => {
        const so = (d * this.constants.maxMigDevices + s) * this.constants.migMetaStride;
        return Object.freeze({ computeInstanceId: views.migMeta[so + MM_CI], uuid: names!.uuids[s] || null, migIndex: views.migMeta[so + MM_INDEX] });
      });
      instances.push(
        Object.freeze({
          gpuInstanceId: gi,
          profile: names.profiles[first] || null,
          sliceCount: slices >= 0 ? slices : null,
          memorySizeBytes: memMiB >= 0 ? memMiB * 1048576 : null,
          computeInstances: Object.freeze(computeInstances),
          fields: Object.freeze(fields) as MigFieldValues,
          status: Object.freeze(status) as MigFieldStatuses,
          source: Object.freeze(source) as MigFieldSources,
          reasons: Object.freeze(reasons),
          processes: Object.freeze(processes.filter((p) => p.gpuInstanceId === gi)),
        }),
      );
    }
    instances.sort((a, b) => a.gpuInstanceId - b.gpuInstanceId);
    return { instances, reason: null, truncated };
  }
}

const OFF: ProcessUtilizationState = Object.freeze({ status: 'off', reason: 'not asked for (open with processUtilization: true; serve --processes)' });
const OK_STATE: ProcessUtilizationState = Object.freeze({ status: 'ok', reason: null });

function migReason(field: MigFieldName, status: FieldStatus, source: FieldSource, code: number): string {
  const activity = field.endsWith('Ratio');
  const via = activity ? 'nvmlGpmMigSampleGet' : field.startsWith('memory') ? 'nvmlDeviceGetMemoryInfo_v2 (MIG device)' : 'nvmlDeviceGetComputeRunningProcesses_v3 (MIG device)';
  switch (status) {
    case 'pending':
      return activity && code === CODE_COUNTER_RESET ? 'no reading yet: GPM needs two samples of the instance at least 100 ms apart' : 'no reading yet';
    case 'stale':
      return 'the sampler has not published a fresh sample (see staleReason)';
    case 'not_supported':
      if (activity && code === CODE_SYMBOL_MISSING) return 'needs NVML GPM per MIG instance (nvmlGpmMigSampleGet: Hopper or newer, a driver from R525 on); the loaded NVML does not have it';
      return `not supported here (${via}: ${nvmlReturnName(code)})${activity ? '; per-instance activity needs a Hopper-or-newer GPU' : ''}`;
    case 'no_permission':
      return `${via}: ${nvmlReturnName(code)}; this process needs more privileges to read it`;
    case 'gpu_lost':
      return 'the GPU is lost (NVML_ERROR_GPU_IS_LOST)';
    default:
      if (code === CODE_NOT_FINITE) return `${via} answered with a value that is not a finite number`;
      return `${via} failed: ${nvmlReturnName(code)} (${code})${source === 'none' ? ' (no source)' : ''}`;
  }
}
