export { openGpuTelemetry, GpuTelemetry } from './telemetry.js';
export type { DriverInfo, SamplerStats, GpuTelemetryEvents, Backends, BackendStatus } from './telemetry.js';
export type { DcgmConnection, DcgmMode, GpuTelemetryOptions, LibraryPaths, SourceSelection } from './options.js';
export type {
  DeviceInfo,
  DeviceSample,
  DeviceState,
  FieldSources,
  FieldStatuses,
  FieldValues,
  GpuSnapshot,
  NvlinkSample,
  ProcessSample,
  ProcessUtilizationState,
  MigInstanceSample,
  MigComputeInstance,
  MigFieldName,
  MigFieldValues,
  MigFieldStatuses,
  MigFieldSources,
} from './snapshot.js';
export { MIG_FIELD_NAMES } from './snapshot.js';
export {
  FIELDS,
  FIELD_NAMES,
  FIELD_STATUSES,
  FIELD_SOURCES,
  CLOCK_EVENT_REASONS,
  decodeClockEventReasons,
} from './fields.js';
export type { FieldName, FieldSpec, FieldStatus, FieldSource, FieldUnit, FieldKind, ClockEventReason } from './fields.js';
export { GpuTelemetryError } from './errors.js';
export type { GpuTelemetryErrorCode, GpuTelemetryErrorDetails } from './errors.js';
export { listScenarios } from './simulator.js';
export type { ScenarioInfo } from './simulator.js';
export { XID_DESCRIPTIONS } from './xid.js';
export type { XidEvent } from './xid.js';
export { registerGpuMetrics } from './exporters/prometheus.js';
export type { PrometheusExportOptions, RegisteredGpuMetrics } from './exporters/prometheus.js';
export type { GpuMetricsSource, TelemetryProvider } from './exporters/source.js';
export { createTelemetryServer } from './server.js';
export type { TelemetryServer, TelemetryServerOptions, CaptureEndpointOptions } from './server.js';
export { TelemetrySupervisor } from './supervisor.js';
export type { SupervisorOptions } from './supervisor.js';
export { registerOtelGpuMetrics, EXTENSION_INSTRUMENTS } from './exporters/otel.js';
export type { OtelExportOptions, RegisteredOtelMetrics } from './exporters/otel.js';
export { DCGM_DEFAULT_METRICS, DCGM_LABEL_NAMES } from './exporters/dcgm-names.js';
export type { DcgmMetricSpec } from './exporters/dcgm-names.js';
export {
  createKernelCapture,
  KernelCapture,
  CaptureHandle,
  captureStats,
  KernelTrace,
  CaptureStore,
  CAPTURE_LIMITS,
  JS_NVTX_DOMAIN,
} from './capture/index.js';
export type {
  KernelCaptureOptions,
  CaptureState,
  CaptureProgress,
  CaptureStats,
  PrewarmResult,
  CaptureOptions,
  CaptureKinds,
  KernelTraceMeta,
  CaptureStopReason,
  KernelRecord,
  MemcpyRecord,
  MemsetRecord,
  ApiCallRecord,
  RangeRecord,
  StepRecord,
  MemcpyDirection,
  TimedRecord,
  TraceSummary,
  KernelNameStats,
  DeviceBusy,
  StreamBusy,
  IdleGapStats,
  StepSummary,
  MemcpyVolume,
  DistributionNs,
  StoreOptions,
  SavedCapture,
  StoredCapture,
} from './capture/index.js';
export { armProcess, listInjectedProcesses, prewarmProcess, injectLibraryPath, PROCESS_CAPTURE_LIMITS } from './inject/index.js';
export type { ProcessCaptureOptions, InjectedProcess, ListInjectedOptions, ProcessPrewarmResult } from './inject/index.js';
export { nvtx } from './nvtx.js';
export type { Nvtx } from './nvtx.js';
export {
  createKubernetesPods,
  KubernetesPods,
  PodResourcesError,
  DEFAULT_POD_RESOURCES_SOCKET,
  parseProcCgroup,
  readProcessCgroup,
  attributeGpuProcesses,
  attributeGpuPids,
  readPodLogDirectory,
  mapPodDevices,
  parseDeviceId,
} from './kubernetes/index.js';
export type {
  KubernetesOptions,
  KubernetesStatus,
  PodResourcesErrorCode,
  ContainerRef,
  GpuAssignment,
  MigAssignment,
  PodDeviceMap,
  CgroupIdentity,
  ProcessAttribution,
  DeviceIdentifier,
} from './kubernetes/index.js';
