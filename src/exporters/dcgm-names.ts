/**
 * dcgm-exporter compatibility: the metric names, types and units dcgm-exporter emits for its
 * default counter set (etc/default-counters.csv in NVIDIA/dcgm-exporter), mapped from our fields.
 * Written from the published file as our own data; `scale` converts our base units to DCGM's.
 */
import type { FieldName } from '../fields.js';
import type { DeviceSample } from '../snapshot.js';

export interface DcgmMetricSpec {
  readonly name: string;
  readonly type: 'gauge' | 'counter';
  readonly field: FieldName;
  /** Multiply our base-unit value by this (Hz → MHz, bytes → MiB, J → mJ, ratio → %). */
  readonly scale: number;
  readonly unit: string;
  readonly help: string;
  /**
   * Every field the value is computed from (`field` first); all must be ok for a value. Usually
   * just `field`.
   */
  readonly fields: readonly FieldName[];
  /** When set, the value is computed from the device sample instead of `field × scale`. */
  readonly value?: (d: DeviceSample) => number;
}

const MHZ = 1e-6;
const MIB = 1 / 1048576;

function m(
  name: string,
  type: 'gauge' | 'counter',
  field: FieldName,
  scale: number,
  unit: string,
  help: string,
  derived?: { fields: readonly FieldName[]; value: (d: DeviceSample) => number },
): DcgmMetricSpec {
  return Object.freeze({ name, type, field, scale, unit, help, fields: Object.freeze(derived ? [...derived.fields] : [field]), ...(derived ? { value: derived.value } : {}) });
}

/**
 * DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL is DCGM field 449 (DCGM_FI_DEV_NVLINK_THROUGHPUT_TOTAL), and
 * DCGM computes it as a rate, not a running total (NVIDIA/DCGM dcgmlib/src/DcgmCacheManager.cpp,
 * ReadAndCacheNvLinkBandwidth): the NVML NVLink data counters (NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX
 * + _RX, KiB, all links) read twice, their difference over the time between the reads, divided by
 * 1,000, truncated to an integer, in the unit DCGM declares for the field, MB/s
 * (dcgm_fields.cpp: DCGM_FIELD_UNIT_BW_MBPS). dcgm-exporter publishes that number under the
 * counter type its default-counters.csv gives the row. Here: the same number from the same
 * counters (the sum of the links' TX and RX rates, which this package measures between two
 * samples the same way), under the same name and type, so a panel built on dcgm-exporter shows
 * the same value. A counter reset (driver reload, GPU reset) or a first reading gives no value
 * for one sample, where DCGM would publish 0 (the first reading) or a negative number.
 */
function nvlinkBandwidthTotal(d: DeviceSample): number {
  return Math.trunc((d.fields.nvlinkTxBytesPerSecond! + d.fields.nvlinkRxBytesPerSecond!) / 1024 / 1000);
}

/**
 * dcgm-exporter's default counters that have an equivalent here, in its file's order. Not emitted:
 * DCGM_FI_DEV_VGPU_LICENSE_STATUS (vGPU licensing is out of scope: bare-metal and passthrough GPUs).
 */
export const DCGM_DEFAULT_METRICS: readonly DcgmMetricSpec[] = Object.freeze([
  m('DCGM_FI_DEV_SM_CLOCK', 'gauge', 'smClockHz', MHZ, 'MHz', 'SM clock frequency (in MHz).'),
  m('DCGM_FI_DEV_MEM_CLOCK', 'gauge', 'memoryClockHz', MHZ, 'MHz', 'Memory clock frequency (in MHz).'),
  m('DCGM_FI_DEV_MEMORY_TEMP', 'gauge', 'temperatureMemoryCelsius', 1, 'C', 'Memory temperature (in C).'),
  m('DCGM_FI_DEV_GPU_TEMP', 'gauge', 'temperatureGpuCelsius', 1, 'C', 'GPU temperature (in C).'),
  m('DCGM_FI_DEV_POWER_USAGE', 'gauge', 'powerWatts', 1, 'W', 'Power draw (in W).'),
  m('DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION', 'counter', 'energyJoules', 1000, 'mJ', 'Total energy consumption since boot (in mJ).'),
  m('DCGM_FI_DEV_PCIE_REPLAY_COUNTER', 'counter', 'pcieReplayErrors', 1, 'count', 'Total number of PCIe retries.'),
  m('DCGM_FI_DEV_GPU_UTIL', 'gauge', 'gpuUtilizationRatio', 100, '%', 'GPU utilization (in %).'),
  m('DCGM_FI_DEV_MEM_COPY_UTIL', 'gauge', 'memoryUtilizationRatio', 100, '%', 'Memory utilization (in %).'),
  m('DCGM_FI_DEV_ENC_UTIL', 'gauge', 'encoderUtilizationRatio', 100, '%', 'Encoder utilization (in %).'),
  m('DCGM_FI_DEV_DEC_UTIL', 'gauge', 'decoderUtilizationRatio', 100, '%', 'Decoder utilization (in %).'),
  m('DCGM_FI_DEV_XID_ERRORS', 'gauge', 'lastXid', 1, 'code', 'Value of the last XID error encountered.'),
  m('DCGM_FI_DEV_FB_FREE', 'gauge', 'memoryFreeBytes', MIB, 'MiB', 'Framebuffer memory free (in MiB).'),
  m('DCGM_FI_DEV_FB_USED', 'gauge', 'memoryUsedBytes', MIB, 'MiB', 'Framebuffer memory used (in MiB).'),
  m('DCGM_FI_DEV_FB_RESERVED', 'gauge', 'memoryReservedBytes', MIB, 'MiB', 'Framebuffer memory reserved (in MiB).'),
  m(
    'DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL',
    'counter',
    'nvlinkTxBytesPerSecond',
    1,
    'MB/s',
    'Total number of NVLink bandwidth counters for all lanes.',
    { fields: ['nvlinkTxBytesPerSecond', 'nvlinkRxBytesPerSecond'], value: nvlinkBandwidthTotal },
  ),
  m(
    'DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS',
    'counter',
    'remappedRowsUncorrectable',
    1,
    'count',
    'Number of remapped rows for uncorrectable errors',
  ),
  m('DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS', 'counter', 'remappedRowsCorrectable', 1, 'count', 'Number of remapped rows for correctable errors'),
  m('DCGM_FI_DEV_ROW_REMAP_FAILURE', 'gauge', 'remappedRowsFailure', 1, 'bool', 'Whether remapping of rows has failed'),
  m('DCGM_FI_PROF_GR_ENGINE_ACTIVE', 'gauge', 'grEngineActiveRatio', 1, 'ratio', 'Ratio of time the graphics engine is active.'),
  m('DCGM_FI_PROF_PIPE_TENSOR_ACTIVE', 'gauge', 'tensorActiveRatio', 1, 'ratio', 'Ratio of cycles the tensor (HMMA) pipe is active.'),
  m(
    'DCGM_FI_PROF_DRAM_ACTIVE',
    'gauge',
    'dramActiveRatio',
    1,
    'ratio',
    'Ratio of cycles the device memory interface is active sending or receiving data.',
  ),
  m('DCGM_FI_PROF_PCIE_TX_BYTES', 'gauge', 'pcieTxBytesPerSecond', 1, 'B/s', 'The rate of data transmitted over the PCIe bus - including both protocol headers and data payloads - in bytes per second.'),
  m('DCGM_FI_PROF_PCIE_RX_BYTES', 'gauge', 'pcieRxBytesPerSecond', 1, 'B/s', 'The rate of data received over the PCIe bus - including both protocol headers and data payloads - in bytes per second.'),
]);

/** The label names dcgm-exporter puts on every GPU series, in its order (its released Hostname label). */
export const DCGM_LABEL_NAMES = ['gpu', 'UUID', 'pci_bus_id', 'device', 'modelName', 'Hostname', 'DCGM_FI_DRIVER_VERSION'] as const;

/**
 * The labels of a MIG instance's series, in dcgm-exporter's order (rendermetrics: GPU_I_PROFILE and
 * GPU_I_ID after modelName). pci_bus_id and DCGM_FI_DRIVER_VERSION (the GPU's, the same on all its
 * instances) are left off: with pod, namespace, container and Prometheus's job and instance they
 * would make 14 labels, over the 12 this package keeps to; join on gpu / UUID for them.
 */
export const DCGM_MIG_LABEL_NAMES = ['gpu', 'UUID', 'device', 'modelName', 'GPU_I_PROFILE', 'GPU_I_ID', 'Hostname'] as const;

/** The fields dcgm mode exports (its per-field health covers these only). */
export const DCGM_FIELDS: readonly FieldName[] = Object.freeze([...new Set(DCGM_DEFAULT_METRICS.flatMap((s) => s.fields))]);
