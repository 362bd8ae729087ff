/**
 * Which DCGM host engine, against the simulator's DCGM:
 * - DGX OS and GPU-operator nodes already run nv-hostengine (nvidia-dcgm.service, dcgm-exporter).
 *   A second, embedded engine beside it contends for the profiling counters and NVIDIA warns that
 *   several host engines on one node may deadlock in the driver (NVIDIA/DCGM#108). The default
 *   (`dcgm.mode` 'auto') connects to a running local nv-hostengine and starts an embedded engine
 *   only when none is running.
 * - When another engine (or a profiler) holds the profiling counters, a profiling watch answers
 *   DCGM_ST_IN_USE (-34) or DCGM_ST_PROFILING_LIBRARY_ERROR (-37): the profiling fields fall back
 *   to NVML GPM, with the reason.
 * The simulated nv-hostengine: scenarios/dcgm-hostengine.json (listening on localhost:5555, holding
 * the counters); the held counters without a reachable host engine: dcgm-profiling-in-use.json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GpuTelemetryError, openGpuTelemetry, type GpuTelemetry } from '../src/index.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { constantScenario, nextSamples, waitFor, withTelemetry, writeScenario } from './helpers.js';

const PROFILING = ['tensorActiveRatio', 'smActiveRatio', 'dramActiveRatio', 'fp16ActiveRatio'] as const;

function shipped(name: string) {
  return JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'scenarios', `${name}.json`), 'utf8')) as Record<string, unknown> & {
    dcgm: Record<string, unknown>;
  };
}

/** Waits until every device's profiling fields are ok, and returns that snapshot. */
async function profilingOk(gpu: GpuTelemetry) {
  return waitFor(() => {
    const s = gpu.snapshot();
    return s.devices.every((d) => PROFILING.every((f) => d.status[f] === 'ok')) ? s : undefined;
  });
}

describe("dcgm.mode 'auto' (the default)", () => {
  it('connects to the nv-hostengine running on this machine instead of starting an embedded engine beside it', async () => {
    await withTelemetry({ simulate: 'dcgm-hostengine', intervalMs: 100 }, async (gpu) => {
      expect(gpu.backends.dcgm, JSON.stringify(gpu.backends.dcgm)).toMatchObject({ state: 'active', reason: null });
      expect(gpu.backends.dcgm.detail).toMatch(/^nv-hostengine at localhost:5555 \(found running\), /);
      const s = await profilingOk(gpu);
      for (const d of s.devices) for (const f of PROFILING) expect(d.source[f], f).toBe('dcgm');
    });
  });

  it('finds one listening on its default unix socket (/tmp/nv-hostengine) too', async () => {
    const file = writeScenario({ ...shipped('dcgm-hostengine'), dcgm: { hostengines: ['/tmp/nv-hostengine'], profilingHeld: true } });
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      expect(gpu.backends.dcgm.detail).toMatch(/^nv-hostengine at \/tmp\/nv-hostengine \(unix socket, found running\), /);
      expect((await profilingOk(gpu)).devices[0].source.tensorActiveRatio).toBe('dcgm');
    });
  });

  it('starts an embedded host engine when none is running, and says so', async () => {
    const file = writeScenario({ ...constantScenario(), dcgm: {} });
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      expect(gpu.backends.dcgm.state).toBe('active');
      expect(gpu.backends.dcgm.detail).toMatch(/^embedded host engine \(no nv-hostengine running at localhost:5555 or \/tmp\/nv-hostengine\), /);
      expect((await profilingOk(gpu)).devices[0].source.tensorActiveRatio).toBe('dcgm');
    });
  });

  it('a host engine it found that restarts is reconnected to, never replaced by an embedded engine', async () => {
    const trigger = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gt-he-')), 'down');
    const file = writeScenario({ ...shipped('dcgm-hostengine'), faults: [{ type: 'dcgm_down', whenFileExists: trigger }] });
    await withTelemetry({ simulate: file, intervalMs: 50, lostRetryMs: 200 }, async (gpu) => {
      await profilingOk(gpu);
      fs.writeFileSync(trigger, '');
      await waitFor(() => gpu.snapshot().devices[0].status.tensorActiveRatio === 'error');
      fs.rmSync(trigger);
      // An embedded engine would get DCGM_ST_IN_USE here (the host engine holds the counters).
      const back = await profilingOk(gpu);
      expect(back.devices[0].source.tensorActiveRatio).toBe('dcgm');
    });
  });
});

describe('profiling counters held by another engine', () => {
  it('DCGM_ST_IN_USE on the profiling watch: the profiling fields come from GPM, the reason names the lock', async () => {
    await withTelemetry({ simulate: 'dcgm-profiling-in-use', intervalMs: 100 }, async (gpu) => {
      expect(gpu.backends.dcgm.state).toBe('unavailable');
      expect(gpu.backends.dcgm.reason).toMatch(
        /profiling counters are held by another DCGM host engine or a profiler \(dcgmWatchFields: DCGM_ST_IN_USE\)/,
      );
      expect(gpu.backends.dcgm.reason).toMatch(/dcgm: \{ host/);
      expect(gpu.backends.gpm.state).toBe('active');
      const s = await profilingOk(gpu);
      for (const d of s.devices) for (const f of PROFILING) expect(d.source[f], f).toBe('gpm');
    });
  });

  it('…DCGM_ST_PROFILING_LIBRARY_ERROR (-37) the same; with GPM forbidden the fields say why', async () => {
    const file = writeScenario({ ...shipped('dcgm-profiling-in-use'), dcgm: { profilingHeld: true, profilingHeldCode: -37 } });
    await withTelemetry({ simulate: file, intervalMs: 100, sources: { gpm: false } }, async (gpu) => {
      expect(gpu.backends.dcgm.reason).toMatch(/held by another DCGM host engine or a profiler \(dcgmWatchFields: DCGM_ST_PROFILING_LIBRARY_ERROR\)/);
      const d = (await nextSamples(gpu, 1)).devices[0];
      expect(d.status.tensorActiveRatio).toBe('not_supported');
      expect(d.reasons.tensorActiveRatio).toMatch(/DCGM_ST_PROFILING_LIBRARY_ERROR/);
    });
  });

  it('forced DCGM (sources.dcgm true) fails to open with the vendor code of the lock', async () => {
    const e = await openGpuTelemetry({ simulate: 'dcgm-profiling-in-use', sources: { dcgm: true } }).then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(GpuTelemetryError);
    expect(e).toMatchObject({ code: 'SOURCE_UNAVAILABLE', vendorCode: -34, vendorMessage: 'DCGM_ST_IN_USE' });
  });
});

describe("dcgm.mode 'embedded' and 'hostengine'", () => {
  it("'embedded' next to a running nv-hostengine: an embedded engine, which meets the held counters and falls back to GPM", async () => {
    await withTelemetry({ simulate: 'dcgm-hostengine', intervalMs: 100, dcgm: { mode: 'embedded' } }, async (gpu) => {
      expect(gpu.backends.dcgm.state).toBe('unavailable');
      expect(gpu.backends.dcgm.reason).toMatch(/DCGM_ST_IN_USE/);
      const s = await profilingOk(gpu);
      expect(s.devices[0].source.tensorActiveRatio).toBe('gpm');
    });
    const file = writeScenario({ ...constantScenario(), dcgm: { hostengines: ['localhost:5555'] } });
    await withTelemetry({ simulate: file, intervalMs: 100, dcgm: { mode: 'embedded' } }, async (gpu) => {
      expect(gpu.backends.dcgm.detail).toMatch(/^embedded host engine \(dcgm\.mode 'embedded'\), /);
    });
  });

  it("'hostengine' never starts an embedded engine: none running is DCGM unavailable (an error when forced)", async () => {
    const file = writeScenario({ ...constantScenario(), dcgm: {} });
    await withTelemetry({ simulate: file, intervalMs: 100, dcgm: { mode: 'hostengine' } }, async (gpu) => {
      expect(gpu.backends.dcgm.state).toBe('unavailable');
      expect(gpu.backends.dcgm.reason).toBe(
        "no nv-hostengine answers at localhost:5555 or /tmp/nv-hostengine (dcgm.mode 'hostengine' never starts an embedded one)",
      );
      expect((await profilingOk(gpu)).devices[0].source.tensorActiveRatio).toBe('gpm');
    });
    await expect(openGpuTelemetry({ simulate: file, dcgm: { mode: 'hostengine' }, sources: { dcgm: true } })).rejects.toMatchObject({
      code: 'SOURCE_UNAVAILABLE',
      vendorCode: -21,
    });
    await withTelemetry({ simulate: 'dcgm-hostengine', intervalMs: 100, dcgm: { mode: 'hostengine' } }, async (gpu) => {
      expect(gpu.backends.dcgm.detail).toMatch(/^nv-hostengine at localhost:5555 \(found running\), /);
    });
  });

  it('a given host keeps meaning that host engine, in every mode but embedded', async () => {
    await withTelemetry(
      { simulate: 'dcgm-profiling-in-use', intervalMs: 100, dcgm: { host: '10.255.0.9:5555', connectTimeoutMs: 100 } },
      async (gpu) => {
        expect(gpu.backends.dcgm.state).toBe('unavailable');
        expect(gpu.backends.dcgm.reason).toMatch(/^dcgmConnect_v2 to 10\.255\.0\.9:5555 failed with DCGM_ST_CONNECTION_NOT_VALID/);
      },
    );
  });

  it('rejects a mode it does not know, and a host with mode embedded', async () => {
    for (const [dcgm, message] of [
      [{ mode: 'remote' }, /dcgm\.mode: must be one of 'auto', 'hostengine', 'embedded', not "remote"/],
      [{ mode: 1 }, /dcgm\.mode: must be one of 'auto', 'hostengine', 'embedded', not 1/],
      [{ mode: 'embedded', host: 'localhost:5555' }, /dcgm\.host: names a running nv-hostengine: it cannot be combined with dcgm\.mode 'embedded'/],
    ] as const) {
      await expect(openGpuTelemetry({ simulate: 'dcgm-hostengine', dcgm: dcgm as never })).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        message: expect.stringMatching(message),
      });
    }
  });
});
