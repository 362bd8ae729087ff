/**
 * Per-process utilisation against the simulator playing NVIDIA's driver (native/sim/process_util.cc):
 * samples newer than a timestamp, only processes with non-zero utilisation listed, NOT_FOUND when
 * nothing is new (no new sample, not an error), not supported in MIG mode, a hung call stalling
 * only this (its own thread), the legacy driver's older call; and the 64 processes kept being the
 * 64 using the most memory.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { constantScenario, nextSamples, waitFor, withTelemetry, writeScenario } from './helpers.js';

const GiB = 2 ** 30;
const flags: string[] = [];
function flagFile(): string {
  const file = writeScenario({}).replace(/\.json$/, '.flag');
  flags.push(file);
  return file;
}
afterEach(() => {
  for (const f of flags.splice(0)) fs.rmSync(f, { force: true });
});

const busyAndIdle = (load: object, extra: Record<string, unknown> = {}) =>
  writeScenario(
    constantScenario(extra, {
      load,
      processes: [
        { pid: 1111, usedMemoryBytes: 10 * GiB, utilShare: 0.75 },
        { pid: 2222, usedMemoryBytes: GiB, utilShare: 0.25 },
        { pid: 3333, usedMemoryBytes: GiB, utilShare: 0 },
      ],
    }),
  );

describe('per-process utilisation', () => {
  it('is off unless asked for: ratios null, status off', async () => {
    await withTelemetry({ simulate: busyAndIdle({ shape: 'constant', value: 0.8, noise: 0 }), intervalMs: 100 }, async (gpu) => {
      const d = (await nextSamples(gpu, 2)).devices[0];
      expect(d.processUtilization.status).toBe('off');
      expect(d.processes.every((p) => p.smUtilizationRatio === null)).toBe(true);
    });
  });

  it("each process's share of the SM and memory time; an idle process (not listed by the driver) is 0", async () => {
    const file = busyAndIdle({ shape: 'constant', value: 0.8, noise: 0 });
    await withTelemetry({ simulate: file, intervalMs: 100, processUtilization: true }, async (gpu) => {
      expect(gpu.driver.resolvedSymbols.deviceGetProcessesUtilizationInfo).toBe('nvmlDeviceGetProcessesUtilizationInfo');
      const d = await waitFor(() => {
        const dev = gpu.snapshot().devices[0];
        return dev.processUtilization.status === 'ok' && dev.processes[0].smUtilizationRatio === 0.6 ? dev : undefined;
      });
      const by = new Map(d.processes.map((p) => [p.pid, p]));
      expect(by.get(1111)).toMatchObject({ smUtilizationRatio: 0.6, memoryUtilizationRatio: 0.36, encoderUtilizationRatio: 0, decoderUtilizationRatio: 0 });
      expect(by.get(2222)).toMatchObject({ smUtilizationRatio: 0.2, memoryUtilizationRatio: 0.12 });
      expect(by.get(3333)).toMatchObject({ smUtilizationRatio: 0, memoryUtilizationRatio: 0 });
      expect(d.processUtilization.reason).toBeNull();
    });
  });

  it('NVML_ERROR_NOT_FOUND (no new sample: every process idle) is a reading of 0, not an error', async () => {
    const file = busyAndIdle({ shape: 'constant', value: 0, noise: 0 });
    await withTelemetry({ simulate: file, intervalMs: 100, processUtilization: true }, async (gpu) => {
      const d = await waitFor(() => {
        const dev = gpu.snapshot().devices[0];
        return dev.processUtilization.status !== 'pending' ? dev : undefined;
      });
      expect(d.processUtilization).toEqual({ status: 'ok', reason: null });
      expect(d.processes.map((p) => p.smUtilizationRatio)).toEqual([0, 0, 0]);
    });
  });

  it('a process that goes idle reads 0 once the driver stops listing it, not its last busy figure', async () => {
    // Busy for 1.5 s, then idle for good: from then on the driver lists nothing (NOT_FOUND).
    const file = busyAndIdle({ shape: 'sequence', values: [0.8, ...Array(200).fill(0)], stepMs: 1500 });
    await withTelemetry({ simulate: file, intervalMs: 100, processUtilization: true }, async (gpu) => {
      await waitFor(() => gpu.snapshot().devices[0].processes[0].smUtilizationRatio === 0.6, 10_000);
      const idle = await waitFor(() => {
        const dev = gpu.snapshot().devices[0];
        return dev.processes[0].smUtilizationRatio === 0 ? dev : undefined;
      }, 10_000);
      expect(idle.processUtilization.status).toBe('ok');
    });
  });

  it('not supported in MIG mode, with the reason', async () => {
    await withTelemetry({ simulate: 'h100-mig', intervalMs: 100, processUtilization: true }, async (gpu) => {
      const s = await waitFor(() => {
        const snap = gpu.snapshot();
        return snap.devices.every((d) => d.processUtilization.status !== 'pending') ? snap : undefined;
      });
      expect(s.devices[0].processUtilization.status).toBe('not_supported');
      expect(s.devices[0].processUtilization.reason).toMatch(/MIG mode/);
      expect(s.devices[0].processes.length).toBeGreaterThan(0);
      expect(s.devices[0].processes.every((p) => p.smUtilizationRatio === null)).toBe(true);
      expect(s.devices[1].processUtilization.status).toBe('ok');
    });
  });

  it('a hung utilisation call stalls only the per-process utilisation, named; the GPU keeps sampling', async () => {
    const hang = flagFile();
    const file = busyAndIdle({ shape: 'constant', value: 0.8, noise: 0 }, {
      faults: [{ type: 'hang', device: 0, call: 'nvmlDeviceGetProcessesUtilizationInfo', durationMs: -1, whenFileExists: hang }],
    });
    await withTelemetry(
      { simulate: file, intervalMs: 100, staleAfterMs: 500, processUtilization: true, closeTimeoutMs: 200 },
      async (gpu) => {
        await waitFor(() => gpu.snapshot().devices[0].processUtilization.status === 'ok');
        fs.writeFileSync(hang, '');
        const d = await waitFor(() => {
          const snap = gpu.snapshot();
          return snap.devices[0].processUtilization.status === 'stale' ? snap : undefined;
        }, 10_000);
        expect(d.stale).toBe(false);
        expect(d.devices[0].processUtilization.reason).toMatch(/nvmlDeviceGetProcessesUtilizationInfo has not returned for \d+\.\d s/);
        expect(d.devices[0].processes.every((p) => p.smUtilizationRatio === null)).toBe(true);
        // The device itself is sampled as usual.
        const later = await nextSamples(gpu, 5);
        expect(later.stale).toBe(false);
        expect(later.devices[0].status.powerWatts).toBe('ok');
        expect(later.devices[0].processes.map((p) => p.pid)).toEqual([1111, 2222, 3333]);
      },
    );
  });

  it('an older driver without nvmlDeviceGetProcessesUtilizationInfo: nvmlDeviceGetProcessUtilization', async () => {
    const file = busyAndIdle({ shape: 'constant', value: 0.8, noise: 0 }, { driver: { version: '450.80.02', nvmlVersion: '11.450.80.02', cudaVersion: 11000, library: 'legacy' } });
    await withTelemetry({ simulate: file, intervalMs: 100, processUtilization: true }, async (gpu) => {
      expect(gpu.driver.resolvedSymbols.deviceGetProcessesUtilizationInfo).toBeNull();
      expect(gpu.driver.resolvedSymbols.deviceGetProcessUtilization).toBe('nvmlDeviceGetProcessUtilization');
      await waitFor(() => gpu.snapshot().devices[0].processes.find((p) => p.pid === 1111)?.smUtilizationRatio === 0.6);
    });
  });

  it('errors other than NOT_FOUND are errors, with the code', async () => {
    const file = busyAndIdle({ shape: 'constant', value: 0.8, noise: 0 }, {
      faults: [{ type: 'error', device: 0, call: 'nvmlDeviceGetProcessesUtilizationInfo', code: 999 }],
    });
    await withTelemetry({ simulate: file, intervalMs: 100, processUtilization: true }, async (gpu) => {
      const d = await waitFor(() => {
        const dev = gpu.snapshot().devices[0];
        return dev.processUtilization.status !== 'pending' ? dev : undefined;
      });
      expect(d.processUtilization.status).toBe('error');
      expect(d.processUtilization.reason).toMatch(/NVML_ERROR_UNKNOWN/);
      expect(d.processes[0].smUtilizationRatio).toBeNull();
    });
  });
});

describe('the processes kept per GPU', () => {
  it('are the 64 using the most memory, whatever order the driver lists them in', async () => {
    // 70 processes listed smallest first: the naive first 64 would drop the six largest.
    const processes = Array.from({ length: 70 }, (_, i) => ({ pid: 100 + i, usedMemoryBytes: (i + 1) * 2 ** 20 }));
    const file = writeScenario(constantScenario({}, { processes }));
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      const d = (await nextSamples(gpu, 2)).devices[0];
      expect(d.processes).toHaveLength(64);
      expect(d.processesTruncated).toBe(true);
      expect(d.fields.processCount).toBe(70);
      expect(d.processes[0]).toMatchObject({ pid: 169, usedMemoryBytes: 70 * 2 ** 20 });
      expect(Math.min(...d.processes.map((p) => p.pid))).toBe(106);
    });
  });

  it('a few are listed largest first, equal ones in the driver order, unknown memory last', async () => {
    // usedMemoryBytes null: the simulated driver answers NVML_VALUE_NOT_AVAILABLE for that process.
    const mib = 2 ** 20;
    const processes = [
      { pid: 201, usedMemoryBytes: null },
      { pid: 202, usedMemoryBytes: 10 * mib },
      { pid: 203, usedMemoryBytes: 30 * mib },
      { pid: 204, usedMemoryBytes: 10 * mib },
      { pid: 205, usedMemoryBytes: 20 * mib },
    ];
    const file = writeScenario(constantScenario({}, { processes }));
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      const d = (await nextSamples(gpu, 2)).devices[0];
      expect(d.processes.map((p) => [p.pid, p.usedMemoryBytes])).toEqual([
        [203, 30 * mib],
        [205, 20 * mib],
        [202, 10 * mib],
        [204, 10 * mib],
        [201, null],
      ]);
      expect(d.processesTruncated).toBe(false);
    });
  });
});
