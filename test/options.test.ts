/** Option validation: every bad input is an INVALID_OPTION that names the option and what is allowed. */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GpuTelemetryError, openGpuTelemetry, type GpuTelemetryOptions } from '../src/index.js';
import { resolveOptions } from '../src/options.js';
import { writeScenario } from './helpers.js';

async function rejection(options: unknown): Promise<GpuTelemetryError> {
  try {
    await openGpuTelemetry(options as GpuTelemetryOptions);
  } catch (e) {
    expect(e).toBeInstanceOf(GpuTelemetryError);
    return e as GpuTelemetryError;
  }
  throw new Error('expected a rejection');
}

describe('option validation', () => {
  it.each([
    [{ intervalMs: 0 }, 'intervalMs', /between 10 and 3600000/],
    [{ intervalMs: -5 }, 'intervalMs', /between 10/],
    [{ intervalMs: Number.NaN }, 'intervalMs', /finite number/],
    [{ intervalMs: '500' }, 'intervalMs', /not "500"/],
    [{ intervalMs: Infinity }, 'intervalMs', /finite number/],
    [{ interval: 500 }, 'interval', /unknown option \(allowed: intervalMs/],
    [{ libraries: 'libnvidia-ml.so.1' }, 'libraries', /must be an object/],
    [{ libraries: { nvml: '' } }, 'libraries.nvml', /non-empty path/],
    [{ libraries: { nvml: 42 } }, 'libraries.nvml', /not 42/],
    [{ libraries: { nvml: 'a\0b' } }, 'libraries.nvml', /NUL/],
    [{ libraries: { rocm: 'x' } }, 'libraries.rocm', /unknown library/],
    [{ simulate: '' }, 'simulate', /scenario name/],
    [{ simulate: 7 }, 'simulate', /not 7/],
    [{ simulate: 'h200-nvl-99' }, 'simulate', /unknown scenario "h200-nvl-99"; shipped scenarios are .*h100-sxm-8/],
    [{ simulate: 'h100-sxm-8', libraries: { nvml: 'libnvidia-ml.so.1' } }, 'simulate', /cannot be combined/],
    [{ staleAfterMs: 100, intervalMs: 1000 }, 'staleAfterMs', /between 1000/],
    [{ openTimeoutMs: 0 }, 'openTimeoutMs', /between 1/],
  ])('%j → INVALID_OPTION on %s', async (options, option, message) => {
    const e = await rejection(options);
    expect(e.code).toBe('INVALID_OPTION');
    expect(e.option).toBe(option);
    expect(e.message).toMatch(message);
  });

  it('rejects a non-object, saying what it got', async () => {
    for (const [bad, shown] of [
      [42, '42'],
      [[1], 'an array'],
      [new Date(0), 'a Date'],
      [new Map(), 'a Map'],
      [() => 1, 'a function'],
      ['h100-sxm-8', '"h100-sxm-8"'],
    ] as const) {
      const e = await rejection(bad);
      expect(e.code).toBe('INVALID_OPTION');
      expect(e.option).toBe('');
      expect(e.message).toBe(`options: must be a plain object like { intervalMs: 500 }, not ${shown}`);
    }
  });

  it('defaults: 1 s interval, stale after 3 intervals (at least 1 s), the standard soname', () => {
    delete process.env.GPU_TELEMETRY_SIMULATE;
    delete process.env.GPU_TELEMETRY_NVML_LIB;
    const r = resolveOptions(undefined);
    expect(r.intervalMs).toBe(1000);
    expect(r.staleAfterMs).toBe(3000);
    expect(r.nvmlCandidates).toEqual(['libnvidia-ml.so.1', 'libnvidia-ml.so']);
    expect(r.scenario).toBeNull();
    expect(resolveOptions({ intervalMs: 100 }).staleAfterMs).toBe(1000);
  });

  it('GPU_TELEMETRY_SIMULATE selects the simulator; an explicit option wins over the environment', () => {
    process.env.GPU_TELEMETRY_SIMULATE = 'gb10';
    try {
      expect(resolveOptions({}).scenario?.name).toBe('gb10');
      expect(resolveOptions({ simulate: 'a100-pcie-2' }).scenario?.name).toBe('a100-pcie-2');
      expect(resolveOptions({ libraries: { nvml: '/x/libnvidia-ml.so.1' } }).scenario).toBeNull();
    } finally {
      delete process.env.GPU_TELEMETRY_SIMULATE;
    }
  });
});

describe('scenario files', () => {
  it('a missing file is INVALID_SCENARIO', async () => {
    const e = await rejection({ simulate: '/nonexistent/scenario.json' });
    expect(e.code).toBe('INVALID_SCENARIO');
    expect(e.message).toMatch(/cannot read scenario/);
  });

  it('malformed JSON is INVALID_SCENARIO', async () => {
    const file = writeScenario({});
    fs.writeFileSync(file, '{"name": "x", devices: []}');
    expect((await rejection({ simulate: file })).code).toBe('INVALID_SCENARIO');
  });

  it.each([
    [{ name: 'x' }, /scenario\.devices: must be an array/],
    [{ name: 'x', devices: [{ name: 'G' }] }, /devices\[0\]\.memoryTotalBytes: is required/],
    [{ name: 'x', devices: [{ name: 'G', memoryTotalBytes: 1e9, power: { limitWatts: -1 } }] }, /devices\[0\]\.power\.limitWatts: must be between 1 and 10000, not -1/],
    [{ name: 'x', devices: [{ name: 'G', memoryTotalBytes: 1e9, colour: 'green' }] }, /devices\[0\]\.colour: unknown key/],
    [{ name: 'x', devices: [{ name: 'G', memoryTotalBytes: 1e9, load: { shape: 'zigzag' } }] }, /load\.shape: must be one of constant, cycle, square, sequence/],
    [{ name: 'x', devices: [{ name: 'G', memoryTotalBytes: 1e9 }], faults: [{ type: 'gpu_lost', device: 3 }] }, /faults\[0\]\.device: must be between -1 and 0/],
    [{ name: 'x', devices: [{ name: 'G', memoryTotalBytes: 1e9 }], faults: [{ type: 'error' }] }, /faults\[0\]\.code: is required/],
    [{ name: 'x', devices: [{ name: 'G', memoryTotalBytes: 1e9 }], faults: [{ type: 'gpu_lost', whenFileExists: 'rel/path' }] }, /faults\[0\]\.whenFileExists: must be an absolute path/],
  ])('the simulator rejects %j naming the path', async (scenario, message) => {
    const e = await rejection({ simulate: writeScenario(scenario) });
    expect(e.code).toBe('INVALID_SCENARIO');
    expect(e.message).toMatch(message);
  });
});
