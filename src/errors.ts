/**
 * The one error type this package throws or rejects with. `code` says what went wrong in a way a
 * program can branch on; the vendor's own return code and text are kept beside it, with the
 * library path that was tried, so an operator can act on the message alone.
 */
export type GpuTelemetryErrorCode =
  | 'LIBRARY_NOT_FOUND' // a vendor library could not be loaded (path, soname)
  | 'SYMBOL_MISSING' // the library loaded but lacks a required entry point: not the library we need
  | 'DRIVER_NOT_LOADED' // NVML: no kernel driver (no GPU on this machine)
  | 'DRIVER_VERSION_MISMATCH' // NVML library and kernel driver differ
  | 'NO_PERMISSION' // the process may not open the GPU device files, or may not arm another user's process
  | 'VENDOR_ERROR' // any other vendor return code (see vendorCode / vendorMessage)
  | 'INVALID_OPTION' // an option is wrong; the message says what is allowed
  | 'INVALID_SCENARIO' // a simulator scenario could not be used
  | 'SOURCE_UNAVAILABLE' // a backend required by options.sources cannot be used
  | 'CLOSED' // the instance was closed
  | 'TIMEOUT' // an operation did not finish in time
  | 'ADDON_LOAD_FAILED' // the native addon could not be loaded (not built for this platform)
  | 'CAPTURE_BUSY' // a kernel-trace capture is already armed in this process (one at a time)
  | 'CUPTI_BUSY' // another profiler (Nsight, PyTorch's Kineto, …) holds CUPTI's one subscriber slot
  | 'UNSUPPORTED_CUPTI_VERSION' // the loaded CUPTI's record layout is not one this build knows
  | 'CUPTI_ERROR' // any other CUPTI failure (vendorCode + CUPTI's own result string)
  | 'CAPTURE_FAILED' // a capture ended by an error before it recorded anything
  | 'TARGET_NOT_FOUND' // armProcess(): no process with that pid (or it has exited)
  | 'NOT_INJECTED' // armProcess(): the process has no injection control socket (not started with CUDA_INJECTION64_PATH, or CUDA not initialised yet)
  | 'TARGET_EXITED' // armProcess(): the process exited before the capture was armed
  | 'PROTOCOL_ERROR'; // the injection library's control socket answered something this version cannot read

export interface GpuTelemetryErrorDetails {
  /** The vendor's return code (e.g. NVML's 9 for "Driver Not Loaded"), when a vendor call failed. */
  vendorCode?: number | null;
  /** The vendor's own text for that code. */
  vendorMessage?: string;
  /** The library that was loaded or tried last. */
  libraryPath?: string;
  /** Every path or soname tried, in order. */
  tried?: string[];
  /** For INVALID_OPTION: the option's path, e.g. "libraries.nvml". */
  option?: string;
  cause?: unknown;
}

export class GpuTelemetryError extends Error {
  override readonly name = 'GpuTelemetryError';
  readonly code: GpuTelemetryErrorCode;
  readonly vendorCode: number | null;
  readonly vendorMessage: string | null;
  readonly libraryPath: string | null;
  readonly tried: readonly string[];
  readonly option: string | null;

  constructor(code: GpuTelemetryErrorCode, message: string, details: GpuTelemetryErrorDetails = {}) {
    super(message, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.code = code;
    this.vendorCode = details.vendorCode ?? null;
    this.vendorMessage = details.vendorMessage ? details.vendorMessage : null;
    this.libraryPath = details.libraryPath ? details.libraryPath : null;
    this.tried = Object.freeze([...(details.tried ?? [])]);
    this.option = details.option ?? null;
  }
}

/** `option` is the option's path (`intervalMs`, `libraries.nvml`), or '' for the options object itself. */
export function invalidOption(option: string, message: string): GpuTelemetryError {
  return new GpuTelemetryError('INVALID_OPTION', `${option ? `options.${option}` : 'options'}: ${message}`, { option });
}

/** A value as an option message shows it: `42`, `"h100"`, `null`, `an array`, `a Date`, `a function`. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'symbol') return 'a symbol';
  if (typeof v === 'function') return 'a function';
  const proto = Object.getPrototypeOf(v) as { constructor?: { name?: unknown } } | null;
  if (proto === null || proto === Object.prototype) return 'an object';
  const name = typeof proto.constructor?.name === 'string' && proto.constructor.name ? proto.constructor.name : null;
  return name ? `${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}` : 'an object with a prototype';
}

export function closedError(what: string): GpuTelemetryError {
  return new GpuTelemetryError('CLOSED', `${what}: this GpuTelemetry instance is closed; open a new one`);
}

/** NVML return codes by number, for messages (works without any library loaded). */
export const NVML_RETURN_NAMES: Readonly<Record<number, string>> = Object.freeze({
  0: 'NVML_SUCCESS',
  1: 'NVML_ERROR_UNINITIALIZED',
  2: 'NVML_ERROR_INVALID_ARGUMENT',
  3: 'NVML_ERROR_NOT_SUPPORTED',
  4: 'NVML_ERROR_NO_PERMISSION',
  5: 'NVML_ERROR_ALREADY_INITIALIZED',
  6: 'NVML_ERROR_NOT_FOUND',
  7: 'NVML_ERROR_INSUFFICIENT_SIZE',
  8: 'NVML_ERROR_INSUFFICIENT_POWER',
  9: 'NVML_ERROR_DRIVER_NOT_LOADED',
  10: 'NVML_ERROR_TIMEOUT',
  11: 'NVML_ERROR_IRQ_ISSUE',
  12: 'NVML_ERROR_LIBRARY_NOT_FOUND',
  13: 'NVML_ERROR_FUNCTION_NOT_FOUND',
  14: 'NVML_ERROR_CORRUPTED_INFOROM',
  15: 'NVML_ERROR_GPU_IS_LOST',
  16: 'NVML_ERROR_RESET_REQUIRED',
  17: 'NVML_ERROR_OPERATING_SYSTEM',
  18: 'NVML_ERROR_LIB_RM_VERSION_MISMATCH',
  19: 'NVML_ERROR_IN_USE',
  20: 'NVML_ERROR_MEMORY',
  21: 'NVML_ERROR_NO_DATA',
  22: 'NVML_ERROR_VGPU_ECC_NOT_SUPPORTED',
  23: 'NVML_ERROR_INSUFFICIENT_RESOURCES',
  24: 'NVML_ERROR_FREQ_NOT_SUPPORTED',
  25: 'NVML_ERROR_ARGUMENT_VERSION_MISMATCH',
  26: 'NVML_ERROR_DEPRECATED',
  27: 'NVML_ERROR_NOT_READY',
  28: 'NVML_ERROR_GPU_NOT_FOUND',
  29: 'NVML_ERROR_INVALID_STATE',
  30: 'NVML_ERROR_RESET_TYPE_NOT_SUPPORTED',
  999: 'NVML_ERROR_UNKNOWN',
});

export function nvmlReturnName(code: number): string {
  return NVML_RETURN_NAMES[code] ?? `NVML return code ${code}`;
}

/**
 * Every DCGM return code (dcgmReturn_t) by number, for messages (works without any library loaded).
 * A mirror of native/vendor/dcgm_returns.def, the one table (test/abi.test.ts keeps them equal).
 */
export const DCGM_RETURN_NAMES: Readonly<Record<number, string>> = Object.freeze({
  0: 'DCGM_ST_OK',
  [-1]: 'DCGM_ST_BADPARAM',
  [-3]: 'DCGM_ST_GENERIC_ERROR',
  [-4]: 'DCGM_ST_MEMORY',
  [-5]: 'DCGM_ST_NOT_CONFIGURED',
  [-6]: 'DCGM_ST_NOT_SUPPORTED',
  [-7]: 'DCGM_ST_INIT_ERROR',
  [-8]: 'DCGM_ST_NVML_ERROR',
  [-9]: 'DCGM_ST_PENDING',
  [-10]: 'DCGM_ST_UNINITIALIZED',
  [-11]: 'DCGM_ST_TIMEOUT',
  [-12]: 'DCGM_ST_VER_MISMATCH',
  [-13]: 'DCGM_ST_UNKNOWN_FIELD',
  [-14]: 'DCGM_ST_NO_DATA',
  [-15]: 'DCGM_ST_STALE_DATA',
  [-16]: 'DCGM_ST_NOT_WATCHED',
  [-17]: 'DCGM_ST_NO_PERMISSION',
  [-18]: 'DCGM_ST_GPU_IS_LOST',
  [-19]: 'DCGM_ST_RESET_REQUIRED',
  [-20]: 'DCGM_ST_FUNCTION_NOT_FOUND',
  [-21]: 'DCGM_ST_CONNECTION_NOT_VALID',
  [-22]: 'DCGM_ST_GPU_NOT_SUPPORTED',
  [-23]: 'DCGM_ST_GROUP_INCOMPATIBLE',
  [-24]: 'DCGM_ST_MAX_LIMIT',
  [-25]: 'DCGM_ST_LIBRARY_NOT_FOUND',
  [-26]: 'DCGM_ST_DUPLICATE_KEY',
  [-27]: 'DCGM_ST_GPU_IN_SYNC_BOOST_GROUP',
  [-28]: 'DCGM_ST_GPU_NOT_IN_SYNC_BOOST_GROUP',
  [-29]: 'DCGM_ST_REQUIRES_ROOT',
  [-30]: 'DCGM_ST_NVVS_ERROR',
  [-31]: 'DCGM_ST_INSUFFICIENT_SIZE',
  [-32]: 'DCGM_ST_FIELD_UNSUPPORTED_BY_API',
  [-33]: 'DCGM_ST_MODULE_NOT_LOADED',
  [-34]: 'DCGM_ST_IN_USE',
  [-35]: 'DCGM_ST_GROUP_IS_EMPTY',
  [-36]: 'DCGM_ST_PROFILING_NOT_SUPPORTED',
  [-37]: 'DCGM_ST_PROFILING_LIBRARY_ERROR',
  [-38]: 'DCGM_ST_PROFILING_MULTI_PASS',
  [-39]: 'DCGM_ST_DIAG_ALREADY_RUNNING',
  [-40]: 'DCGM_ST_DIAG_BAD_JSON',
  [-41]: 'DCGM_ST_DIAG_BAD_LAUNCH',
  [-42]: 'DCGM_ST_DIAG_UNUSED',
  [-43]: 'DCGM_ST_DIAG_THRESHOLD_EXCEEDED',
  [-44]: 'DCGM_ST_INSUFFICIENT_DRIVER_VERSION',
  [-45]: 'DCGM_ST_INSTANCE_NOT_FOUND',
  [-46]: 'DCGM_ST_COMPUTE_INSTANCE_NOT_FOUND',
  [-47]: 'DCGM_ST_CHILD_NOT_KILLED',
  [-48]: 'DCGM_ST_3RD_PARTY_LIBRARY_ERROR',
  [-49]: 'DCGM_ST_INSUFFICIENT_RESOURCES',
  [-50]: 'DCGM_ST_PLUGIN_EXCEPTION',
  [-51]: 'DCGM_ST_NVVS_ISOLATE_ERROR',
  [-52]: 'DCGM_ST_NVVS_BINARY_NOT_FOUND',
  [-53]: 'DCGM_ST_NVVS_KILLED',
  [-54]: 'DCGM_ST_PAUSED',
  [-55]: 'DCGM_ST_ALREADY_INITIALIZED',
  [-56]: 'DCGM_ST_NVML_NOT_LOADED',
  [-57]: 'DCGM_ST_NVML_DRIVER_TIMEOUT',
  [-58]: 'DCGM_ST_NVVS_NO_AVAILABLE_TEST',
  [-59]: 'DCGM_ST_MNDIAG_CONNECTION_NOT_AVAILABLE',
  [-60]: 'DCGM_ST_MNDIAG_CONNECTION_UNAUTHORIZED',
  [-61]: 'DCGM_ST_REMOTE_SSH_CONNECTION_FAILED',
  [-62]: 'DCGM_ST_CHILD_SPAWN_FAILED',
  [-63]: 'DCGM_ST_FILE_IO_ERROR',
  [-64]: 'DCGM_ST_CHILD_SIGNAL_RECEIVED',
  [-65]: 'DCGM_ST_CALLER_ALREADY_STOPPED',
  [-66]: 'DCGM_ST_DIAG_STOPPED',
  [-67]: 'DCGM_ST_GPUS_DETACHED',
});

export function dcgmReturnName(code: number): string {
  return DCGM_RETURN_NAMES[code] ?? `DCGM return code ${code}`;
}
