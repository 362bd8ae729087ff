/**
 * The typed snapshot a user reads: the device, field, link and sample types, and the header the
 * native readSnapshot fills (sequence, age, the call in flight). Decoding a sample into device
 * objects is snapshot-decoder.ts; the reason texts are snapshot-reasons.ts.
 */
import type { ClockEventReason, FieldName, FieldSource, FieldStatus } from './fields.js';
import type { MigInstanceSample, ProcessSample, ProcessUtilizationState } from './snapshot-fleet.js';

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

// Header slots written by the native readSnapshot.
const H_SEQ = 0;
const H_TAKEN_AT = 1;
const H_AGE = 2;
const H_IN_FLIGHT_MS = 4;
const H_IN_FLIGHT_DEVICE = 5;

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
