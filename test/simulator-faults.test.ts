/** Unhappy paths against the simulator: a lost GPU, a hung call, a missing symbol, no permission. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { FIELD_NAMES, openGpuTelemetry } from '../src/index.js';
import { constantScenario, nextSamples, polledNvmlFields, sleep, waitFor, withTelemetry, writeScenario } from './helpers.js';

function multi(count: number, faults: object[], device: Record<string, unknown> = {}) {
  const base = constantScenario({}, device);
  return { ...base, devices: [{ ...base.devices[0], count }], faults };
}

describe('GPU lost mid-run', () => {
  it('flips that device to gpu_lost while the others keep sampling', async () => {
    const file = writeScenario(multi(3, [{ type: 'gpu_lost', device: 1, atMs: 400 }]));
    await withTelemetry({ simulate: file, intervalMs: 50 }, async (gpu) => {
      const lost = await waitFor(() => {
        const s = gpu.snapshot();
        return s.devices[1].state === 'gpu_lost' ? s : undefined;
      });
      const d1 = lost.devices[1];
      // Every reading of the device is gone; its XID count is not a reading of the device (it
      // comes from the driver's event stream) and stays, so the XID that preceded a loss is seen.
      for (const name of FIELD_NAMES.filter((n) => n !== 'xidErrors' && n !== 'lastXid')) {
        expect.soft(d1.fields[name], name).toBeNull();
        expect.soft(d1.status[name], name).toBe('gpu_lost');
      }
      expect(d1.status.xidErrors).toBe('ok');
      expect(d1.fields.xidErrors).toBe(0);
      expect(d1.reasons.powerWatts).toMatch(/lost/);
      expect(d1.nvlinks).toEqual([]);
      // The others keep producing fresh, real values.
      const later = await nextSamples(gpu, 3);
      expect(later.seq).toBeGreaterThan(lost.seq);
      for (const i of [0, 2]) {
        expect(later.devices[i].state).toBe('ok');
        expect(later.devices[i].fields.powerWatts).toBeGreaterThan(0);
      }
      expect(later.devices[1].state).toBe('gpu_lost');
      expect(later.stale).toBe(false);
    });
  });

  it('a fault armed by a file fires when the file appears and clears when it goes', async () => {
    const trigger = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gt-trigger-')), 'lose');
    const file = writeScenario(multi(2, [{ type: 'gpu_lost', device: 1, whenFileExists: trigger }]));
    await withTelemetry({ simulate: file, intervalMs: 50, lostRetryMs: 100 }, async (gpu) => {
      await nextSamples(gpu, 3);
      expect(gpu.snapshot().devices[1].state).toBe('ok');
      fs.writeFileSync(trigger, '');
      await waitFor(() => gpu.snapshot().devices[1].state === 'gpu_lost');
      expect(gpu.snapshot().devices[0].state).toBe('ok');
      fs.rmSync(trigger);
      await waitFor(() => gpu.snapshot().devices[1].state === 'ok');
    });
  });

  it('a GPU that comes back is sampled again after the retry interval', async () => {
    const file = writeScenario(multi(2, [{ type: 'gpu_lost', device: 0, atMs: 300, durationMs: 600 }]));
    await withTelemetry({ simulate: file, intervalMs: 50, lostRetryMs: 200 }, async (gpu) => {
      await waitFor(() => gpu.snapshot().devices[0].state === 'gpu_lost');
      const back = await waitFor(() => {
        const s = gpu.snapshot();
        return s.devices[0].state === 'ok' ? s : undefined;
      });
      expect(back.devices[0].fields.smClockHz).toBe(1980e6);
      // Rates restart after a loss: pending first, then real again.
      await waitFor(() => gpu.snapshot().devices[0].status.pcieTxBytesPerSecond === 'ok');
    });
  });
});

describe('a driver call that hangs', () => {
  it('turns the sample stale with the call named, while snapshot() and the event loop stay responsive', async () => {
    const file = writeScenario(
      multi(2, [{ type: 'hang', device: 1, call: 'nvmlDeviceGetPowerUsage', atMs: 500, durationMs: 4000 }], {
        fan: false,
      }),
    );
    await withTelemetry({ simulate: file, intervalMs: 100, staleAfterMs: 800 }, async (gpu) => {
      const histogram = monitorEventLoopDelay({ resolution: 10 });
      histogram.enable();
      let calls = 0;
      const stale = await waitFor(() => {
        calls++;
        const s = gpu.snapshot();
        return s.stale ? s : undefined;
      }, 5000);
      expect(stale.staleReason).toMatch(/nvmlDeviceGetPowerUsage on GPU 1 has not returned for \d+\.\d s/);
      for (const d of stale.devices) {
        expect(d.state).toBe('stale');
        expect(d.status.smClockHz).toBe('stale');
        // Last known values are kept beside the stale status.
        expect(d.fields.smClockHz).toBe(1980e6);
        // A field that never worked is still reported for what it is.
        expect(d.status.fanSpeedRatio).toBe('not_supported');
      }
      // Keep reading through the hang: every call returns at once (the loop is never blocked
      // for the hang's 4 s; the bound is loose on purpose, this is not a timing benchmark).
      for (let i = 0; i < 20; i++) {
        calls++;
        expect(gpu.snapshot().stale).toBe(true);
        await sleep(50);
      }
      histogram.disable();
      expect(calls).toBeGreaterThan(20);
      expect(histogram.max / 1e6).toBeLessThan(1500);
      // When the call returns, sampling resumes and the staleness clears.
      const fresh = await waitFor(() => {
        const s = gpu.snapshot();
        return !s.stale && s.devices[1].state === 'ok' ? s : undefined;
      }, 8000);
      expect(fresh.devices[1].fields.powerWatts).toBeGreaterThan(0);
    });
  });

  it('close() resolves within closeTimeoutMs even while the thread is stuck in the driver', async () => {
    const file = writeScenario(multi(1, [{ type: 'hang', call: 'nvmlDeviceGetPowerUsage', atMs: 200, durationMs: 3000 }]));
    const gpu = await openGpuTelemetry({ simulate: file, intervalMs: 50, closeTimeoutMs: 300 });
    await waitFor(() => gpu.snapshot().ageMs > 400);
    const t0 = Date.now();
    await gpu.close();
    expect(Date.now() - t0).toBeLessThan(2500);
  });
});

describe('an older driver (legacy simulator library)', () => {
  it('falls back to older calls; a symbol it lacks makes that field not_supported and nothing else', async () => {
    await withTelemetry({ simulate: 'fault-legacy-driver', intervalMs: 100 }, async (gpu) => {
      const syms = gpu.driver.resolvedSymbols;
      expect(syms.deviceGetTemperatureV).toBeNull();
      expect(syms.deviceGetTemperature).toBe('nvmlDeviceGetTemperature');
      expect(syms.deviceGetClocksEventReasons).toBe('nvmlDeviceGetCurrentClocksThrottleReasons');
      expect(syms.deviceGetMemoryInfoV2).toBeNull();
      expect(syms.deviceGetTotalEnergyConsumption).toBeNull();
      const snap = await nextSamples(gpu, 3);
      for (const d of snap.devices) {
        expect(d.status.energyJoules).toBe('not_supported');
        expect(d.reasons.energyJoules).toMatch(/does not export nvmlDeviceGetTotalEnergyConsumption/);
        // v1 memory info has no reserved figure: said, not zero.
        expect(d.status.memoryReservedBytes).toBe('not_supported');
        const expectedMissing = ['energyJoules', 'memoryReservedBytes', 'fanSpeedRatio', 'retiredPagesPending'] as const;
        for (const name of polledNvmlFields([...expectedMissing])) {
          expect.soft(d.status[name], `${name}: ${d.reasons[name]}`).toBe('ok');
        }
        expect(d.fields.temperatureGpuCelsius).toBeGreaterThan(0);
        expect(d.fields.memoryUsedBytes).toBe(268435456 + 21474836480); // v1: used includes reserved
        expect(d.processes).toMatchObject([{ pid: 901, usedMemoryBytes: 21474836480, gpuInstanceId: null }]);
        // No PCIe byte counters: the (slow, rate-limited) throughput call answers instead.
        expect(d.fields.pcieTxBytesPerSecond).toBeGreaterThan(0);
        expect(d.nvlinks).toHaveLength(12);
      }
    });
  });
});

describe('a field that needs more privileges', () => {
  it('reports no_permission for that field only', async () => {
    await withTelemetry({ simulate: 'fault-no-permission', intervalMs: 100 }, async (gpu) => {
      const snap = await nextSamples(gpu, 2);
      const d = snap.devices[0];
      expect(d.status.energyJoules).toBe('no_permission');
      expect(d.fields.energyJoules).toBeNull();
      expect(d.reasons.energyJoules).toMatch(/NVML_ERROR_NO_PERMISSION/);
      expect(d.status.powerWatts).toBe('ok');
      expect(d.state).toBe('ok');
    });
  });
});

describe('the driver disappears', () => {
  it('every field turns to error with the vendor code, the process lives on', async () => {
    const file = writeScenario(multi(2, [{ type: 'driver_gone', atMs: 300, code: 9 }]));
    await withTelemetry({ simulate: file, intervalMs: 50 }, async (gpu) => {
      const snap = await waitFor(() => {
        const s = gpu.snapshot();
        return s.devices[0].status.powerWatts === 'error' ? s : undefined;
      });
      expect(snap.devices[0].reasons.powerWatts).toMatch(/NVML_ERROR_DRIVER_NOT_LOADED \(9\)/);
      // No call answered: the device as a whole is in error (gpu_telemetry_device_up 0), not "ok".
      expect(snap.devices[0].state).toBe('error');
      expect(snap.devices[1].fields.powerWatts).toBeNull();
    });
  });
});
