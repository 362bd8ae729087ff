/**
 * End to end through `gpu-telemetry serve`: the DCGM host engine dies mid-run and comes back.
 * The process lives, the health series say what happened, the profiling series come back.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { constantScenario, writeScenario } from './helpers.js';
import { valuesOf } from './exposition.js';
import { killServeChildren, serveChild } from './serve-child.js';

afterAll(killServeChildren);

describe('serve while the DCGM host engine dies and comes back', () => {
  it('backend_up goes 0 with the DCGM series withheld, the rest stays, and all recover', async () => {
    const trigger = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gt-serve-dcgm-')), 'hostengine-down');
    const base = constantScenario();
    const scenario = writeScenario({ ...base, dcgm: { hostengines: ['localhost:5555'] }, faults: [{ type: 'dcgm_down', whenFileExists: trigger }] });
    const { child, scrape } = await serveChild(scenario, ['--dcgm-host', 'localhost:5555'], { intervalMs: 100, startTimeoutMs: 15_000 });

    let lines = await scrape();
    for (let i = 0; i < 100 && valuesOf(lines, 'gpu_tensor_pipe_active_ratio').length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      lines = await scrape();
    }
    expect(valuesOf(lines, 'gpu_telemetry_backend_up', { backend: 'dcgm' })).toEqual([1]);
    expect(valuesOf(lines, 'gpu_tensor_pipe_active_ratio')).toHaveLength(1);

    fs.writeFileSync(trigger, '');
    for (let i = 0; i < 100; i++) {
      lines = await scrape();
      if (valuesOf(lines, 'gpu_telemetry_backend_up', { backend: 'dcgm' })[0] === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(valuesOf(lines, 'gpu_telemetry_backend_up', { backend: 'dcgm' })).toEqual([0]);
    expect(valuesOf(lines, 'gpu_tensor_pipe_active_ratio')).toHaveLength(0);
    expect(valuesOf(lines, 'gpu_telemetry_field_unavailable', { field: 'tensorActiveRatio', source: 'dcgm', status: 'error' })).toEqual([1]);
    expect(valuesOf(lines, 'gpu_telemetry_device_up')).toEqual([1]);
    expect(valuesOf(lines, 'gpu_power_watts')).toHaveLength(1);
    expect(child.exitCode).toBeNull();

    fs.rmSync(trigger);
    // Reconnects every lostRetryMs (5 s by default).
    for (let i = 0; i < 150; i++) {
      lines = await scrape();
      if (valuesOf(lines, 'gpu_telemetry_backend_up', { backend: 'dcgm' })[0] === 1 && valuesOf(lines, 'gpu_tensor_pipe_active_ratio').length === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(valuesOf(lines, 'gpu_telemetry_backend_up', { backend: 'dcgm' })).toEqual([1]);
    expect(valuesOf(lines, 'gpu_tensor_pipe_active_ratio')).toHaveLength(1);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    expect(child.exitCode).toBe(0);
  }, 60_000);
});
