/**
 * DCGM as the first source of the profiling signals, against the simulator's DCGM: the source
 * chain (DCGM → GPM → not_supported with the reason), exact values, forced vs preferred DCGM, a
 * host engine that goes away and comes back, sentinels, and DCGM's own GPU numbering.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GpuTelemetryError, openGpuTelemetry, type GpuSnapshot } from '../src/index.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { constantScenario, nextSamples, waitFor, withTelemetry, writeScenario } from './helpers.js';

const TENSOR_SEQUENCE = [0.11, 0.37, 0.83, 0.52];

/** h100-sxm-8 with an exact (noise-free) tensor shape: a sequence that steps every 300 ms. */
function h100WithTensorSequence(dcgm: boolean): string {
  const scenario = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'scenarios', 'h100-sxm-8.json'), 'utf8'));
  scenario.name = dcgm ? 'h100-dcgm-sequence' : 'h100-no-dcgm-sequence';
  scenario.devices[0].profile = { tensorActive: { shape: 'sequence', stepMs: 300, values: TENSOR_SEQUENCE } };
  if (!dcgm) delete scenario.dcgm;
  return writeScenario(scenario);
}

/** Tensor readings of GPU 0 over `count` fresh samples. */
async function tensorReadings(gpu: Awaited<ReturnType<typeof openGpuTelemetry>>, count: number) {
  const readings: { value: number | null; source: string; status: string }[] = [];
  let seq = gpu.snapshot().seq;
  while (readings.length < count) {
    const s: GpuSnapshot = await nextSamples(gpu, 1);
    if (s.seq === seq) continue;
    seq = s.seq;
    const d = s.devices[0];
    readings.push({ value: d.fields.tensorActiveRatio, source: d.source.tensorActiveRatio, status: d.status.tensorActiveRatio });
  }
  return readings;
}

/** Every value is one of the sequence's (within 1e-9), and the changes walk the sequence in order. */
function expectFollowsSequence(values: number[]) {
  const steps: number[] = [];
  for (const v of values) {
    const i = TENSOR_SEQUENCE.findIndex((x) => Math.abs(x - v) <= 1e-9);
    expect(i, `value ${v} is not in the scenario's sequence`).toBeGreaterThanOrEqual(0);
    if (steps.length === 0 || steps[steps.length - 1] !== i) steps.push(i);
  }
  expect(steps.length).toBeGreaterThanOrEqual(3);
  for (let k = 1; k < steps.length; k++) {
    // Samples every 100 ms against 300 ms steps: consecutive distinct values are neighbours.
    expect((steps[k - 1] + 1) % TENSOR_SEQUENCE.length, `step ${steps[k - 1]} → ${steps[k]}`).toBe(steps[k]);
  }
}

describe('the profiling source chain', () => {
  it('h100-sxm-8 with DCGM: tensor activity from DCGM follows the scenario shape within 1e-9', async () => {
    await withTelemetry({ simulate: h100WithTensorSequence(true), intervalMs: 100 }, async (gpu) => {
      expect(gpu.backends.dcgm).toMatchObject({ state: 'active', reason: null });
      // The shipped scenario runs an nv-hostengine on localhost:5555: the default mode uses it.
      expect(gpu.backends.dcgm.detail).toMatch(/^nv-hostengine at localhost:5555 \(found running\), /);
      const readings = await tensorReadings(gpu, 14);
      expect(readings.every((r) => r.source === 'dcgm' && r.status === 'ok')).toBe(true);
      expectFollowsSequence(readings.map((r) => r.value!));
      const d = gpu.snapshot().devices[0];
      for (const f of ['smActiveRatio', 'dramActiveRatio', 'pcieTxBytesPerSecond', 'nvlinkRxBytesPerSecond'] as const) {
        expect.soft(d.source[f], f).toBe('dcgm');
        expect.soft(d.status[f], f).toBe('ok');
      }
      // Link rates are real numbers in bytes/s, not sentinels.
      expect(d.fields.nvlinkRxBytesPerSecond!).toBeGreaterThan(0);
      expect(d.fields.nvlinkRxBytesPerSecond!).toBeLessThan(18 * 25e9);
    });
  });

  it('the same scenario with DCGM removed gives GPM-sourced values on the same shape', async () => {
    await withTelemetry({ simulate: h100WithTensorSequence(false), intervalMs: 100 }, async (gpu) => {
      expect(gpu.backends.dcgm.state).toBe('unavailable');
      expect(gpu.backends.dcgm.reason).toMatch(/simulated machine has no DCGM/);
      expect(gpu.backends.gpm.state).toBe('active');
      const readings = (await tensorReadings(gpu, 15)).filter((r) => r.status === 'ok');
      expect(readings.every((r) => r.source === 'gpm')).toBe(true);
      expectFollowsSequence(readings.map((r) => r.value!));
    });
  });

  it('sources: { dcgm: false } forbids DCGM even where it works', async () => {
    await withTelemetry({ simulate: 'h100-sxm-8', intervalMs: 100, sources: { dcgm: false } }, async (gpu) => {
      expect(gpu.backends.dcgm).toMatchObject({ state: 'disabled' });
      await nextSamples(gpu, 2);
      expect(gpu.snapshot().devices[0].source.tensorActiveRatio).toBe('gpm');
    });
  });

  it('the shipped h100-no-dcgm scenario gets its profiling fields from GPM', async () => {
    await withTelemetry({ simulate: 'h100-no-dcgm', intervalMs: 100 }, async (gpu) => {
      expect(gpu.backends.dcgm.state).toBe('unavailable');
      const s = await nextSamples(gpu, 2);
      expect(s.devices.map((d) => d.source.tensorActiveRatio)).toEqual(['gpm', 'gpm']);
      // GPU 1 is the stall: busy, tensor pipes idle.
      expect(s.devices[1].fields.gpuUtilizationRatio!).toBeGreaterThan(0.8);
      expect(s.devices[1].fields.tensorActiveRatio!).toBeLessThan(0.05);
    });
  });

  it('with neither DCGM nor GPM (a100-pcie-2): not_supported, and the reason names both', async () => {
    await withTelemetry({ simulate: 'a100-pcie-2', intervalMs: 100 }, async (gpu) => {
      const d = (await nextSamples(gpu, 1)).devices[0];
      for (const f of ['tensorActiveRatio', 'smActiveRatio', 'dramActiveRatio'] as const) {
        expect(d.fields[f]).toBeNull();
        expect(d.status[f]).toBe('not_supported');
        expect(d.reasons[f]).toMatch(/DCGM: the simulated machine has no DCGM/);
        expect(d.reasons[f]).toMatch(/GPM: .*NOT_SUPPORTED|GPM: no GPU supports GPM/);
      }
    });
  });
});

describe('DCGM maps GPUs by UUID', () => {
  it('reads each GPU its own values although DCGM numbers the GPUs in another order', async () => {
    const base = constantScenario();
    const device = base.devices[0] as Record<string, unknown>;
    const file = writeScenario({
      ...base,
      devices: [0.15, 0.45, 0.75].map((v) => ({ ...device, profile: { tensorActive: { shape: 'constant', value: v, noise: 0 } } })),
      dcgm: {},
    });
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      const s = await nextSamples(gpu, 2);
      expect(s.devices.map((d) => d.source.tensorActiveRatio)).toEqual(['dcgm', 'dcgm', 'dcgm']);
      expect(s.devices.map((d) => d.fields.tensorActiveRatio)).toEqual([0.15, 0.45, 0.75]);
    });
  });
});

describe('DCGM answers that are not readings', () => {
  it('a field DCGM marks NOT_SUPPORTED falls to GPM; a GPU whose profiling DCGM cannot watch falls to GPM alone', async () => {
    const base = constantScenario();
    const file = writeScenario({
      ...base,
      devices: [{ ...(base.devices[0] as object), count: 2 }],
      dcgm: { unsupportedFields: [1006], noProfilingDevices: [1] },
    });
    await withTelemetry({ simulate: file, intervalMs: 100 }, async (gpu) => {
      const s = await nextSamples(gpu, 2);
      const [d0, d1] = s.devices;
      expect(d0.source.tensorActiveRatio).toBe('dcgm');
      expect(d0.source.fp64ActiveRatio).toBe('gpm');
      expect(d1.source.tensorActiveRatio).toBe('gpm');
      for (const d of s.devices) {
        for (const f of ['tensorActiveRatio', 'fp64ActiveRatio'] as const) {
          // Never a sentinel (2^47 + 2) published as a number.
          if (d.fields[f] !== null) expect(d.fields[f]!).toBeLessThanOrEqual(1);
        }
      }
    });
  });

  it('with GPM forbidden too, that field is not_supported and says DCGM answered NOT_SUPPORTED', async () => {
    const base = constantScenario();
    const file = writeScenario({ ...base, dcgm: { unsupportedFields: [1006] } });
    await withTelemetry({ simulate: file, intervalMs: 100, sources: { gpm: false } }, async (gpu) => {
      const d = (await nextSamples(gpu, 1)).devices[0];
      expect(d.status.fp64ActiveRatio).toBe('not_supported');
      expect(d.fields.fp64ActiveRatio).toBeNull();
      expect(d.reasons.fp64ActiveRatio).toMatch(/needs DCGM or a Hopper/);
      expect(d.source.tensorActiveRatio).toBe('dcgm');
    });
  });
});

describe('connecting to nv-hostengine', () => {
  it('connects to a running host engine given as dcgm.host', async () => {
    await withTelemetry({ simulate: 'h100-sxm-8', intervalMs: 100, dcgm: { host: 'localhost:5555' } }, async (gpu) => {
      expect(gpu.backends.dcgm.state).toBe('active');
      expect(gpu.backends.dcgm.detail).toMatch(/nv-hostengine at localhost:5555/);
      expect((await nextSamples(gpu, 1)).devices[3].source.tensorActiveRatio).toBe('dcgm');
    });
  });

  it('an unreachable host engine is a typed error when DCGM is forced', async () => {
    const e = await openGpuTelemetry({
      simulate: 'h100-sxm-8',
      dcgm: { host: '10.255.0.9:5555', connectTimeoutMs: 100 },
      sources: { dcgm: true },
    }).then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(GpuTelemetryError);
    expect(e).toMatchObject({ code: 'SOURCE_UNAVAILABLE', vendorCode: -21 });
    expect((e as Error).message).toMatch(/options\.sources\.dcgm is true but DCGM cannot be used: dcgmConnect_v2 to 10\.255\.0\.9:5555 failed with DCGM_ST_CONNECTION_NOT_VALID/);
  });

  it('…and a quiet fallback to GPM with the reason logged when DCGM was only preferred', async () => {
    await withTelemetry({ simulate: 'h100-sxm-8', intervalMs: 100, dcgm: { host: '10.255.0.9:5555', connectTimeoutMs: 100 } }, async (gpu) => {
      expect(gpu.backends.dcgm.state).toBe('unavailable');
      expect(gpu.backends.dcgm.reason).toMatch(/DCGM_ST_CONNECTION_NOT_VALID/);
      expect((await nextSamples(gpu, 2)).devices[0].source.tensorActiveRatio).toBe('gpm');
    });
    // The log line, with NODE_DEBUG=gpu-telemetry (in a child: debuglog reads it at start-up).
    const script = `import('${path.join(PACKAGE_ROOT, 'dist', 'index.js')}').then(async (m) => {
      const gpu = await m.openGpuTelemetry({ simulate: 'h100-sxm-8', dcgm: { host: '10.255.0.9:5555', connectTimeoutMs: 100 } });
      await gpu.close();
    });`;
    const child = spawnSync(process.execPath, ['-e', script], {
      env: { ...process.env, NODE_DEBUG: 'gpu-telemetry' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(child.status, child.stderr).toBe(0);
    expect(child.stderr).toMatch(/GPU-TELEMETRY \d+: dcgm unavailable, falling back: dcgmConnect_v2 to 10\.255\.0\.9:5555 failed with DCGM_ST_CONNECTION_NOT_VALID/);
  });

  it('a host engine that dies turns the DCGM fields to error with the reason; they recover when it is back', async () => {
    const trigger = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gt-dcgm-')), 'down');
    const base = constantScenario();
    const file = writeScenario({ ...base, dcgm: { hostengines: ['localhost:5555'] }, faults: [{ type: 'dcgm_down', whenFileExists: trigger }] });
    await withTelemetry({ simulate: file, intervalMs: 50, lostRetryMs: 200, dcgm: { host: 'localhost:5555' } }, async (gpu) => {
      await nextSamples(gpu, 2);
      expect(gpu.snapshot().devices[0].status.tensorActiveRatio).toBe('ok');
      fs.writeFileSync(trigger, '');
      const down = await waitFor(() => {
        const d = gpu.snapshot().devices[0];
        return d.status.tensorActiveRatio === 'error' ? d : undefined;
      });
      expect(down.source.tensorActiveRatio).toBe('dcgm');
      expect(down.fields.tensorActiveRatio).toBeNull();
      expect(down.reasons.tensorActiveRatio).toMatch(/host engine is gone/);
      // NVML keeps sampling the rest of the device.
      expect(down.status.powerWatts).toBe('ok');
      expect(down.state).toBe('ok');
      fs.rmSync(trigger);
      const back = await waitFor(() => {
        const d = gpu.snapshot().devices[0];
        return d.status.tensorActiveRatio === 'ok' ? d : undefined;
      });
      expect(back.source.tensorActiveRatio).toBe('dcgm');
      expect(back.fields.tensorActiveRatio).toBeGreaterThanOrEqual(0);
    });
  });

  it('rejects a malformed dcgm option naming it', async () => {
    for (const [dcgm, message] of [
      [{ host: '' }, /dcgm\.host: must be "host:port"/],
      [{ host: 'a b:1' }, /dcgm\.host: must be "host:port"/],
      [{ port: 5555 }, /dcgm\.port: unknown option/],
      [{ connectTimeoutMs: 5 }, /dcgm\.connectTimeoutMs: must be between 100 and 60000/],
      ['localhost', /dcgm: must be an object/],
    ] as const) {
      await expect(openGpuTelemetry({ simulate: 'h100-sxm-8', dcgm: dcgm as never })).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        message: expect.stringMatching(message),
      });
    }
  });
});
