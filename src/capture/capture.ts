/**
 * gpu.capture: arms kernel-trace captures (one per process: CUPTI has one subscriber), pre-warms
 * CUPTI, and finds the CUPTI library to load. A capture itself is a CaptureHandle
 * (capture-handle.ts); the process-wide live capture and counters are capture-registry.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { closedError, GpuTelemetryError } from '../errors.js';
import {
  addonCaptureFactory,
  type CaptureNative,
  type CaptureNativeFactory,
  type CaptureNativeOptions,
} from './native-capture.js';
import { CaptureHandle, startError } from './capture-handle.js';
import { captureStats, liveCapture, type CaptureStats } from './capture-registry.js';
import { resolveCaptureOptions, type CaptureOptions, type ResolvedCaptureOptions } from './options.js';

/** Where the CUPTI library comes from: set by GpuTelemetry (libraries.cupti / simulate). */
export interface CaptureConfig {
  /** Explicit CUPTI path (libraries.cupti); null: $GPU_TELEMETRY_CUPTI_LIB or the defaults. */
  cuptiLibrary: string | null;
  /** Simulator: its library is the CUPTI library, and this scenario text configures it. */
  simulator: { libraryPath: string; scenarioText: string } | null;
}


/** A pre-warm in progress (it holds CUPTI's one subscriber meanwhile). */
let prewarming: Promise<PrewarmResult> | null = null;

/** What capture.prewarm() resolves with. */
export interface PrewarmResult {
  libraryPath: string;
  cuptiVersion: number;
  /** The record layout generation the loaded CUPTI's version selects, e.g. "cuda13". */
  layout: string;
  /** How long loading CUPTI, subscribing and the first enable took on the native thread (ms). */
  startMs: number;
  /** 'shared' when CUPTI 13.3+ let it subscribe allowing other subscribers, else 'exclusive'. */
  subscriberMode: 'shared' | 'exclusive';
  /** Wall time from prewarm() to the end of the warm-up (ms). */
  elapsedMs: number;
}

/** The CUPTI libraries to try, in order (the first that loads is used). */
export function cuptiCandidates(config: CaptureConfig): string[] {
  if (config.simulator) return [config.simulator.libraryPath];
  if (config.cuptiLibrary) return [config.cuptiLibrary];
  const env = process.env.GPU_TELEMETRY_CUPTI_LIB;
  if (env !== undefined && env.trim() !== '') return [env];
  const out = ['libcupti.so'];
  // The versioned CUPTI next to the CUDA runtime this process already loaded (torch, onnxruntime, …).
  for (const dir of loadedCudartDirs()) {
    for (const d of [dir, path.join(dir, '..', 'extras', 'CUPTI', 'lib64')]) {
      try {
        for (const f of fs.readdirSync(d).sort().reverse()) {
          if (/^libcupti\.so(\.\d+)*$/.test(f)) out.push(path.join(d, f));
        }
      } catch {
        // not there
      }
    }
  }
  out.push('libcupti.so.13', 'libcupti.so.12', '/usr/local/cuda/lib64/libcupti.so', '/usr/local/cuda/extras/CUPTI/lib64/libcupti.so');
  return [...new Set(out)];
}

function loadedCudartDirs(): string[] {
  try {
    const maps = fs.readFileSync('/proc/self/maps', 'utf8');
    const dirs = new Set<string>();
    for (const m of maps.matchAll(/\s(\/\S*\/)libcudart\.so[^\s/]*$/gm)) dirs.add(path.dirname(`${m[1]}x`));
    return [...dirs];
  } catch {
    return [];
  }
}

function layoutOf(version: number): string {
  if (version === 18) return 'cuda11';
  if (version >= 19 && version <= 28) return 'cuda12';
  if (version >= 130000 && version <= 139999) return 'cuda13';
  return 'unsupported';
}


/** gpu.capture: arm kernel-trace captures. */
export class KernelCapture {
  /** @internal */
  constructor(
    private readonly config: CaptureConfig,
    private readonly factory: CaptureNativeFactory = addonCaptureFactory,
    private readonly isClosed: () => boolean = () => false,
  ) {}

  /** The live capture of this process (armed here or through another instance), or null. */
  get active(): CaptureHandle | null {
    return liveCapture.handle;
  }

  /**
   * Arms a capture and returns at once (state `starting`): loading CUPTI, subscribing and enabling
   * happen on the capture's native thread (CUPTI's first enable can stall for seconds). Throws
   * only what is known without CUPTI: INVALID_OPTION, CLOSED, CAPTURE_BUSY (a capture, or a
   * pre-warm, is live), ADDON_LOAD_FAILED. A start that fails on the native thread rejects
   * `ready` and `done` with LIBRARY_NOT_FOUND, SYMBOL_MISSING, UNSUPPORTED_CUPTI_VERSION,
   * CUPTI_BUSY, CUPTI_ERROR or INVALID_SCENARIO; nothing stays enabled after it.
   */
  arm(options?: CaptureOptions): CaptureHandle {
    if (this.isClosed()) throw closedError('capture.arm()');
    const resolved = resolveCaptureOptions(options);
    this.assertIdle('capture.arm()');
    const handle = new CaptureHandle(resolved, this.factory, this.nativeOptions(resolved), this);
    liveCapture.handle = handle;
    try {
      handle.start();
    } catch (e) {
      liveCapture.handle = null;
      throw e;
    }
    return handle;
  }

  /**
   * Pays CUPTI's start-up cost ahead of time, on a native thread: loads CUPTI, subscribes, enables
   * the activity kinds a default capture uses (CUPTI's first enable can stall its caller for
   * seconds) and disables them again, so that a later arm() is armed at once. Call it at service
   * start-up. Resolves with the library and how long the set-up took; rejects like a failed arm
   * (LIBRARY_NOT_FOUND, CUPTI_BUSY, …). While it runs, arm() is CAPTURE_BUSY.
   */
  prewarm(): Promise<PrewarmResult> {
    if (this.isClosed()) return Promise.reject(closedError('capture.prewarm()'));
    try {
      this.assertIdle('capture.prewarm()');
    } catch (e) {
      return Promise.reject(e);
    }
    const t0 = Date.now();
    const resolved = resolveCaptureOptions({ steps: 1, maxBytes: 4 << 20, bufferBytes: 1 << 20, drainTimeoutMs: 0 });
    const nativeOptions = { ...this.nativeOptions(resolved), prewarm: true };
    const run = new Promise<PrewarmResult>((resolve, reject) => {
      let native: CaptureNative | null = null;
      const settle = (fn: () => void) =>
        setImmediate(() => {
          try {
            native?.close();
          } catch {
            // close() does not throw
          }
          prewarming = null;
          fn();
        });
      const onEvent = (event: 'started' | 'failed' | 'stopped'): void => {
        const r = native?.startResult() ?? null;
        if (event === 'failed') {
          settle(() => reject(startError(r ?? { ok: false, code: 'CUPTI_ERROR' }, 'capture.prewarm()', nativeOptions.cuptiCandidates)));
        } else if (event === 'stopped') {
          const version = r?.cuptiVersion ?? 0;
          settle(() =>
            resolve({
              libraryPath: r?.libraryPath ?? '',
              cuptiVersion: version,
              layout: layoutOf(version),
              startMs: r?.startMs ?? 0,
              subscriberMode: r?.subscriberMode ?? 'exclusive',
              elapsedMs: Date.now() - t0,
            }),
          );
        }
      };
      try {
        native = this.factory(nativeOptions, onEvent);
        const r = native.start();
        if (!r.ok) {
          native.close();
          throw startError(r, 'capture.prewarm()', nativeOptions.cuptiCandidates);
        }
      } catch (e) {
        prewarming = null;
        reject(e instanceof GpuTelemetryError ? e : new GpuTelemetryError('ADDON_LOAD_FAILED', `capture.prewarm(): ${(e as Error).message}`, { cause: e }));
      }
    });
    prewarming = run;
    run.catch(() => undefined);
    return run;
  }

  private assertIdle(what: string): void {
    if (liveCapture.handle !== null) {
      throw new GpuTelemetryError(
        'CAPTURE_BUSY',
        `${what}: capture ${liveCapture.handle.id} is still ${liveCapture.handle.state} (one capture at a time per process: CUPTI has one subscriber); ` +
          'await its done promise or cancel() it first',
      );
    }
    if (prewarming !== null) {
      throw new GpuTelemetryError('CAPTURE_BUSY', `${what}: CUPTI is being pre-warmed (one subscriber at a time); await capture.prewarm() first`);
    }
  }

  private nativeOptions(resolved: ResolvedCaptureOptions): CaptureNativeOptions {
    const nativeOptions: CaptureNativeOptions = {
      cuptiCandidates: cuptiCandidates(this.config),
      maxBytes: resolved.maxBytes,
      bufferBytes: resolved.bufferBytes,
      maxRecords: resolved.maxRecords,
      steps: resolved.steps,
      startAfterSteps: resolved.startAfterSteps,
      stepRange: resolved.stepRange,
      ...(resolved.stepDomain !== null ? { stepDomain: resolved.stepDomain } : {}),
      kinds: { ...resolved.kinds },
      flushIntervalMs: resolved.flushIntervalMs,
      drainTimeoutMs: resolved.drainTimeoutMs,
    };
    if (this.config.simulator) nativeOptions.simulatorScenario = this.config.simulator.scenarioText;
    return nativeOptions;
  }

  /** What the captures of this process have done (process-wide counters; see CaptureStats). */
  stats(): CaptureStats {
    return captureStats();
  }

  /**
   * Marks a step boundary for whatever capture is live (armed here, or remotely through the
   * capture endpoint); a no-op when none is, or when the live one counts NVTX ranges (stepRange).
   * Call it once per step from the serving loop: it costs a null check while nobody captures.
   */
  step(): void {
    const h = liveCapture.handle;
    if (h !== null && h.options.stepRange === null) h.step();
  }

  /** @internal Called when the owning GpuTelemetry closes: a live capture ends with reason 'closed'. */
  closeInstance(): void {
    if (liveCapture.handle && liveCapture.handle.creator === this) liveCapture.handle.stopWith('closed');
  }
}

