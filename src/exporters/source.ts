/**
 * What an exporter reads: a GpuTelemetry, or something that may or may not have one right now
 * (the `serve` supervisor, which keeps answering while the driver is away).
 */
import type { GpuTelemetryError } from '../errors.js';
import type { GpuTelemetry } from '../telemetry.js';

export interface TelemetryProvider {
  /** The open instance, or null while there is none (driver missing, reopening). */
  telemetry(): GpuTelemetry | null;
  /** Why there is no instance. */
  lastError(): GpuTelemetryError | null;
}

export type GpuMetricsSource = GpuTelemetry | TelemetryProvider;

export function asProvider(source: GpuMetricsSource): TelemetryProvider {
  if ('telemetry' in source && typeof source.telemetry === 'function') return source;
  const gpu = source as GpuTelemetry;
  return {
    telemetry: () => (gpu.closed ? null : gpu),
    lastError: () => null,
  };
}
