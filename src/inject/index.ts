/**
 * Captures in other CUDA processes: the injection library (native/inject, loaded by the CUDA driver
 * through CUDA_INJECTION64_PATH) and its Node client.
 */
import { GpuTelemetryError } from '../errors.js';
import { injectLibraryPath as findInjectLibrary } from '../paths.js';

export { armProcess, listInjectedProcesses, prewarmProcess, PROCESS_CAPTURE_LIMITS } from './remote.js';
export type { ProcessCaptureOptions, InjectedProcess, ListInjectedOptions, ProcessPrewarmResult } from './remote.js';

/**
 * The absolute path of libgpu_telemetry_inject.so for this machine (local build or prebuild): what
 * CUDA_INJECTION64_PATH must name. Throws LIBRARY_NOT_FOUND when this install has none.
 */
export function injectLibraryPath(): string {
  const found = findInjectLibrary();
  if (found === null) {
    throw new GpuTelemetryError(
      'LIBRARY_NOT_FOUND',
      `this install of gpu-telemetry has no injection library for ${process.platform}-${process.arch} ` +
        '(libgpu_telemetry_inject.so: prebuilds/ or build/Release/); run "npm rebuild gpu-telemetry" with a C++ toolchain',
    );
  }
  return found;
}
