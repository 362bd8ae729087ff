/**
 * The native addon as TypeScript sees it. Loaded once, through node-gyp-build (a local build in
 * build/ first, then the prebuild for this platform and arch). Nothing outside this package should
 * use these types.
 */
import { createRequire } from 'node:module';
import { GpuTelemetryError } from './errors.js';
import { PACKAGE_ROOT, addonPath, elfArch } from './paths.js';

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
  /** 0 auto (a running nv-hostengine, else embedded), 1 hostengine only, 2 embedded only */
  dcgmEngine: number;
  dcgmConnectTimeoutMs: number;
  /** Per-process utilisation on a thread of its own (off: not asked). */
  processUtilization: boolean;
  /** A per-process utilisation call in flight longer than this is reported hung. */
  staleAfterMs: number;
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
  migValuesOffset: number;
  migMetaOffset: number;
  migCodesOffset: number;
  migStatusOffset: number;
  migSourceOffset: number;
}

export interface NativeStats {
  samples: number;
  vendorCalls: number;
  threadCpuNs: number;
  lastSampleNs: number;
  /** MIG device listings attempted since open (every GPU). */
  migListings: number;
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
  /** The UUIDs and profile names of a GPU's MIG devices, in frame slot order. */
  migNames(device: number): { generation: number; uuids: string[]; profiles: string[] };
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
  maxMigDevices: number;
  migMetaStride: number;
  /** The device field names a MIG device slot holds, in slot order. */
  migFields: string[];
}

export interface NativeBinding {
  NativeHandle: new (options: NativeOptions, onEvent: (event: NativeEvent) => void) => NativeHandle;
  NativeCapture: new (options: NativeCaptureOptions, onEvent: NativeCaptureEventListener) => NativeCapture;
  captureCuptiState(): NativeCuptiState;
  /** Buffers lent to CUPTI and not yet returned, across every capture of the process. */
  captureBuffersWithCupti?(): { buffers: number; bytes: number };
  fieldNames(): string[];
  constants(): NativeConstants;
}

let binding: NativeBinding | null = null;

export function loadNative(): NativeBinding {
  if (binding) return binding;
  const require = createRequire(import.meta.url);
  let file: string | null = null;
  try {
    // node-gyp-build chooses (build/ first, then prebuilds/<platform>-<arch>/); addonPath skips a
    // local build made for another machine (src/paths.ts).
    const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
    file = addonPath(nodeGypBuild.path(PACKAGE_ROOT));
    binding = require(file) as NativeBinding;
  } catch (cause) {
    const foreign = file ? elfArch(file) : null;
    const why = file && foreign && foreign !== process.arch ? ` (${file} was built for ${foreign})` : '';
    throw new GpuTelemetryError(
      'ADDON_LOAD_FAILED',
      `the gpu-telemetry native addon could not be loaded for ${process.platform}-${process.arch} ` +
        `(Node ${process.versions.node}): ${(cause as Error).message}${why}. Run "npm rebuild gpu-telemetry" ` +
        'with a C++ toolchain (g++, make, python3) installed.',
      { cause },
    );
  }
  return binding;
}

// ---- kernel-trace capture (native/capture, native/addon.cc). Options are validated in
// TypeScript (src/capture/options.ts); native trusts them.

export interface NativeCaptureKinds {
  kernels: boolean;
  memcpy: boolean;
  memset: boolean;
  runtimeApi: boolean;
  driverApi: boolean;
  nvtx: boolean;
}

export interface NativeCaptureOptions {
  /** CUPTI library paths/sonames, tried in order. */
  cuptiCandidates: string[];
  /** Scenario JSON text: when set, the loaded library (the simulator) is configured with it. */
  simulatorScenario?: string;
  /** Cap on all capture memory: CUPTI buffers + normalized records + strings (bytes). */
  maxBytes: number;
  /** Size of one CUPTI activity buffer (bytes, >= 64 KiB). */
  bufferBytes: number;
  maxRecords: number;
  steps: number;
  startAfterSteps: number;
  /** null: steps are step() calls; else NVTX ranges with this name are the steps. */
  stepRange: string | null;
  /** With stepRange: only ranges of this NVTX domain count ('' the default domain); absent: any. */
  stepDomain?: string | null;
  kinds: NativeCaptureKinds;
  flushIntervalMs: number;
  /**
   * At the end of a capture, how long to keep asking CUPTI (default flushes) for the buffers it
   * still holds (records in flight: kernels still running) before the one forced flush (ms).
   */
  drainTimeoutMs: number;
  /** Pre-warm: set CUPTI up (its first enable is the slow one), then stop at once. */
  prewarm?: boolean;
}

/**
 * The capture's events, from its thread: 'started' (CUPTI is set up: startResult() says ok, the
 * capture is waiting or capturing), 'failed' (it could not be: startResult() says why; nothing
 * follows), 'stopped' (with the stop reason; result() is ready; the last event). A capture stopped
 * before CUPTI was enabled sends 'stopped' without 'started'.
 */
export type NativeCaptureEventListener = (event: 'started' | 'failed' | 'stopped', reason?: string) => void;

export interface NativeCaptureProgress {
  /** 'starting': start() was called, the capture thread is loading and enabling CUPTI. */
  state: 'starting' | 'waiting' | 'capturing' | 'stopping' | 'finished';
  steps: number;
  records: number;
  /** Capture memory held now (bytes). */
  bytes: number;
  droppedByCupti: number;
  droppedByUs: number;
  droppedIncomplete: number;
}

/**
 * start(): ok (the capture thread is starting; the outcome follows as 'started' or 'failed'), or a
 * refusal known without touching CUPTI (CAPTURE_BUSY, CLOSED). startResult(): the outcome of the
 * start, with the library and CUPTI version, or one of LIBRARY_NOT_FOUND | SYMBOL_MISSING |
 * UNSUPPORTED_CUPTI_VERSION | CUPTI_BUSY | CUPTI_ERROR | INVALID_SCENARIO.
 */
export interface NativeCaptureStartResult {
  ok: boolean;
  code?: string;
  message?: string;
  vendorCode?: number;
  vendorMessage?: string;
  libraryPath?: string;
  cuptiVersion?: number;
  /** How long the set-up took on the capture thread (ms): loading CUPTI, subscribing, enabling. */
  startMs?: number;  /**
   * 'shared': subscribed with cuptiSubscribe_v2 allowing other subscribers (CUPTI 13.3+
   * multi-subscriber mode, through the subscriber-scoped activity calls); 'exclusive': CUPTI's one
   * subscriber.
   */
  subscriberMode?: 'shared' | 'exclusive';
}

/** Record columns (Float64Array, fixed stride; times in ns on the CUPTI clock relative to baseNs). */
export interface NativeCaptureResult {
  /** The absolute CUPTI timestamp at start() (ns, decimal: beyond 2^53). */
  baseNs: string;
  cuptiVersion: number;
  layout: 'cuda11' | 'cuda12' | 'cuda13' | 'unsupported';
  libraryPath: string;
  simulated: boolean;
  reason: string;
  truncated: boolean;
  /** stride 16: start, end, deviceId, contextId, streamId, correlationId, gridX..Z, blockX..Z, registersPerThread, staticSharedBytes, dynamicSharedBytes, nameIndex */
  kernels: Float64Array;
  /** stride 10: start, end, deviceId, contextId, streamId, correlationId, bytes, copyKind, srcKind, dstKind */
  memcpys: Float64Array;
  /** stride 8: start, end, deviceId, contextId, streamId, correlationId, bytes, value */
  memsets: Float64Array;
  /** stride 8: start, end, processId, threadId, correlationId, cbid, domain (0 runtime, 1 driver), nameIndex */
  apiCalls: Float64Array;
  /** stride 8: start, end, id, isRange, nameIndex, domainIndex (-1 none), processId, threadId */
  ranges: Float64Array;
  /** stride 2: start, end (row i = step i) */
  steps: Float64Array;
  strings: string[];
  droppedByCupti: number;
  droppedByUs: number;
  /** Records CUPTI handed back incomplete (cuptiActivityGetNextRecord: INVALID_KIND): lost. */
  droppedIncomplete: number;
  /** How the capture subscribed to CUPTI (see NativeCaptureStartResult.subscriberMode). */
  subscriberMode: 'shared' | 'exclusive';
  peakBytes: number;
  buffersCompleted: number;
}

export interface NativeCapture {
  /** Returns at once: the vendor work (dlopen, subscribe, enable) happens on the capture thread. */
  start(): NativeCaptureStartResult;
  /** The start's outcome once the capture thread knows it ('started' / 'failed'), else null. */
  startResult(): NativeCaptureStartResult | null;
  /** Manual step boundary; returns its CUPTI timestamp relative to baseNs (ns). */
  step(): number;
  timestamp(): number;
  progress(): NativeCaptureProgress;
  stop(reason: string): void;
  /** Valid after the 'stopped' event; moves the data out (a second call returns empty arrays). */
  result(): NativeCaptureResult;
  close(): void;
}

export interface NativeCuptiState {
  /** CUPTI activity kinds enabled now. */
  enabledKinds: number[];
  subscribed: boolean;
  /** 'library': the loaded CUPTI said so (simulator); 'tracked': what this process's captures left enabled. */
  source: 'library' | 'tracked';
  libraryPath: string;
  /** The simulator's counters, when the loaded CUPTI is the simulator. */
  simulator?: {
    recordsProduced: number;
    recordsDropped: number;
    nullBuffers: number;
    /** Null buffers handed to a CUPTI older than API version 27 (where that is unsafe). */
    unsafeNullBuffers: number;
    buffersCompleted: number;
    /** Buffers the simulated CUPTI holds now. */
    buffersHeld: number;
    /** Records handed back while still in flight (cuptiActivityGetNextRecord: INVALID_KIND). */
    incompleteRecordsReturned: number;
    /** GPU records reserved in a buffer and not yet complete, now. */
    recordsInFlight: number;
    /** Kernel records written complete (each is delivered: as a record, or never handed back). */
    kernelRecordsCompleted: number;
    /** Kernels the simulated application launched while a kernel kind was enabled. */
    kernelsLaunched: number;
    /** How long cuptiActivityEnable stalled (the library's first: firstEnableDelayMs). */
    enableStalledMs: number;
    /** Subscriptions made through cuptiSubscribe_v2, and those allowing other subscribers (CUPTI 13.3). */
    v2Subscriptions: number;
    sharedSubscriptions: number;
    /** Global activity calls made while sharing CUPTI with another subscriber (should be 0: the _v2 calls are for that). */
    globalCallsWhileShared: number;
  };
}
