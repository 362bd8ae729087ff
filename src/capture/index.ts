/**
 * Kernel-trace capture, public surface. `gpu.capture` on an open GpuTelemetry is the usual entry;
 * createKernelCapture() gives the same without opening NVML (a service that only wants traces).
 */
import { invalidOption } from '../errors.js';
import { resolveScenario } from '../simulator.js';
import { KernelCapture } from './capture.js';

export interface KernelCaptureOptions {
  /** Use the driver simulator's CUPTI with this scenario (name or .json path); default $GPU_TELEMETRY_SIMULATE. */
  simulate?: string;
  /** `{ cupti }`: path or soname of CUPTI (default $GPU_TELEMETRY_CUPTI_LIB, then libcupti.so and the versioned ones). */
  libraries?: { cupti?: string };
}

/** A capture controller that needs no NVML: `createKernelCapture().arm({ steps: 10 })`. */
export function createKernelCapture(options: KernelCaptureOptions = {}): KernelCapture {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidOption('', 'options must be an object like { simulate: "h100-sxm-8" } or { libraries: { cupti: "/path/libcupti.so" } }');
  }
  for (const key of Object.keys(options)) {
    if (key !== 'simulate' && key !== 'libraries') throw invalidOption(key, 'unknown option (allowed: simulate, libraries)');
  }
  let cupti: string | null = null;
  if (options.libraries !== undefined) {
    const libs = options.libraries as Record<string, unknown>;
    if (typeof libs !== 'object' || libs === null || Array.isArray(libs)) throw invalidOption('libraries', 'must be an object like { cupti: "/path/libcupti.so" }');
    for (const key of Object.keys(libs)) if (key !== 'cupti') throw invalidOption(`libraries.${key}`, 'unknown library (allowed here: cupti)');
    if (libs.cupti !== undefined) {
      if (typeof libs.cupti !== 'string' || libs.cupti.trim() === '' || libs.cupti.includes('\0')) {
        throw invalidOption('libraries.cupti', 'must be a non-empty path or soname (e.g. "libcupti.so.13")');
      }
      cupti = libs.cupti;
    }
  }
  let simulate = options.simulate;
  if (simulate !== undefined && (typeof simulate !== 'string' || simulate.trim() === '')) {
    throw invalidOption('simulate', 'must be a scenario name (e.g. "h100-sxm-8") or a path to a .json file');
  }
  if (simulate !== undefined && cupti !== null) {
    throw invalidOption('simulate', 'cannot be combined with libraries.cupti: the simulator is also the CUPTI library');
  }
  if (simulate === undefined && cupti === null) {
    const env = process.env.GPU_TELEMETRY_SIMULATE;
    if (env !== undefined && env.trim() !== '') simulate = env;
  }
  const scenario = simulate !== undefined ? resolveScenario(simulate) : null;
  return new KernelCapture({
    cuptiLibrary: cupti,
    simulator: scenario ? { libraryPath: scenario.libraryPath, scenarioText: scenario.text } : null,
  });
}

export { KernelCapture, type PrewarmResult } from './capture.js';
export { CaptureHandle, type CaptureState, type CaptureProgress } from './capture-handle.js';
export { captureStats, type CaptureStats } from './capture-registry.js';
export { CAPTURE_LIMITS } from './options.js';
export type { CaptureOptions, CaptureKinds } from './options.js';
export { KernelTrace } from './trace.js';
export type { KernelTraceMeta, CaptureStopReason } from './trace.js';
export { JS_NVTX_DOMAIN } from './records.js';
export type {
  KernelRecord,
  MemcpyRecord,
  MemsetRecord,
  ApiCallRecord,
  RangeRecord,
  StepRecord,
  MemcpyDirection,
  TimedRecord,
} from './records.js';
export type {
  TraceSummary,
  KernelNameStats,
  DeviceBusy,
  StreamBusy,
  IdleGapStats,
  StepSummary,
  MemcpyVolume,
  DistributionNs,
} from './summary.js';
export { CaptureStore } from './store.js';
export type { StoreOptions, SavedCapture, StoredCapture } from './store.js';
