/**
 * openGpuTelemetry and the GpuTelemetry instance: a native sampling thread per instance, a
 * synchronous snapshot() that never touches the driver, sample events, and close().
 */
import { EventEmitter } from 'node:events';
import { debuglog } from 'node:util';
import { closedError, GpuTelemetryError, type GpuTelemetryErrorCode } from './errors.js';
import { loadNative, NativeEvent, type NativeHandle, type NativeOpenError, type NativeStats } from './native.js';
import { resolveOptions, type GpuTelemetryOptions, type ResolvedOptions } from './options.js';
import { toXidEvent, type XidEvent } from './xid.js';
import { KernelCapture } from './capture/capture.js';
import {
  headerAge,
  headerSeq,
  headerTakenAt,
  staleReasonFor,
  type DeviceInfo,
  type DeviceSample,
  type GpuSnapshot,
} from './snapshot.js';
import { SnapshotDecoder } from './snapshot-decoder.js';

export interface DriverInfo {
  /** e.g. "550.90.07"; empty when the driver does not say. */
  readonly driverVersion: string;
  /** e.g. "12.550.90.07". */
  readonly nvmlVersion: string;
  /** CUDA version the driver supports, e.g. 12040 for 12.4; null when unknown. */
  readonly cudaDriverVersion: number | null;
  /** The NVML library that was loaded. */
  readonly nvmlLibraryPath: string;
  /** True when the "driver" is the gpu-telemetry simulator. */
  readonly simulated: boolean;
  /** The scenario name when simulated. */
  readonly scenario: string | null;
  /** Which NVML symbol answered each entry point (null: the library does not export it). */
  readonly resolvedSymbols: Readonly<Record<string, string | null>>;
}

/** What became of the optional backends at open (a quiet fallback says why here). */
export interface Backends {
  readonly gpm: BackendStatus;
  readonly dcgm: BackendStatus;
}

export interface SamplerStats {
  /** Samples published since open. */
  readonly samples: number;
  /** Vendor calls made since open. */
  readonly vendorCalls: number;
  /** CPU time the sampling thread spent sampling (ns). */
  readonly threadCpuNs: number;
  /** Wall time of the last sample (ns). */
  readonly lastSampleNs: number;
  /** XID events dropped because JS did not drain them fast enough (the counts stay exact). */
  readonly xidEventsDropped: number;
  /**
   * MIG device listings attempted (every GPU): once when a GPU enters MIG mode, then every 10 s;
   * a failed one is not repeated until the MIG mode changes or 60 s passed.
   */
  readonly migListings: number;
}

export interface GpuTelemetryEvents {
  sample: [snapshot: GpuSnapshot];
  xid: [event: XidEvent];
}

/** XID events kept for recentXids(). */
const RECENT_XIDS = 100;

const HEADER_LENGTH = 8;
const MODE = { auto: 0, required: 1, disabled: 2 } as const;
// native DcgmEngine
const DCGM_ENGINE = { auto: 0, hostengine: 1, embedded: 2 } as const;

const debug = debuglog('gpu-telemetry');

export interface BackendStatus {
  /** `active`: in use; `unavailable`: tried and not usable (see reason); `disabled` by options. */
  readonly state: 'active' | 'unavailable' | 'disabled';
  readonly reason: string | null;
  /** When active: how it runs (e.g. "embedded host engine, libdcgm.so.4"). */
  readonly detail: string | null;
}

export class GpuTelemetry extends EventEmitter<GpuTelemetryEvents> {
  /** Static facts of every device, in NVML index order. */
  readonly devices: readonly DeviceInfo[];
  readonly driver: DriverInfo;
  /** Which optional backends are in use, and why the others are not. */
  readonly backends: Backends;
  readonly intervalMs: number;
  readonly staleAfterMs: number;
  /**
   * Kernel-trace capture (CUPTI), dormant until armed: `gpu.capture.arm({ steps: 50 })`. Uses
   * libraries.cupti, or the simulator's CUPTI when simulating.
   */
  readonly capture: KernelCapture;

  private readonly decoder: SnapshotDecoder;
  private readonly header = new Float64Array(HEADER_LENGTH);
  private cachedSeq = 0;
  private cachedStale = false;
  private cachedDevices: readonly DeviceSample[] = [];
  private closePromise: Promise<void> | null = null;
  private resolveClosed: (() => void) | null = null;
  private subscribers = 0;
  private readonly recent: XidEvent[] = [];
  private xidDropped = 0;
  private iterators = new Set<SampleIterator>();

  /** @internal Use openGpuTelemetry(). */
  constructor(
    private readonly handle: NativeHandle,
    options: ResolvedOptions,
    devices: readonly DeviceInfo[],
    driver: DriverInfo,
    backends: Backends,
    fieldNotes: (string | null)[][],
  ) {
    super();
    this.devices = devices;
    this.driver = driver;
    this.backends = backends;
    this.intervalMs = options.intervalMs;
    this.staleAfterMs = options.staleAfterMs;
    this.closeTimeoutMs = options.closeTimeoutMs;
    this.capture = new KernelCapture(
      {
        cuptiLibrary: options.cuptiLibrary,
        simulator: options.scenario ? { libraryPath: options.scenario.libraryPath, scenarioText: options.scenario.text } : null,
      },
      undefined,
      () => this.closed,
    );
    this.decoder = new SnapshotDecoder(
      handle.layout(),
      loadNative().constants(),
      devices,
      fieldNotes,
      (device) => handle.migNames(device),
      driver.resolvedSymbols.deviceGetProcessesUtilizationInfo ?? driver.resolvedSymbols.deviceGetProcessUtilization ?? '',
    );
    // Sampling notifications cost nothing until someone listens for them.
    const plain = this as EventEmitter;
    plain.on('newListener', (event: string | symbol) => {
      if (event === 'sample') this.subscribe(1);
    });
    plain.on('removeListener', (event: string | symbol) => {
      if (event === 'sample') this.subscribe(-1);
    });
  }

  private readonly closeTimeoutMs: number;

  get closed(): boolean {
    return this.closePromise !== null;
  }

  /**
   * The latest published sample. Synchronous and cheap: it copies the sampler's last sample (no
   * driver call) and rebuilds objects only when a new sample arrived.
   */
  snapshot(): GpuSnapshot {
    if (this.closed) throw closedError('snapshot()');
    const decoder = this.decoder;
    let inFlight = this.handle.readSnapshot(decoder.buffer, this.cachedSeq, this.header);
    let seq = headerSeq(this.header);
    if (seq !== this.cachedSeq && seq > 0) {
      if (!decoder.hasLanding) {
        // No block was ready to copy into (only the header was read): make one and read again.
        decoder.ensureLanding();
        inFlight = this.handle.readSnapshot(decoder.buffer, this.cachedSeq, this.header);
        seq = headerSeq(this.header);
      }
      decoder.newSample();
    }
    const ageMs = headerAge(this.header);
    const stale = seq > 0 && ageMs > this.staleAfterMs;
    if (seq !== this.cachedSeq || stale !== this.cachedStale) {
      this.cachedDevices = decoder.decodeDevices(stale); // frozen
      this.cachedSeq = seq;
      this.cachedStale = stale;
    }
    return {
      seq,
      takenAt: headerTakenAt(this.header),
      ageMs,
      stale,
      staleReason: stale ? staleReasonFor(this.header, inFlight, this.intervalMs) : null,
      devices: this.cachedDevices,
    };
  }

  /** Each new sample as it is published (coalesced if the consumer is slower than the sampler). */
  samples(): AsyncIterableIterator<GpuSnapshot> {
    if (this.closed) throw closedError('samples()');
    const it = new SampleIterator(this);
    this.iterators.add(it);
    this.subscribe(1);
    return it;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<GpuSnapshot> {
    return this.samples();
  }

  /** Counters of the sampling thread itself (for overhead measurements). */
  stats(): SamplerStats {
    if (this.closed) throw closedError('stats()');
    const s: NativeStats = this.handle.stats();
    return { ...s, xidEventsDropped: this.xidDropped };
  }

  /**
   * The most recent XID events (up to 100, oldest first). Per-device totals since open are the
   * xidErrors / lastXid fields of every snapshot; subscribe with on('xid') to see each one.
   */
  recentXids(): readonly XidEvent[] {
    if (this.closed) throw closedError('recentXids()');
    return [...this.recent];
  }

  /**
   * Stops the sampling thread and releases the vendor libraries. Idempotent: every call returns
   * the same promise. Resolves when the thread has finished, or after closeTimeoutMs if it is
   * stuck in a driver call (it then exits by itself as soon as the call returns).
   */
  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.closePromise = new Promise<void>((resolve) => {
      this.resolveClosed = resolve;
    });
    this.capture.closeInstance(); // a live capture ends with reason 'closed' (its done still resolves)
    for (const it of this.iterators) it.finish();
    this.iterators.clear();
    this.handle.setSubscribed(false);
    this.handle.setRef(true); // keep the process alive until the thread has said it stopped
    this.handle.close();
    const timer = setTimeout(() => {
      this.handle.setRef(false);
      this.finishClose();
    }, this.closeTimeoutMs);
    timer.unref();
    void this.closePromise.then(() => clearTimeout(timer));
    return this.closePromise;
  }

  /** @internal Native event dispatch (after open). */
  onNativeEvent(event: NativeEvent): void {
    if (event === NativeEvent.SampleReady) {
      this.handle.acknowledgeSample();
      if (this.closed) return;
      const snap = this.snapshot();
      for (const it of this.iterators) it.push(snap);
      if (this.listenerCount('sample') > 0) this.emit('sample', snap);
    } else if (event === NativeEvent.XidReady) {
      if (!this.closed) this.drainXids();
    } else if (event === NativeEvent.Closed) {
      this.finishClose();
    }
  }

  private drainXids(): void {
    for (;;) {
      const { events, dropped } = this.handle.drainXids(1024);
      this.xidDropped += dropped;
      for (const raw of events) {
        const e = toXidEvent(raw);
        this.recent.push(e);
        if (this.recent.length > RECENT_XIDS) this.recent.shift();
        this.emit('xid', e);
      }
      if (events.length < 1024) return;
    }
  }

  /** @internal */
  removeIterator(it: SampleIterator): void {
    if (this.iterators.delete(it)) this.subscribe(-1);
  }

  private finishClose(): void {
    const resolve = this.resolveClosed;
    this.resolveClosed = null;
    resolve?.();
  }

  private subscribe(delta: number): void {
    if (this.closed) return;
    const before = this.subscribers;
    this.subscribers = Math.max(0, this.subscribers + delta);
    if (before === 0 && this.subscribers > 0) {
      this.handle.setSubscribed(true);
      this.handle.setRef(true); // someone is waiting for samples: keep the process alive
    } else if (before > 0 && this.subscribers === 0) {
      this.handle.setSubscribed(false);
      this.handle.setRef(false);
    }
  }
}

class SampleIterator implements AsyncIterableIterator<GpuSnapshot> {
  private pending: GpuSnapshot | null = null;
  private waiter: ((r: IteratorResult<GpuSnapshot>) => void) | null = null;
  private done = false;

  constructor(private readonly owner: GpuTelemetry) {}

  push(snap: GpuSnapshot): void {
    if (this.done) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: snap, done: false });
    } else {
      this.pending = snap; // keep only the newest: a slow consumer never builds a backlog
    }
  }

  finish(): void {
    this.done = true;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<GpuSnapshot>> {
    if (this.pending) {
      const value = this.pending;
      this.pending = null;
      return Promise.resolve({ value, done: false });
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  return(): Promise<IteratorResult<GpuSnapshot>> {
    this.finish();
    this.owner.removeIterator(this);
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<GpuSnapshot> {
    return this;
  }
}

function backendStatus(raw: { state: string; reason: string; detail?: string } | undefined): BackendStatus {
  if (!raw) return Object.freeze({ state: 'unavailable', reason: 'not implemented in this build', detail: null });
  const state = raw.state === 'active' || raw.state === 'disabled' ? raw.state : 'unavailable';
  return Object.freeze({ state, reason: raw.reason ? raw.reason : null, detail: raw.detail ? raw.detail : null });
}

function openErrorToError(e: NativeOpenError): GpuTelemetryError {
  const known: GpuTelemetryErrorCode[] = [
    'LIBRARY_NOT_FOUND',
    'SYMBOL_MISSING',
    'DRIVER_NOT_LOADED',
    'DRIVER_VERSION_MISMATCH',
    'NO_PERMISSION',
    'VENDOR_ERROR',
    'INVALID_OPTION',
    'INVALID_SCENARIO',
    'SOURCE_UNAVAILABLE',
  ];
  const code = (known as string[]).includes(e.code) ? (e.code as GpuTelemetryErrorCode) : 'VENDOR_ERROR';
  return new GpuTelemetryError(code, e.message, {
    vendorCode: e.vendorCode,
    vendorMessage: e.vendorMessage,
    libraryPath: e.libraryPath || e.tried[e.tried.length - 1],
    tried: e.tried,
  });
}

/**
 * Opens NVIDIA's libraries (or the simulator), discovers the GPUs and starts sampling them on a
 * native thread. Rejects with a GpuTelemetryError whose `code` says why (DRIVER_NOT_LOADED on a
 * machine without a GPU driver, LIBRARY_NOT_FOUND without NVML, INVALID_OPTION, …).
 */
export async function openGpuTelemetry(options?: GpuTelemetryOptions): Promise<GpuTelemetry> {
  const resolved = resolveOptions(options);
  const native = loadNative();
  return new Promise<GpuTelemetry>((resolve, reject) => {
    let instance: GpuTelemetry | null = null;
    let settled = false;
    let handle: NativeHandle;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      handle.close();
      handle.setRef(false);
      reject(
        new GpuTelemetryError(
          'TIMEOUT',
          `opening NVML did not finish within ${resolved.openTimeoutMs} ms (a hung driver?); ` +
            'raise openTimeoutMs if the machine is just slow',
        ),
      );
    }, resolved.openTimeoutMs);
    const onEvent = (event: NativeEvent): void => {
      if (instance) {
        instance.onNativeEvent(event);
        return;
      }
      if (event === NativeEvent.Opened) {
        if (settled) return; // timed out meanwhile: the handle is already closing
        settled = true;
        clearTimeout(timer);
        const driver = handle.system();
        const devices = handle.devices().map(
          (d): DeviceInfo =>
            Object.freeze({
              index: d.index,
              uuid: d.uuid,
              name: d.name,
              pciBusId: d.pciBusId,
              pciDeviceId: d.pciDeviceId,
              memoryTotalBytes: d.memoryTotalBytes >= 0 ? d.memoryTotalBytes : null,
              computeCapability:
                d.computeCapabilityMajor >= 0
                  ? Object.freeze({ major: d.computeCapabilityMajor, minor: d.computeCapabilityMinor })
                  : null,
              unifiedMemory: d.unifiedMemory,
              unifiedMemoryReason: d.unifiedMemory ? d.unifiedMemoryReason : null,
              nvlinkCount: d.nvlinkCount,
              simulated: resolved.scenario !== null,
            }),
        );
        instance = new GpuTelemetry(handle, resolved, Object.freeze(devices), {
          driverVersion: driver.driverVersion,
          nvmlVersion: driver.nvmlVersion,
          cudaDriverVersion: driver.cudaDriverVersion >= 0 ? driver.cudaDriverVersion : null,
          nvmlLibraryPath: driver.nvmlLibraryPath,
          simulated: resolved.scenario !== null,
          scenario: resolved.scenario?.name ?? null,
          resolvedSymbols: Object.freeze({ ...driver.resolvedSymbols }),
        }, Object.freeze({
          gpm: backendStatus(driver.backends.gpm),
          dcgm: backendStatus(driver.backends.dcgm),
        }), driver.fieldNotes);
        // A preferred backend that could not be used falls back quietly: say why where a user
        // debugging it will look (NODE_DEBUG=gpu-telemetry, and gpu.backends).
        for (const [name, b] of Object.entries(instance.backends)) {
          if (b.state === 'unavailable') debug('%s unavailable, falling back: %s', name, b.reason);
        }
        handle.setRef(false); // an idle instance does not keep the process alive
        resolve(instance);
      } else if (event === NativeEvent.OpenFailed) {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(openErrorToError(handle.openError()));
      }
      // Closed before Opened (after a failure or timeout): nothing left to do.
    };
    handle = new native.NativeHandle(
      {
        nvmlCandidates: resolved.nvmlCandidates,
        simulatorScenario: resolved.scenario?.text,
        privateLibraryCopy: resolved.scenario !== null,
        intervalMs: resolved.intervalMs,
        lostRetryMs: resolved.lostRetryMs,
        slowCallMinGapMs: 1000,
        meminfoPath: resolved.meminfoPath,
        gpmMode: MODE[resolved.sources.gpm],
        dcgmMode: MODE[resolved.sources.dcgm],
        dcgmCandidates: resolved.dcgmCandidates,
        dcgmFromNvmlLibrary: resolved.dcgmFromNvmlLibrary,
        dcgmAbsentReason: resolved.dcgmAbsentReason,
        dcgmHost: resolved.dcgmHost,
        dcgmHostIsUnixSocket: resolved.dcgmHostIsUnixSocket,
        dcgmEngine: DCGM_ENGINE[resolved.dcgmEngine],
        dcgmConnectTimeoutMs: resolved.dcgmConnectTimeoutMs,
        processUtilization: resolved.processUtilization,
        staleAfterMs: resolved.staleAfterMs,
      },
      onEvent,
    );
  });
}
