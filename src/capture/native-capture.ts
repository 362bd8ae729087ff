/**
 * The native capture surface as the TypeScript half uses it (the contract in
 * /work/briefs/capture-contract.md). Declared here structurally so that the capture layer builds and
 * is tested against a fake before the native half exists; the addon's `NativeCapture` class (typed in
 * src/native.ts) satisfies it.
 */
import { loadNative } from '../native.js';

export interface CaptureNativeKinds {
  kernels: boolean;
  memcpy: boolean;
  memset: boolean;
  runtimeApi: boolean;
  driverApi: boolean;
  nvtx: boolean;
}

export interface CaptureNativeOptions {
  cuptiCandidates: string[];
  simulatorScenario?: string;
  maxBytes: number;
  bufferBytes: number;
  maxRecords: number;
  steps: number;
  startAfterSteps: number;
  stepRange: string | null;
  kinds: CaptureNativeKinds;
  flushIntervalMs: number;
}

export interface CaptureNativeProgress {
  state: 'waiting' | 'capturing' | 'stopping' | 'finished';
  steps: number;
  records: number;
  bytes: number;
  droppedByCupti: number;
  droppedByUs: number;
}

export interface CaptureNativeStartResult {
  ok: boolean;
  code?: string;
  message?: string;
  vendorCode?: number;
  vendorMessage?: string;
  libraryPath?: string;
  cuptiVersion?: number;
}

/** What `result()` returns: records as fixed-stride Float64Arrays (see STRIDE), ns relative to baseNs. */
export interface CaptureNativeResult {
  baseNs: string;
  cuptiVersion: number;
  layout: string;
  libraryPath: string;
  simulated: boolean;
  reason: string;
  truncated: boolean;
  kernels: Float64Array;
  memcpys: Float64Array;
  memsets: Float64Array;
  apiCalls: Float64Array;
  ranges: Float64Array;
  steps: Float64Array;
  strings: string[];
  droppedByCupti: number;
  droppedByUs: number;
  peakBytes: number;
  buffersCompleted: number;
}

export interface CaptureNative {
  start(): CaptureNativeStartResult;
  step(): number;
  timestamp(): number;
  progress(): CaptureNativeProgress;
  stop(reason: string): void;
  result(): CaptureNativeResult;
  close(): void;
}

export type CaptureNativeFactory = (
  options: CaptureNativeOptions,
  onEvent: (event: 'stopped', reason: string) => void,
) => CaptureNative;

/** Column counts of the record arrays. */
export const STRIDE = { kernels: 16, memcpys: 10, memsets: 8, apiCalls: 8, ranges: 8, steps: 2 } as const;

/** The addon's NativeCapture, or a GpuTelemetryError (ADDON_LOAD_FAILED) when this build has none. */
export const addonCaptureFactory: CaptureNativeFactory = (options, onEvent) => {
  const binding = loadNative() as unknown as {
    NativeCapture?: new (o: CaptureNativeOptions, e: (event: 'stopped', reason: string) => void) => CaptureNative;
  };
  if (typeof binding.NativeCapture !== 'function') {
    throw new Error('this build of the gpu-telemetry addon has no kernel-trace capture (NativeCapture is missing)');
  }
  return new binding.NativeCapture(options, onEvent);
};
