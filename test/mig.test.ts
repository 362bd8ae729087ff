/**
 * MIG instances as entities under their GPU, against the simulator playing NVIDIA's driver
 * (native/sim/mig.cc): listing with empty slots, per-instance memory, processes and GPM activity
 * (pairs at least 100 ms apart), failed listings remembered (dcgm-exporter #599), a changed layout
 * picked up, a GPU lost and back listed afresh. Each of these failed against the naive code it
 * guards (see the commit that added it).
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { GpuSnapshot, MigInstanceSample } from '../src/index.js';
import { nextSamples, waitFor, withTelemetry, writeScenario } from './helpers.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

const flags: string[] = [];
function flagFile(create = false): string {
  const file = writeScenario({}).replace(/\.json$/, '.flag');
  flags.push(file);
  if (create) fs.writeFileSync(file, '');
  return file;
}
afterEach(() => {
  for (const f of flags.splice(0)) fs.rmSync(f, { force: true });
});

/** One H100 in MIG mode with these instances (and anything else on the device or the mig key). */
function migScenario(instances: object[], mig: object = {}, device: object = {}, top: object = {}) {
  return {
    name: 'test-mig',
    seed: 7,
    tickMs: 100,
    devices: [
      {
        name: 'NVIDIA H100 80GB HBM3',
        memoryTotalBytes: 85520809984,
        memoryReservedBytes: 556793856,
        computeCapability: [9, 0],
        nvlink: null,
        load: { shape: 'constant', value: 0.5, noise: 0 },
        mig: { enabled: true, instances, ...mig },
        ...device,
      },
    ],
    ...top,
  };
}

const oneG = (gi: number, index: number, extra: object = {}) => ({
  profile: '1g.10gb',
  memoryMiB: 9984,
  gpuInstanceId: gi,
  index,
  load: { shape: 'constant', value: 0.5, noise: 0 },
  processes: [{ pid: 1000 + gi, usedMemoryBytes: 2 * GiB }],
  ...extra,
});

const byGi = (s: GpuSnapshot, device = 0): Map<number, MigInstanceSample> =>
  new Map(s.devices[device].migInstances.map((m) => [m.gpuInstanceId, m]));

describe('MIG instances (h100-mig)', () => {
  it('GPU 0 lists its GPU instances with profile, UUIDs, memory, processes and activity; GPUs 1-7 none', async () => {
    await withTelemetry({ simulate: 'h100-mig', intervalMs: 150 }, async (gpu) => {
      const s = await waitFor(() => {
        const snap = gpu.snapshot();
        return snap.devices[0].migInstances.length === 4 && snap.devices[0].migInstances.every((m) => m.status.tensorActiveRatio === 'ok') ? snap : undefined;
      });
      const d0 = s.devices[0];
      expect(d0.migMode).toBe(true);
      expect(d0.migInstancesReason).toBeNull();
      expect(d0.migInstances.map((m) => [m.gpuInstanceId, m.profile])).toEqual([
        [2, '3g.40gb'],
        [9, '1g.10gb'],
        [10, '1g.10gb'],
        [11, '1g.10gb'],
      ]);
      for (const m of d0.migInstances) {
        expect(m.computeInstances).toHaveLength(1);
        expect(m.computeInstances[0].uuid).toMatch(/^MIG-[0-9a-f]{8}-[0-9a-f]{4}-5349-[0-9a-f]{4}-[0-9a-f]{12}$/);
        const f = m.fields;
        expect(f.memoryTotalBytes).toBe(m.sliceCount === 3 ? 40448 * MiB : 9984 * MiB);
        expect(f.memoryUsedBytes! + f.memoryFreeBytes!).toBe(f.memoryTotalBytes);
        expect(m.source.memoryUsedBytes).toBe('nvml');
        expect(m.source.tensorActiveRatio).toBe('gpm');
        expect(f.tensorActiveRatio).toBeGreaterThanOrEqual(0);
        expect(f.tensorActiveRatio).toBeLessThanOrEqual(1);
        expect(f.processCount).toBe(m.processes.length);
        expect(m.processes.every((p) => p.gpuInstanceId === m.gpuInstanceId && p.computeInstanceId === 0)).toBe(true);
      }
      expect(byGi(s).get(10)!.processes.map((p) => p.pid).sort()).toEqual([5401, 5402]);
      expect(byGi(s).get(11)!.fields.processCount).toBe(0);
      // Distinct UUIDs (what pods are assigned by).
      expect(new Set(d0.migInstances.map((m) => m.computeInstances[0].uuid)).size).toBe(4);
      // The parent keeps its series with honest statuses.
      expect(d0.status.gpuUtilizationRatio).toBe('not_supported');
      expect(d0.status.memoryUsedBytes).toBe('no_permission');
      expect(d0.reasons.memoryUsedBytes).toMatch(/MIG mode is enabled/);
      // Only what MIG mode affects says so: an SXM board has no fan in or out of MIG mode.
      expect(d0.reasons.fanSpeedRatio).not.toMatch(/MIG/);
      expect(d0.fields.powerWatts).not.toBeNull();
      // Its process list (no privileges for the GPU-wide one) is the instances', with their ids.
      expect(d0.processes.map((p) => [p.pid, p.gpuInstanceId]).sort()).toEqual([
        [5201, 2],
        [5301, 9],
        [5401, 10],
        [5402, 10],
      ]);
      for (const d of s.devices.slice(1)) {
        expect(d.migMode).toBe(false);
        expect(d.migInstances).toEqual([]);
      }
      expect(gpu.stats().migListings).toBe(1); // once on entering MIG mode, not per sample
    });
  });

  it('memory and activity move with the instance load', async () => {
    const file = writeScenario(
      migScenario([oneG(9, 0, { load: { shape: 'sequence', values: [0.1, 0.9], stepMs: 400 }, processes: [{ pid: 1009, usedMemoryBytes: GiB, growthBytes: 4 * GiB }] })]),
    );
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      const seenUsed = new Set<number>();
      const seenTensor = new Set<number>();
      await waitFor(() => {
        const m = gpu.snapshot().devices[0].migInstances[0];
        if (m?.fields.memoryUsedBytes != null) seenUsed.add(Math.round(m.fields.memoryUsedBytes / MiB));
        if (m?.fields.tensorActiveRatio != null) seenTensor.add(Math.round(m.fields.tensorActiveRatio * 100));
        return seenUsed.size >= 2 && seenTensor.size >= 2;
      }, 15_000);
    });
  });

  it('an empty MIG slot (NOT_FOUND) is not the end of the list', async () => {
    // Slots 0 and 2 hold MIG devices, slot 1 is empty: NVML answers NOT_FOUND for it.
    const file = writeScenario(migScenario([oneG(7, 0), oneG(8, 2)]));
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      const s = await nextSamples(gpu, 2);
      expect(s.devices[0].migInstances.map((m) => [m.gpuInstanceId, m.computeInstances[0].migIndex])).toEqual([
        [7, 0],
        [8, 2],
      ]);
    });
  });

  it('a failed listing is remembered, not repeated every sample, until the MIG mode changes', async () => {
    const migFlag = flagFile(true);
    const file = writeScenario(
      migScenario([oneG(9, 0)], { whenFileExists: migFlag }, {}, {
        faults: [{ type: 'error', device: 0, call: 'nvmlDeviceGetMigDeviceHandleByIndex', code: 999 }],
      }),
    );
    await withTelemetry({ simulate: file, intervalMs: 20 }, async (gpu) => {
      const s = await nextSamples(gpu, 25);
      const d0 = s.devices[0];
      expect(d0.migMode).toBe(true);
      expect(d0.migInstances).toEqual([]);
      expect(d0.migInstancesReason).toMatch(/could not be listed \(NVML_ERROR_UNKNOWN\)/);
      expect(gpu.stats().migListings).toBe(1);
      // MIG mode off, then on again: that is when a listing may succeed, so it is tried again.
      fs.rmSync(migFlag);
      await waitFor(() => gpu.snapshot().devices[0].migMode === false);
      fs.writeFileSync(migFlag, '');
      await waitFor(() => gpu.snapshot().devices[0].migMode === true && gpu.stats().migListings === 2);
      await nextSamples(gpu, 10);
      expect(gpu.stats().migListings).toBe(2);
    });
  });

  it('instances destroyed and created: the new layout is listed (the old handles are invalid)', async () => {
    const reconfigure = flagFile();
    const file = writeScenario(
      migScenario([oneG(9, 0), oneG(10, 1)], { reconfigure: { whenFileExists: reconfigure, instances: [{ ...oneG(1, 0), profile: '3g.40gb', memoryMiB: 40448 }] } }),
    );
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      const before = await nextSamples(gpu, 2);
      expect([...byGi(before).keys()]).toEqual([9, 10]);
      fs.writeFileSync(reconfigure, '');
      const after = await waitFor(() => {
        const s = gpu.snapshot();
        return byGi(s).has(1) ? s : undefined;
      }, 10_000);
      expect(after.devices[0].migInstances.map((m) => [m.gpuInstanceId, m.profile])).toEqual([[1, '3g.40gb']]);
      expect(after.devices[0].migInstances[0].status.memoryUsedBytes).toBe('ok');
    });
  });

  it('GPM per instance pairs samples at least 100 ms apart, whatever the sampling interval', async () => {
    // At 20 ms, back-to-back nvmlGpmMigSampleGet calls read one internal refresh twice (zeros).
    const file = writeScenario(migScenario([oneG(9, 0)]));
    await withTelemetry({ simulate: file, intervalMs: 20 }, async (gpu) => {
      await waitFor(() => gpu.snapshot().devices[0].migInstances[0]?.status.tensorActiveRatio === 'ok');
      for (let i = 0; i < 20; i++) {
        const m = (await nextSamples(gpu, 1)).devices[0].migInstances[0];
        expect(m.status.tensorActiveRatio).toBe('ok');
        expect(m.fields.tensorActiveRatio).toBeCloseTo(0.5 * 0.7, 5);
      }
    });
  });

  it('a GPU without GPM (Ampere) reports instance activity not_supported with the reason', async () => {
    const file = writeScenario(migScenario([oneG(9, 0)], {}, { name: 'NVIDIA A100-SXM4-80GB', computeCapability: [8, 0] }));
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      const m = (await nextSamples(gpu, 2)).devices[0].migInstances[0];
      expect(m.status.memoryUsedBytes).toBe('ok');
      expect(m.status.tensorActiveRatio).toBe('not_supported');
      expect(m.reasons.tensorActiveRatio).toMatch(/Hopper/);
    });
  });

  it('with privileges the GPU-wide figures and process list are read, processes carrying their instance ids', async () => {
    const file = writeScenario(migScenario([oneG(9, 0), oneG(10, 1)], { privileged: true }));
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      const d0 = (await nextSamples(gpu, 2)).devices[0];
      expect(d0.status.memoryUsedBytes).toBe('ok');
      expect(d0.fields.processCount).toBe(2);
      expect(d0.processes.map((p) => [p.pid, p.gpuInstanceId]).sort()).toEqual([
        [1009, 9],
        [1010, 10],
      ]);
    });
  });

  it('a lost GPU forgets its instances; back, they are listed afresh', async () => {
    const lose = flagFile();
    const file = writeScenario(migScenario([oneG(9, 0)], {}, {}, { faults: [{ type: 'gpu_lost', device: 0, whenFileExists: lose }] }));
    await withTelemetry({ simulate: file, intervalMs: 50, lostRetryMs: 100 }, async (gpu) => {
      await waitFor(() => gpu.snapshot().devices[0].migInstances.length === 1);
      fs.writeFileSync(lose, '');
      await waitFor(() => gpu.snapshot().devices[0].state === 'gpu_lost' && gpu.snapshot().devices[0].migInstances.length === 0);
      fs.rmSync(lose);
      await waitFor(() => gpu.snapshot().devices[0].migInstances.length === 1, 10_000);
      expect(gpu.stats().migListings).toBe(2);
    });
  });
});
