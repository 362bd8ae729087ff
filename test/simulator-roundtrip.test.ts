/**
 * Every foundation field, read through the real loader and sampler from the simulator, with the
 * unit conversion checked exactly: the scenario's constant load makes each expected value known.
 * (The simulator's model is documented in README "Simulator": power = idle + (limit − idle) ×
 * 0.97 × load^1.3, temperature = ambient + (max − ambient) × load, …)
 */
import { describe, expect, it } from 'vitest';
import { openGpuTelemetry } from '../src/index.js';
import { constantScenario, nextSamples, polledNvmlFields, withTelemetry, writeScenario } from './helpers.js';

const GiB = 2 ** 30;

describe('simulator round trip (constant load 0.5)', () => {
  it('reports every field with its base unit, status ok and source nvml', async () => {
    // GPM off: this test is about NVML's own paths (GPM has its own tests).
    const file = writeScenario(constantScenario({}, { gpm: false }));
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      expect(gpu.devices).toHaveLength(1);
      const info = gpu.devices[0];
      expect(info.name).toBe('NVIDIA H100 80GB HBM3 (simulated)');
      expect(info.simulated).toBe(true);
      expect(info.memoryTotalBytes).toBe(85520809984);
      expect(info.computeCapability).toEqual({ major: 9, minor: 0 });
      expect(info.nvlinkCount).toBe(18);
      expect(info.uuid).toMatch(/^GPU-[0-9a-f]{8}-0000-5349-4d00-[0-9a-f]{12}$/);
      expect(gpu.driver.simulated).toBe(true);
      expect(gpu.driver.driverVersion).toBe('550.90.07');

      const snap = await nextSamples(gpu, 3);
      const d = snap.devices[0];
      // Hopper remaps rows instead of retiring pages: that one is not_supported, and says so.
      expect(d.status.retiredPagesPending).toBe('not_supported');
      for (const name of polledNvmlFields(['retiredPagesPending'])) {
        expect.soft(d.status[name], `${name}: ${d.reasons[name]}`).toBe('ok');
        expect.soft(d.source[name], name).toBe('nvml');
        expect.soft(typeof d.fields[name], name).toBe('number');
      }
      const f = d.fields;
      expect(f.smClockHz).toBe(1980e6);
      expect(f.graphicsClockHz).toBe(1980e6);
      expect(f.memoryClockHz).toBe(2619e6);
      expect(f.smClockMaxHz).toBe(1980e6);
      expect(f.memoryClockMaxHz).toBe(2619e6);
      expect(f.graphicsClockMaxHz).toBe(1980e6);
      expect(f.clockEventReasons).toBe(0);
      expect(d.clockEventReasons).toEqual([]);
      expect(f.powerWatts).toBe(Math.round((100 + 600 * 0.97 * 0.5 ** 1.3) * 1000) / 1000);
      expect(f.powerLimitWatts).toBe(700);
      expect(f.temperatureGpuCelsius).toBe(55);
      expect(f.temperatureMemoryCelsius).toBe(61);
      expect(f.fanSpeedRatio).toBe(0.6);
      expect(f.performanceState).toBe(0);
      expect(f.gpuUtilizationRatio).toBe(0.5);
      expect(f.memoryUtilizationRatio).toBe(0.3);
      expect(f.memoryTotalBytes).toBe(85520809984);
      expect(f.memoryReservedBytes).toBe(556793856);
      expect(f.memoryUsedBytes).toBe(11 * GiB);
      expect(f.memoryFreeBytes).toBe(85520809984 - 556793856 - 11 * GiB);
      expect(f.gpuProcessMemoryBytes).toBe(11 * GiB);
      expect(f.processCount).toBe(3);
      // Outside MIG no instance ids; utilisation not read unless asked for (processUtilization).
      const none = { gpuInstanceId: null, computeInstanceId: null, smUtilizationRatio: null, memoryUtilizationRatio: null, encoderUtilizationRatio: null, decoderUtilizationRatio: null };
      expect(d.processes).toEqual([
        { pid: 1111, usedMemoryBytes: 10 * GiB, ...none },
        { pid: 2222, usedMemoryBytes: GiB, ...none },
        { pid: 3333, usedMemoryBytes: null, ...none },
      ]);
      expect(d.processUtilization.status).toBe('off');
      expect(d.migInstances).toEqual([]);
      expect(d.processesTruncated).toBe(false);
      expect(f.pcieLinkGeneration).toBe(5);
      expect(f.pcieLinkWidth).toBe(16);
      expect(f.pcieReplayErrors).toBe(0);
      expect(f.eccVolatileCorrectedErrors).toBe(3);
      expect(f.eccVolatileUncorrectedErrors).toBe(1);
      expect(f.eccAggregateCorrectedErrors).toBe(17);
      expect(f.eccAggregateUncorrectedErrors).toBe(2);
      expect(f.nvlinkActiveLinks).toBe(18);
      expect(f.encoderUtilizationRatio).toBe(0);
      expect(f.decoderUtilizationRatio).toBe(0);
      expect(f.remappedRowsCorrectable).toBe(0);
      expect(f.remappedRowsUncorrectable).toBe(0);
      expect(f.remappedRowsPending).toBe(0);
      expect(f.remappedRowsFailure).toBe(0);
      // Rates from cumulative counters (bytes/s): the simulator's counters grow at exactly these.
      expect(f.pcieTxBytesPerSecond).toBeCloseTo(64e9 * (0.02 + 0.25 * 0.5), -8);
      expect(f.pcieRxBytesPerSecond).toBeCloseTo(64e9 * (0.01 + 0.2 * 0.5), -8);
      expect(f.nvlinkTxBytesPerSecond! / (18 * 25e9 * 0.6 * 0.5)).toBeCloseTo(1, 2);
      expect(f.nvlinkRxBytesPerSecond! / (18 * 25e9 * 0.55 * 0.5)).toBeCloseTo(1, 2);
      expect(d.nvlinks).toHaveLength(18);
      for (const link of d.nvlinks) {
        expect(link.up).toBe(true);
        expect(link.txBytesPerSecond! / (25e9 * 0.6 * 0.5)).toBeCloseTo(1, 2);
      }
      const linkSum = d.nvlinks.reduce((s, l) => s + l.txBytesPerSecond!, 0);
      expect(linkSum).toBeCloseTo(f.nvlinkTxBytesPerSecond!, 0);
    });
  });

  it('energy is a joule counter that grows at the reported power', async () => {
    const file = writeScenario(constantScenario());
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      const a = await nextSamples(gpu, 1);
      const b = await nextSamples(gpu, 5);
      const dt = (b.takenAt - a.takenAt) / 1000;
      const joules = b.devices[0].fields.energyJoules! - a.devices[0].fields.energyJoules!;
      expect(joules / dt / b.devices[0].fields.powerWatts!).toBeCloseTo(1, 1);
    });
  });

  it('h100-sxm-8: 8 GPUs, all fields readable, values in plausible ranges and moving with load', async () => {
    await withTelemetry({ simulate: 'h100-sxm-8', intervalMs: 100 }, async (gpu) => {
      expect(gpu.devices).toHaveLength(8);
      expect(new Set(gpu.devices.map((d) => d.uuid)).size).toBe(8);
      expect(new Set(gpu.devices.map((d) => d.pciBusId)).size).toBe(8);
      const snap = await nextSamples(gpu, 2);
      const utils = new Set<number>();
      for (const d of snap.devices) {
        expect(d.state).toBe('ok');
        const f = d.fields;
        expect(f.fanSpeedRatio).toBeNull(); // SXM boards have no fan: not_supported, not 0
        expect(d.status.fanSpeedRatio).toBe('not_supported');
        expect(d.reasons.fanSpeedRatio).toMatch(/NVML_ERROR_NOT_SUPPORTED/);
        expect(f.powerWatts).toBeGreaterThan(60);
        expect(f.powerWatts).toBeLessThanOrEqual(700);
        expect(f.temperatureGpuCelsius).toBeGreaterThanOrEqual(31);
        expect(f.temperatureGpuCelsius).toBeLessThanOrEqual(78);
        expect(f.gpuUtilizationRatio).toBeGreaterThanOrEqual(0);
        expect(f.gpuUtilizationRatio).toBeLessThanOrEqual(1);
        expect(f.memoryUsedBytes! + f.memoryFreeBytes! + f.memoryReservedBytes!).toBe(f.memoryTotalBytes);
        expect(f.nvlinkActiveLinks).toBe(18);
        utils.add(f.gpuUtilizationRatio!);
      }
      // Phase-shifted load: the 8 GPUs are not all identical.
      expect(utils.size).toBeGreaterThan(1);
    });
  });

  it('the same seed gives the same device identities', async () => {
    const a = await openGpuTelemetry({ simulate: 'h100-sxm-8' });
    const uuidsA = a.devices.map((d) => d.uuid);
    await a.close();
    const b = await openGpuTelemetry({ simulate: 'h100-sxm-8' });
    expect(b.devices.map((d) => d.uuid)).toEqual(uuidsA);
    await b.close();
  });
});
