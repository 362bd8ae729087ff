/**
 * The native addon as TypeScript sees it. Loaded once, through node-gyp-build (prebuilds first,
 * then a local build). Nothing outside this package should use these types.
 */
import { createRequire } from 'node:module';
import { GpuTelemetryError } from './errors.js';
import { PACKAGE_ROOT } from './paths.js';

export const NativeEvent = { Opened: 0, OpenFailed: 1, SampleReady: 2, Closed: 3, XidReady: 4 } as const;
export type NativeEvent = (typeof NativeEvent)[keyof typeof NativeEvent];

export interface NativeOptions {
  nvmlCandidates: string[];
  simulatorScenario?: string;
  privateLibraryCopy?: boolean;
  intervalMs: number;
  lostRetryMs: number;
  slowCallMinGapMs: number;
  meminfoPath: string;
  /** 0 auto, 1 required, 2 disabled */
  gpmMode: number;
  /** 0 auto, 1 required, 2 disabled */
  dcgmMode: number;
  dcgmCandidates: string[];
  dcgmFromNvmlLibrary: boolean;
  dcgmAbsentReason: string;
  dcgmHost: string;
  dcgmHostIsUnixSocket: boolean;
  dcgmConnectTimeoutMs: number;
}

export interface NativeDeviceInfo {
  index: number;
  uuid: string;
  name: string;
  pciBusId: string;
  pciDeviceId: number;
  memoryTotalBytes: number;
  computeCapabilityMajor: number;
  computeCapabilityMinor: number;
  unifiedMemory: boolean;
  unifiedMemoryReason: string;
  nvlinkCount: number;
}

export interface NativeSystemInfo {
  driverVersion: string;
  nvmlVersion: string;
  cudaDriverVersion: number;
  nvmlLibraryPath: string;
  resolvedSymbols: Record<string, string | null>;
  backends: Record<string, { state: string; reason: string; detail: string }>;
  fieldNotes: (string | null)[][];
}

export interface NativeOpenError {
  code: string;
  message: string;
  vendorCode: number | null;
  vendorMessage: string;
  libraryPath: string;
  tried: string[];
}

export interface NativeLayout {
  devices: number;
  byteLength: number;
  valuesOffset: number;
  linksOffset: number;
  processesOffset: number;
  deviceMetaOffset: number;
  codesOffset: number;
  statusOffset: number;
  sourceOffset: number;
}

export interface NativeStats {
  samples: number;
  vendorCalls: number;
  threadCpuNs: number;
  lastSampleNs: number;
}

export interface NativeHandle {
  devices(): NativeDeviceInfo[];
  system(): NativeSystemInfo;
  openError(): NativeOpenError;
  layout(): NativeLayout;
  /** Copies the latest sample into `buffer` unless its seq is `knownSeq`; fills `header`. */
  readSnapshot(buffer: ArrayBuffer, knownSeq: number, header: Float64Array): string | undefined;
  setSubscribed(on: boolean): void;
  acknowledgeSample(): void;
  setRef(ref: boolean): void;
  close(): void;
  stats(): NativeStats;
  drainXids(max: number): {
    events: { device: number; xid: number; atEpochMs: number; gpuInstanceId: number; computeInstanceId: number }[];
    dropped: number;
  };
}

export interface NativeConstants {
  fieldCount: number;
  maxLinks: number;
  linkStride: number;
  maxProcesses: number;
  processStride: number;
  deviceMetaStride: number;
}

export interface NativeBinding {
  NativeHandle: new (options: NativeOptions, onEvent: (event: NativeEvent) => void) => NativeHandle;
  fieldNames(): string[];
  constants(): NativeConstants;
}

let binding: NativeBinding | null = null;

export function loadNative(): NativeBinding {
  if (binding) return binding;
  const require = createRequire(import.meta.url);
  try {
    const load = require('node-gyp-build') as (dir: string) => NativeBinding;
    binding = load(PACKAGE_ROOT);
  } catch (cause) {
    throw new GpuTelemetryError(
      'ADDON_LOAD_FAILED',
      `the gpu-telemetry native addon could not be loaded for ${process.platform}-${process.arch} ` +
        `(Node ${process.versions.node}): ${(cause as Error).message}. Run "npm rebuild gpu-telemetry" ` +
        'with a C++ toolchain (g++, make, python3) installed.',
      { cause },
    );
  }
  return binding;
}
