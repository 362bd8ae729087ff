/**
 * The field catalogue: every per-device value this package reports, with its unit, kind and the
 * vendor call it comes from. Order matches native/sampler/fields.def (test/fields.test.ts checks),
 * and the exporters read their names from here so they cannot drift apart.
 */

export type FieldUnit =
  | 'Hz'
  | 'bytes'
  | 'bytes/s'
  | 'W'
  | 'J'
  | 'Cel'
  | 'ratio'
  | 'count'
  | 'errors'
  | 'bitmask'
  | 'pstate'
  | 'generation'
  | 'lanes'
  | 'links'
  | 'boolean'
  | 'xid';

export type FieldKind = 'gauge' | 'counter';

export interface FieldSpec {
  /** camelCase name with its unit in it. */
  readonly name: string;
  readonly unit: FieldUnit;
  readonly kind: FieldKind;
  readonly help: string;
  /** The NVML entry point that answers it (for messages). */
  readonly nvmlCall: string;
  /** Prometheus name in the default naming (gpu_ prefix, base units). */
  readonly prometheus: string;
  /** Sources that can provide it, in the order they are preferred. */
  readonly sources: readonly FieldSource[];
}

function f<N extends string>(
  name: N,
  unit: FieldUnit,
  kind: FieldKind,
  prometheus: string,
  nvmlCall: string,
  help: string,
  sources: readonly FieldSource[] = ['nvml'],
): FieldSpec & { readonly name: N } {
  return Object.freeze({ name, unit, kind, prometheus, nvmlCall, help, sources: Object.freeze([...sources]) });
}

export const FIELDS = Object.freeze([
  f('smClockHz', 'Hz', 'gauge', 'gpu_sm_clock_hertz', 'nvmlDeviceGetClockInfo', 'Current SM clock.'),
  f('memoryClockHz', 'Hz', 'gauge', 'gpu_memory_clock_hertz', 'nvmlDeviceGetClockInfo', 'Current memory clock.'),
  f('graphicsClockHz', 'Hz', 'gauge', 'gpu_graphics_clock_hertz', 'nvmlDeviceGetClockInfo', 'Current graphics clock.'),
  f('smClockMaxHz', 'Hz', 'gauge', 'gpu_sm_clock_max_hertz', 'nvmlDeviceGetMaxClockInfo', 'Maximum SM clock.'),
  f('memoryClockMaxHz', 'Hz', 'gauge', 'gpu_memory_clock_max_hertz', 'nvmlDeviceGetMaxClockInfo', 'Maximum memory clock.'),
  f('graphicsClockMaxHz', 'Hz', 'gauge', 'gpu_graphics_clock_max_hertz', 'nvmlDeviceGetMaxClockInfo', 'Maximum graphics clock.'),
  f(
    'clockEventReasons',
    'bitmask',
    'gauge',
    'gpu_clock_event_reasons',
    'nvmlDeviceGetCurrentClocksEventReasons',
    'Why clocks are below their maximum, as NVML clock-event (throttle) reason bits; decoded in clockEventReasons.',
  ),
  f('powerWatts', 'W', 'gauge', 'gpu_power_watts', 'nvmlDeviceGetPowerUsage', 'Power draw of the board.'),
  f('powerLimitWatts', 'W', 'gauge', 'gpu_power_limit_watts', 'nvmlDeviceGetEnforcedPowerLimit', 'Enforced power limit.'),
  f(
    'energyJoules',
    'J',
    'counter',
    'gpu_energy_joules_total',
    'nvmlDeviceGetTotalEnergyConsumption',
    'Energy consumed since the driver was loaded.',
  ),
  f('temperatureGpuCelsius', 'Cel', 'gauge', 'gpu_temperature_celsius', 'nvmlDeviceGetTemperatureV', 'GPU die temperature.'),
  f(
    'temperatureMemoryCelsius',
    'Cel',
    'gauge',
    'gpu_memory_temperature_celsius',
    'nvmlDeviceGetFieldValues(NVML_FI_DEV_MEMORY_TEMP)',
    'Memory (HBM) temperature.',
  ),
  f('fanSpeedRatio', 'ratio', 'gauge', 'gpu_fan_speed_ratio', 'nvmlDeviceGetFanSpeed', 'Fan speed as a fraction of its maximum.'),
  f('performanceState', 'pstate', 'gauge', 'gpu_performance_state', 'nvmlDeviceGetPerformanceState', 'Performance state (0 = P0, fastest; 15 = P15).'),
  f(
    'gpuUtilizationRatio',
    'ratio',
    'gauge',
    'gpu_utilization_ratio',
    'nvmlDeviceGetUtilizationRates',
    'Fraction of the last sample period in which a kernel was running (coarse: not SM occupancy).',
  ),
  f(
    'memoryUtilizationRatio',
    'ratio',
    'gauge',
    'gpu_memory_utilization_ratio',
    'nvmlDeviceGetUtilizationRates',
    'Fraction of the last sample period in which device memory was read or written.',
  ),
  f('memoryTotalBytes', 'bytes', 'gauge', 'gpu_memory_total_bytes', 'nvmlDeviceGetMemoryInfo_v2', 'Total framebuffer memory (unified-memory GPUs: the system MemTotal).', ['nvml', 'meminfo']),
  f('memoryUsedBytes', 'bytes', 'gauge', 'gpu_memory_used_bytes', 'nvmlDeviceGetMemoryInfo_v2', 'Allocated framebuffer memory (unified-memory GPUs: MemTotal - MemAvailable).', ['nvml', 'meminfo']),
  f('memoryFreeBytes', 'bytes', 'gauge', 'gpu_memory_free_bytes', 'nvmlDeviceGetMemoryInfo_v2', 'Unallocated framebuffer memory (unified-memory GPUs: MemAvailable).', ['nvml', 'meminfo']),
  f(
    'memoryReservedBytes',
    'bytes',
    'gauge',
    'gpu_memory_reserved_bytes',
    'nvmlDeviceGetMemoryInfo_v2',
    'Framebuffer memory reserved by the driver and firmware.',
  ),
  f(
    'gpuProcessMemoryBytes',
    'bytes',
    'gauge',
    'gpu_process_memory_bytes',
    'nvmlDeviceGetComputeRunningProcesses',
    'Sum of the memory used by the compute processes on the GPU.',
  ),
  f('processCount', 'count', 'gauge', 'gpu_processes', 'nvmlDeviceGetComputeRunningProcesses', 'Compute processes running on the GPU.'),
  f(
    'pcieTxBytesPerSecond',
    'bytes/s',
    'gauge',
    'gpu_pcie_transmit_bytes_per_second',
    'nvmlDeviceGetFieldValues(NVML_FI_DEV_PCIE_COUNT_TX_BYTES)',
    'PCIe bytes sent by the GPU per second (DCGM: over its update interval; GPM: between two GPM samples at least 100 ms apart; NVML: between the last two samples).',
    ['dcgm', 'gpm', 'nvml'],
  ),
  f(
    'pcieRxBytesPerSecond',
    'bytes/s',
    'gauge',
    'gpu_pcie_receive_bytes_per_second',
    'nvmlDeviceGetFieldValues(NVML_FI_DEV_PCIE_COUNT_RX_BYTES)',
    'PCIe bytes received by the GPU per second (DCGM: over its update interval; GPM: between two GPM samples at least 100 ms apart; NVML: between the last two samples).',
    ['dcgm', 'gpm', 'nvml'],
  ),
  f('pcieLinkGeneration', 'generation', 'gauge', 'gpu_pcie_link_generation', 'nvmlDeviceGetCurrPcieLinkGeneration', 'Current PCIe link generation.'),
  f('pcieLinkWidth', 'lanes', 'gauge', 'gpu_pcie_link_width', 'nvmlDeviceGetCurrPcieLinkWidth', 'Current PCIe link width.'),
  f(
    'pcieReplayErrors',
    'errors',
    'counter',
    'gpu_pcie_replay_errors_total',
    'nvmlDeviceGetFieldValues(NVML_FI_DEV_PCIE_REPLAY_COUNTER)',
    'PCIe replays (link-level retries) since the driver was loaded.',
  ),
  f(
    'eccVolatileCorrectedErrors',
    'errors',
    'counter',
    'gpu_ecc_volatile_corrected_errors_total',
    'nvmlDeviceGetTotalEccErrors',
    'Corrected ECC errors since the driver was loaded.',
  ),
  f(
    'eccVolatileUncorrectedErrors',
    'errors',
    'counter',
    'gpu_ecc_volatile_uncorrected_errors_total',
    'nvmlDeviceGetTotalEccErrors',
    'Uncorrected ECC errors since the driver was loaded.',
  ),
  f(
    'eccAggregateCorrectedErrors',
    'errors',
    'counter',
    'gpu_ecc_aggregate_corrected_errors_total',
    'nvmlDeviceGetTotalEccErrors',
    'Corrected ECC errors over the life of the device.',
  ),
  f(
    'eccAggregateUncorrectedErrors',
    'errors',
    'counter',
    'gpu_ecc_aggregate_uncorrected_errors_total',
    'nvmlDeviceGetTotalEccErrors',
    'Uncorrected ECC errors over the life of the device.',
  ),
  f('nvlinkActiveLinks', 'links', 'gauge', 'gpu_nvlink_active_links', 'nvmlDeviceGetNvLinkState', 'NVLink links that are up.'),
  f(
    'nvlinkTxBytesPerSecond',
    'bytes/s',
    'gauge',
    'gpu_nvlink_transmit_bytes_per_second',
    'nvmlDeviceGetFieldValues(NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX)',
    'NVLink data bytes sent per second, all links, between the last two samples.',
    ['dcgm', 'gpm', 'nvml'],
  ),
  f(
    'nvlinkRxBytesPerSecond',
    'bytes/s',
    'gauge',
    'gpu_nvlink_receive_bytes_per_second',
    'nvmlDeviceGetFieldValues(NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX)',
    'NVLink data bytes received per second, all links, between the last two samples.',
    ['dcgm', 'gpm', 'nvml'],
  ),
  f(
    'encoderUtilizationRatio',
    'ratio',
    'gauge',
    'gpu_encoder_utilization_ratio',
    'nvmlDeviceGetEncoderUtilization',
    'Fraction of time the video encoder (NVENC) was busy.',
  ),
  f(
    'decoderUtilizationRatio',
    'ratio',
    'gauge',
    'gpu_decoder_utilization_ratio',
    'nvmlDeviceGetDecoderUtilization',
    'Fraction of time the video decoder (NVDEC) was busy.',
  ),
  f(
    'retiredPagesPending',
    'boolean',
    'gauge',
    'gpu_retired_pages_pending',
    'nvmlDeviceGetFieldValues(NVML_FI_DEV_RETIRED_PENDING_SBE/DBE)',
    '1 when memory pages are waiting to be retired (a GPU reset is needed); pre-Ampere ECC GPUs.',
  ),
  f(
    'remappedRowsCorrectable',
    'count',
    'counter',
    'gpu_remapped_rows_correctable_total',
    'nvmlDeviceGetFieldValues(NVML_FI_DEV_REMAPPED_COR)',
    'Memory rows remapped because of correctable errors (Ampere and later).',
  ),
  f(
    'remappedRowsUncorrectable',
    'count',
    'counter',
    'gpu_remapped_rows_uncorrectable_total',
    'nvmlDeviceGetFieldValues(NVML_FI_DEV_REMAPPED_UNC)',
    'Memory rows remapped because of uncorrectable errors (Ampere and later).',
  ),
  f(
    'remappedRowsPending',
    'boolean',
    'gauge',
    'gpu_remapped_rows_pending',
    'nvmlDeviceGetFieldValues(NVML_FI_DEV_REMAPPED_PENDING)',
    '1 when a row remap is pending (takes effect at the next GPU reset).',
  ),
  f(
    'remappedRowsFailure',
    'boolean',
    'gauge',
    'gpu_remapped_rows_failure',
    'nvmlDeviceGetFieldValues(NVML_FI_DEV_REMAPPED_FAILURE)',
    '1 when a row remap failed (the GPU should be serviced).',
  ),
  f('xidErrors', 'errors', 'counter', 'gpu_xid_errors_total', 'nvmlEventSetWait_v2', 'XID errors reported by the driver since open.'),
  f(
    'lastXid',
    'xid',
    'gauge',
    'gpu_last_xid',
    'nvmlEventSetWait_v2',
    'Code of the most recent XID error since open (0: none seen).',
  ),
  f(
    'grEngineActiveRatio',
    'ratio',
    'gauge',
    'gpu_graphics_engine_active_ratio',
    'DCGM_FI_PROF_GR_ENGINE_ACTIVE / GPM',
    'Fraction of time the graphics/compute engine was active.',
    ['dcgm', 'gpm'],
  ),
  f(
    'smActiveRatio',
    'ratio',
    'gauge',
    'gpu_sm_active_ratio',
    'DCGM_FI_PROF_SM_ACTIVE / GPM',
    'Fraction of time at least one warp was resident on an SM, averaged over all SMs.',
    ['dcgm', 'gpm'],
  ),
  f(
    'smOccupancyRatio',
    'ratio',
    'gauge',
    'gpu_sm_occupancy_ratio',
    'DCGM_FI_PROF_SM_OCCUPANCY / GPM',
    'Resident warps as a fraction of the maximum, averaged over all SMs.',
    ['dcgm', 'gpm'],
  ),
  f(
    'tensorActiveRatio',
    'ratio',
    'gauge',
    'gpu_tensor_pipe_active_ratio',
    'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE / GPM',
    'Fraction of cycles the tensor (matrix) pipes were active.',
    ['dcgm', 'gpm'],
  ),
  f(
    'dramActiveRatio',
    'ratio',
    'gauge',
    'gpu_dram_active_ratio',
    'DCGM_FI_PROF_DRAM_ACTIVE / GPM',
    'Fraction of cycles the device memory interface was sending or receiving data.',
    ['dcgm', 'gpm'],
  ),
  f(
    'fp64ActiveRatio',
    'ratio',
    'gauge',
    'gpu_fp64_pipe_active_ratio',
    'DCGM_FI_PROF_PIPE_FP64_ACTIVE / GPM',
    'Fraction of cycles the FP64 pipes were active.',
    ['dcgm', 'gpm'],
  ),
  f(
    'fp32ActiveRatio',
    'ratio',
    'gauge',
    'gpu_fp32_pipe_active_ratio',
    'DCGM_FI_PROF_PIPE_FP32_ACTIVE / GPM',
    'Fraction of cycles the FP32 pipes were active.',
    ['dcgm', 'gpm'],
  ),
  f(
    'fp16ActiveRatio',
    'ratio',
    'gauge',
    'gpu_fp16_pipe_active_ratio',
    'DCGM_FI_PROF_PIPE_FP16_ACTIVE / GPM',
    'Fraction of cycles the FP16 pipes were active.',
    ['dcgm', 'gpm'],
  ),
] as const);

export type FieldName = (typeof FIELDS)[number]['name'];

/** Field names in snapshot order. */
export const FIELD_NAMES: readonly FieldName[] = Object.freeze(FIELDS.map((spec) => spec.name));

export const FIELD_BY_NAME: ReadonlyMap<string, FieldSpec> = new Map(FIELDS.map((spec) => [spec.name, spec]));

/** Whether a value is a real reading. Index = native code (native/sampler/sample.h). */
export const FIELD_STATUSES = ['ok', 'not_supported', 'no_permission', 'gpu_lost', 'stale', 'error', 'pending'] as const;
export type FieldStatus = (typeof FIELD_STATUSES)[number];

/** Where a value came from. Index = native code. */
export const FIELD_SOURCES = ['none', 'nvml', 'dcgm', 'gpm', 'meminfo', 'derived'] as const;
export type FieldSource = (typeof FIELD_SOURCES)[number];

/** NVML clock-event (formerly "throttle") reason bits, as nvml.h defines them. */
export const CLOCK_EVENT_REASONS = Object.freeze([
  { bit: 0x1, name: 'gpu_idle' },
  { bit: 0x2, name: 'applications_clocks_setting' },
  { bit: 0x4, name: 'sw_power_cap' },
  { bit: 0x8, name: 'hw_slowdown' },
  { bit: 0x10, name: 'sync_boost' },
  { bit: 0x20, name: 'sw_thermal_slowdown' },
  { bit: 0x40, name: 'hw_thermal_slowdown' },
  { bit: 0x80, name: 'hw_power_brake_slowdown' },
  { bit: 0x100, name: 'display_clock_setting' },
] as const);
export type ClockEventReason = (typeof CLOCK_EVENT_REASONS)[number]['name'] | `unknown_0x${string}`;

export function decodeClockEventReasons(mask: number): ClockEventReason[] {
  const out: ClockEventReason[] = [];
  let rest = mask;
  for (const r of CLOCK_EVENT_REASONS) {
    if (mask % (r.bit * 2) >= r.bit) {
      out.push(r.name);
      rest -= r.bit;
    }
  }
  if (rest > 0) out.push(`unknown_0x${rest.toString(16)}`);
  return out;
}
