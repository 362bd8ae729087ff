/**
 * The native capture surface as the capture layer uses it: the addon's declarations in
 * src/native.ts under the names this layer (and its fake, test/capture-fixtures.ts) use, plus the
 * factory seam through which tests swap the addon for that fake.
 */
import {
  loadNative,
  type NativeBinding,
  type NativeCapture,
  type NativeCaptureKinds,
  type NativeCaptureOptions,
  type NativeCaptureProgress,
  type NativeCaptureResult,
  type NativeCaptureStartResult,
  type NativeCaptureEventListener,
} from '../native.js';

export type CaptureNativeKinds = NativeCaptureKinds;
export type CaptureNativeOptions = NativeCaptureOptions;
export type CaptureNativeProgress = NativeCaptureProgress;
export type CaptureNativeStartResult = NativeCaptureStartResult;
/** What `result()` returns: records as fixed-stride Float64Arrays (see STRIDE), ns relative to baseNs. */
export type CaptureNativeResult = NativeCaptureResult;
export type CaptureNative = NativeCapture;

export type CaptureNativeEventListener = NativeCaptureEventListener;
export type CaptureNativeFactory = (options: CaptureNativeOptions, onEvent: CaptureNativeEventListener) => CaptureNative;

/** Column counts of the record arrays. */
export const STRIDE = { kernels: 16, memcpys: 10, memsets: 8, apiCalls: 8, ranges: 8, steps: 2 } as const;

/** The addon's NativeCapture, or a GpuTelemetryError (ADDON_LOAD_FAILED) when this build has none. */
export const addonCaptureFactory: CaptureNativeFactory = (options, onEvent) => {
  // Partial: an addon built without the capture half has no NativeCapture.
  const binding: Partial<NativeBinding> = loadNative();
  if (typeof binding.NativeCapture !== 'function') {
    throw new Error('this build of the gpu-telemetry addon has no kernel-trace capture (NativeCapture is missing)');
  }
  return new binding.NativeCapture(options, onEvent);
};
