/**
 * OpenTelemetry: observable instruments named by the hardware semantic conventions (hw.gpu.*,
 * hw.power, hw.energy, hw.temperature, hw.errors, hw.status), fed by one batch callback that reads
 * one snapshot per collection. Signals the conventions do not define (clocks, SM and pipe activity)
 * use extension names in the same style, listed in EXTENSION_INSTRUMENTS.
 */
import type { Attributes, BatchObservableResult, Meter, Observable } from '@opentelemetry/api';
import type { DeviceSample } from '../snapshot.js';
import type { GpuTelemetry } from '../telemetry.js';
import { asProvider, type GpuMetricsSource } from './source.js';

export interface OtelExportOptions {
  /** hw.vendor (default "NVIDIA"). */
  vendor?: string;
}

export interface RegisteredOtelMetrics {
  /** Removes the batch callback; the instruments stay registered with the meter but report nothing. */
  unregister(): void;
}

/** Extension instruments (not in the semantic conventions), documented in the README. */
export const EXTENSION_INSTRUMENTS = Object.freeze([
  'hw.gpu.clock.frequency',
  'hw.gpu.sm.utilization',
  'hw.gpu.sm.occupancy',
  'hw.gpu.pipe.utilization',
  'hw.gpu.dram.utilization',
] as const);

export function registerOtelGpuMetrics(meter: Meter, source: GpuMetricsSource, options: OtelExportOptions = {}): RegisteredOtelMetrics {
  const provider = asProvider(source);
  const vendor = options.vendor ?? 'NVIDIA';

  const io = meter.createObservableCounter('hw.gpu.io', { unit: 'By', description: 'Bytes sent and received over the GPU\'s PCIe link.' });
  const memLimit = meter.createObservableUpDownCounter('hw.gpu.memory.limit', { unit: 'By', description: 'Size of the GPU memory.' });
  const memUsage = meter.createObservableUpDownCounter('hw.gpu.memory.usage', { unit: 'By', description: 'GPU memory in use.' });
  const memUtil = meter.createObservableGauge('hw.gpu.memory.utilization', { unit: '1', description: 'Fraction of GPU memory in use.' });
  const util = meter.createObservableGauge('hw.gpu.utilization', { unit: '1', description: 'Fraction of time the GPU (or its encoder/decoder) was busy.' });
  const power = meter.createObservableGauge('hw.power', { unit: 'W', description: 'Instantaneous power drawn by the GPU board.' });
  const energy = meter.createObservableCounter('hw.energy', { unit: 'J', description: 'Energy consumed by the GPU board.' });
  const temperature = meter.createObservableGauge('hw.temperature', { unit: 'Cel', description: 'GPU temperature (die, and memory where reported).' });
  const errors = meter.createObservableCounter('hw.errors', { unit: '{error}', description: 'GPU errors: ECC (corrected, uncorrected) and XID.' });
  const status = meter.createObservableUpDownCounter('hw.status', { unit: '1', description: '1 for the GPU\'s current state, 0 for the others.' });
  const clock = meter.createObservableGauge('hw.gpu.clock.frequency', { unit: 'Hz', description: 'GPU clock frequency (extension; attribute hw.gpu.clock.domain).' });
  const smUtil = meter.createObservableGauge('hw.gpu.sm.utilization', { unit: '1', description: 'Fraction of time SMs had a resident warp (extension).' });
  const smOcc = meter.createObservableGauge('hw.gpu.sm.occupancy', { unit: '1', description: 'Resident warps over the maximum (extension).' });
  const pipe = meter.createObservableGauge('hw.gpu.pipe.utilization', { unit: '1', description: 'Fraction of cycles a pipe was active (extension; attribute hw.gpu.pipe: tensor, fp64, fp32, fp16).' });
  const dram = meter.createObservableGauge('hw.gpu.dram.utilization', { unit: '1', description: 'Fraction of cycles the memory interface was busy (extension).' });
  const observables: Observable[] = [io, memLimit, memUsage, memUtil, util, power, energy, temperature, errors, status, clock, smUtil, smOcc, pipe, dram];

  // hw.gpu.io is a byte counter; NVML gives rates, so bytes are integrated between samples.
  const ioTotals = new Map<string, { tx: number; rx: number; seq: number; at: number }>();

  const attributesOf = (gpu: GpuTelemetry, d: DeviceSample): Attributes => ({
    'hw.id': d.uuid,
    'hw.type': 'gpu',
    'hw.vendor': vendor,
    'hw.model': d.name,
    'hw.name': `GPU ${d.index}`,
    'hw.driver_version': gpu.driver.driverVersion,
  });

  const callback = (result: BatchObservableResult): void => {
    const gpu = provider.telemetry();
    if (!gpu) return;
    let snap;
    try {
      snap = gpu.snapshot();
    } catch {
      return;
    }
    for (const d of snap.devices) {
      const base = attributesOf(gpu, d);
      const states = ['ok', 'degraded', 'failed'] as const;
      const state = d.state === 'ok' ? 'ok' : d.state === 'stale' ? 'degraded' : 'failed';
      for (const s of states) result.observe(status, s === state ? 1 : 0, { ...base, 'hw.state': s });
      if (snap.stale) continue; // no value is a real current reading while the sampler is stuck
      const f = d.fields;
      const observe = (o: Observable, v: number | null, extra?: Attributes) => {
        if (v !== null) result.observe(o, v, extra ? { ...base, ...extra } : base);
      };
      observe(memLimit, f.memoryTotalBytes);
      observe(memUsage, f.memoryUsedBytes);
      if (f.memoryUsedBytes !== null && f.memoryTotalBytes) observe(memUtil, f.memoryUsedBytes / f.memoryTotalBytes);
      observe(util, f.gpuUtilizationRatio, { 'hw.gpu.task': 'general' });
      observe(util, f.encoderUtilizationRatio, { 'hw.gpu.task': 'encoder' });
      observe(util, f.decoderUtilizationRatio, { 'hw.gpu.task': 'decoder' });
      observe(power, f.powerWatts);
      observe(energy, f.energyJoules);
      observe(temperature, f.temperatureGpuCelsius, { 'hw.sensor_location': 'gpu' });
      observe(temperature, f.temperatureMemoryCelsius, { 'hw.sensor_location': 'memory' });
      observe(errors, f.eccVolatileCorrectedErrors, { 'error.type': 'ecc_corrected' });
      observe(errors, f.eccVolatileUncorrectedErrors, { 'error.type': 'ecc_uncorrected' });
      observe(errors, f.xidErrors, { 'error.type': 'xid' });
      observe(clock, f.smClockHz, { 'hw.gpu.clock.domain': 'sm' });
      observe(clock, f.memoryClockHz, { 'hw.gpu.clock.domain': 'memory' });
      observe(clock, f.graphicsClockHz, { 'hw.gpu.clock.domain': 'graphics' });
      observe(smUtil, f.smActiveRatio);
      observe(smOcc, f.smOccupancyRatio);
      observe(pipe, f.tensorActiveRatio, { 'hw.gpu.pipe': 'tensor' });
      observe(pipe, f.fp64ActiveRatio, { 'hw.gpu.pipe': 'fp64' });
      observe(pipe, f.fp32ActiveRatio, { 'hw.gpu.pipe': 'fp32' });
      observe(pipe, f.fp16ActiveRatio, { 'hw.gpu.pipe': 'fp16' });
      observe(dram, f.dramActiveRatio);
      if (f.pcieTxBytesPerSecond !== null && f.pcieRxBytesPerSecond !== null) {
        const t = ioTotals.get(d.uuid) ?? { tx: 0, rx: 0, seq: snap.seq, at: snap.takenAt };
        if (snap.seq !== t.seq) {
          const dt = Math.max(0, (snap.takenAt - t.at) / 1000);
          t.tx += f.pcieTxBytesPerSecond * dt;
          t.rx += f.pcieRxBytesPerSecond * dt;
          t.seq = snap.seq;
          t.at = snap.takenAt;
        }
        ioTotals.set(d.uuid, t);
        result.observe(io, t.tx, { ...base, 'network.io.direction': 'transmit' });
        result.observe(io, t.rx, { ...base, 'network.io.direction': 'receive' });
      }
    }
  };
  meter.addBatchObservableCallback(callback, observables);
  return {
    unregister() {
      meter.removeBatchObservableCallback(callback, observables);
    },
  };
}
