/** OpenTelemetry: the hw.gpu.* instruments with the semantic-convention attributes. */
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { registerOtelGpuMetrics } from '../src/index.js';
import { nextSamples, withTelemetry } from './helpers.js';

describe('registerOtelGpuMetrics', () => {
  it('reports hw.gpu.* instruments with hw.id, hw.type, hw.vendor, hw.model, hw.name, hw.driver_version', async () => {
    await withTelemetry({ simulate: 'h100-sxm-8', intervalMs: 100 }, async (gpu) => {
      await nextSamples(gpu, 3);
      const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
      const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
      const provider = new MeterProvider({ readers: [reader] });
      registerOtelGpuMetrics(provider.getMeter('gpu-telemetry-test'), gpu);
      const { resourceMetrics } = await reader.collect();
      const metrics = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
      const byName = new Map(metrics.map((m) => [m.descriptor.name, m]));
      for (const name of [
        'hw.gpu.io',
        'hw.gpu.memory.limit',
        'hw.gpu.memory.usage',
        'hw.gpu.memory.utilization',
        'hw.gpu.utilization',
        'hw.power',
        'hw.energy',
        'hw.temperature',
        'hw.errors',
        'hw.status',
        'hw.gpu.clock.frequency',
        'hw.gpu.pipe.utilization',
      ]) {
        expect.soft(byName.has(name), name).toBe(true);
      }
      expect(byName.get('hw.gpu.memory.usage')!.descriptor.unit).toBe('By');
      const util = byName.get('hw.gpu.utilization')!;
      const general = util.dataPoints.filter((p) => p.attributes['hw.gpu.task'] === 'general');
      expect(general).toHaveLength(8);
      expect(general[0].attributes).toMatchObject({
        'hw.type': 'gpu',
        'hw.vendor': 'NVIDIA',
        'hw.model': 'NVIDIA H100 80GB HBM3 (simulated)',
        'hw.driver_version': '550.90.07',
      });
      expect(general.map((p) => p.attributes['hw.id']).sort()).toEqual(gpu.devices.map((d) => d.uuid).sort());
      const snap = gpu.snapshot();
      const mem = byName.get('hw.gpu.memory.limit')!.dataPoints.find((p) => p.attributes['hw.id'] === gpu.devices[0].uuid)!;
      expect(mem.value).toBe(snap.devices[0].fields.memoryTotalBytes);
      const status = byName.get('hw.status')!.dataPoints.filter((p) => p.attributes['hw.id'] === gpu.devices[0].uuid);
      expect(status.map((p) => [p.attributes['hw.state'], p.value])).toEqual([
        ['ok', 1],
        ['degraded', 0],
        ['failed', 0],
      ]);
      const pipes = byName.get('hw.gpu.pipe.utilization')!.dataPoints.filter((p) => p.attributes['hw.id'] === gpu.devices[0].uuid);
      expect(pipes.map((p) => p.attributes['hw.gpu.pipe']).sort()).toEqual(['fp16', 'fp32', 'fp64', 'tensor']);
      const io = byName.get('hw.gpu.io')!.dataPoints.filter((p) => p.attributes['hw.id'] === gpu.devices[0].uuid);
      expect(io.map((p) => p.attributes['network.io.direction']).sort()).toEqual(['receive', 'transmit']);
      await provider.shutdown();
    });
  });
});
