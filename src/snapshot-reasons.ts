/**
 * Why a field has no reading, in words: the `reasons` of a device sample. Built from the field, its
 * status and source and the vendor code of the last read (NVML or DCGM names, our own negative
 * codes for "symbol missing", "not probed", unified memory and the like).
 */
import { dcgmReturnName, nvmlReturnName } from './errors.js';
import { FIELD_BY_NAME, type FieldName, type FieldSource, type FieldStatus } from './fields.js';

export const MIG_REASON =
  'MIG mode is enabled on this GPU: whole-device utilisation is not supported, and its memory and process figures need privileges (per-instance figures come from its MIG devices)';
export const NVLINK_TOTALS = new Set<FieldName>(['nvlinkTxBytesPerSecond', 'nvlinkRxBytesPerSecond']);
// The whole-GPU figures NVIDIA's driver does not give in MIG mode (utilisation) or gives only with
// privileges (memory, processes): only their reasons name MIG mode (a fan-less board's fan is not MIG's doing).
export const MIG_AFFECTED = new Set<FieldName>([
  'gpuUtilizationRatio',
  'memoryUtilizationRatio',
  'memoryTotalBytes',
  'memoryUsedBytes',
  'memoryFreeBytes',
  'memoryReservedBytes',
  'gpuProcessMemoryBytes',
  'processCount',
]);

const PROFILING_REASON = 'needs DCGM (libdcgm.so.4/.3) or a Hopper-or-newer GPU with NVML GPM';
const NOT_PROBED_REASON: Partial<Record<FieldName, string>> = {
  grEngineActiveRatio: PROFILING_REASON,
  smActiveRatio: PROFILING_REASON,
  smOccupancyRatio: PROFILING_REASON,
  tensorActiveRatio: PROFILING_REASON,
  dramActiveRatio: PROFILING_REASON,
  fp64ActiveRatio: PROFILING_REASON,
  fp32ActiveRatio: PROFILING_REASON,
  fp16ActiveRatio: PROFILING_REASON,
  xidErrors: 'XID events are not being watched',
  lastXid: 'XID events are not being watched',
};

// DCGM's in-band sentinels (native kCodeDcgmBlank + offset) and our DCGM-specific codes.
const DCGM_SENTINEL_REASONS: Readonly<Record<number, string>> = {
  1000: 'DCGM has no value yet (BLANK: the first value arrives after one update cycle)',
  1001: 'DCGM answered NOT_FOUND for this field',
  1002: 'DCGM answered NOT_SUPPORTED for this field on this GPU',
  1003: 'DCGM answered NOT_PERMISSIONED: the host engine may not read this field',
  1004: 'DCGM answered with an unknown blank value',
  1010: 'DCGM answered with a value of the wrong type',
  1011: 'DCGM has not refreshed this value for several update cycles',
};

function dcgmReason(status: FieldStatus, code: number): string {
  const sentinel = DCGM_SENTINEL_REASONS[code];
  if (sentinel) return sentinel;
  if (code === -21) return 'the connection to the DCGM host engine is gone (DCGM_ST_CONNECTION_NOT_VALID); reconnecting';
  if (code === -34 || code === -37) {
    return `the GPU's profiling counters are held by another DCGM host engine or a profiler (${dcgmReturnName(code)})`;
  }
  const name = dcgmReturnName(code);
  switch (status) {
    case 'not_supported': return `not supported by this GPU (DCGM: ${name})`;
    case 'no_permission': return `DCGM: ${name}; the host engine needs more privileges to read it`;
    case 'pending': return `no reading yet (DCGM: ${name})`;
    case 'gpu_lost': return `the GPU is lost (DCGM: ${name})`;
    case 'stale': return `DCGM reports stale data (${name})`;
    default: return `DCGM failed: ${name} (${code})`;
  }
}

export function reasonFor(field: FieldName, status: FieldStatus, source: FieldSource, code: number): string {
  if (source === 'dcgm' && status !== 'ok') return dcgmReason(status, code);
  const call = FIELD_BY_NAME.get(field)?.nvmlCall ?? 'the vendor call';
  const via = source === 'nvml' || source === 'none' ? call : `${source}`;
  switch (status) {
    case 'not_supported':
      if (code === -1) return `the loaded NVML does not export ${call} (an older driver)`;
      if (code === -2) return NOT_PROBED_REASON[field] ?? 'no source provides this field here';
      if (code === -5) {
        return field === 'memoryReservedBytes'
          ? 'unified memory: there is no framebuffer reservation to report'
          : 'unified-memory GPU on NVLink-C2C: it has no meaningful PCIe link figures and no NVLink';
      }
      return `not supported by this GPU or driver (${via}: ${nvmlReturnName(code)})`;
    case 'no_permission':
      return `${via}: ${nvmlReturnName(code)}; this process needs more privileges to read it`;
    case 'gpu_lost':
      return 'the GPU is lost (NVML_ERROR_GPU_IS_LOST): fallen off the bus or needs a reset';
    case 'error':
      if (code === -6) return 'the system memory file (/proc/meminfo or meminfoPath) could not be read';
      if (code === -7) return `${via} answered with a value that is not a finite number`;
      if (code <= -100 && code >= -355) {
        return `${via} answered with value type ${-100 - code}, which this build does not know (a newer driver): not read`;
      }
      return `${via} failed: ${nvmlReturnName(code)} (${code})`;
    case 'pending':
      if (code === 1100) return 'no reading yet: GPM computes it between two samples at least 100 ms apart';
      return 'no reading yet: a rate needs two samples';
    case 'stale':
      return 'the sampler has not published a fresh sample (see staleReason)';
    default:
      return '';
  }
}
