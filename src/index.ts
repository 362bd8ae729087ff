export { openGpuTelemetry, GpuTelemetry } from './telemetry.js';
export type { DriverInfo, SamplerStats, GpuTelemetryEvents, Backends, BackendStatus } from './telemetry.js';
export type { GpuTelemetryOptions, LibraryPaths, SourceSelection } from './options.js';
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
} from './snapshot.js';
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
