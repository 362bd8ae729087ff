/**
 * End to end through `gpu-telemetry serve`: the DCGM host engine dies mid-run and comes back.
 * The process lives, the health series say what happened, the profiling series come back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { constantScenario, waitFor, writeScenario } from './helpers.js';
import { parseExposition, valuesOf } from './exposition.js';

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

describe('serve while the DCGM host engine dies and comes back', () => {
  it('backend_up goes 0 with the DCGM series withheld, the rest stays, and all recover', async () => {
    const trigger = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gt-serve-dcgm-')), 'hostengine-down');
    const base = constantScenario();
    const scenario = writeScenario({ ...base, dcgm: { hostengines: ['localhost:5555'] }, faults: [{ type: 'dcgm_down', whenFileExists: trigger }] });
    const child = spawn(
      process.execPath,
      [path.join(PACKAGE_ROOT, 'dist', 'cli.js'), 'serve', '--simulate', scenario, '--port', '0', '--interval-ms', '100', '--dcgm-host', 'localhost:5555'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(child);
    let out = '';
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (out += c));
    const url = await waitFor(() => /serving (http:\/\/\S+\/metrics)/.exec(out)?.[1], 15_000);
    const scrape = async () => parseExposition(await (await fetch(url)).text()).lines;

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
