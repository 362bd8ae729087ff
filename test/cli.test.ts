/** The gpu-telemetry command line: in-process for detail, and the installed bin end to end. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import { FIELD_NAMES } from '../src/index.js';
import { PACKAGE_ROOT } from '../src/paths.js';

function run(argv: string[]) {
  let out = '';
  let err = '';
  return main(argv, { out: (t) => (out += t), err: (t) => (err += t) }).then((code) => ({ code, out, err }));
}

describe('gpu-telemetry snapshot', () => {
  it('--json prints every device and field with value, unit, status and source', async () => {
    const r = await run(['snapshot', '--json', '--simulate', 'h100-sxm-8', '--interval-ms', '50']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(doc.driver.simulated).toBe(true);
    expect(doc.devices).toHaveLength(8);
    const d = doc.devices[0];
    expect(Object.keys(d.fields)).toEqual([...FIELD_NAMES]);
    expect(d.fields.smClockHz).toMatchObject({ unit: 'Hz', status: 'ok', source: 'nvml' });
    expect(d.fields.fanSpeedRatio).toMatchObject({ value: null, status: 'not_supported', reason: expect.any(String) });
    // Rates are real: the command waits for a second sample.
    expect(d.fields.pcieTxBytesPerSecond.status).toBe('ok');
  });

  it('prints a readable table with units', async () => {
    const r = await run(['snapshot', '--simulate', 'gb10', '--interval-ms', '50']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/SIMULATED \(scenario gb10\)/);
    expect(r.out).toMatch(/GPU 0 {2}NVIDIA GB10 \(simulated\)/);
    expect(r.out).toMatch(/smClockHz\s+[\d.]+ [GM]Hz {2}nvml/);
    expect(r.out).toMatch(/memoryUsedBytes\s+[\d.]+ GiB {2}meminfo/);
    expect(r.out).toMatch(/pcieLinkWidth\s+— {2}not_supported \(unified-memory GPU/);
    expect(r.out).toMatch(/powerWatts\s+[\d.]+ W/);
  });

  it('fails with a typed message and exit 1 when the driver is missing', async () => {
    const r = await run(['snapshot', '--nvml', '/nonexistent/libnvidia-ml.so.1']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/LIBRARY_NOT_FOUND: could not load NVML/);
  });

  it('usage errors exit 2 and show the help', async () => {
    const bad = await run(['snapshot', '--frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/Unknown option '--frobnicate'/);
    expect(bad.err).toMatch(/Usage: gpu-telemetry snapshot/);
    const interval = await run(['snapshot', '--interval-ms', 'fast']);
    expect(interval.code).toBe(2);
    expect(interval.err).toMatch(/--interval-ms must be a whole number/);
    const mode = await run(['serve', '--dcgm-mode', 'remote']);
    expect(mode.code).toBe(2);
    expect(mode.err).toMatch(/--dcgm-mode must be auto, hostengine, embedded, not "remote"/);
    const both = await run(['serve', '--dcgm-mode', 'embedded', '--dcgm-host', 'localhost:5555']);
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/--dcgm-host names a running nv-hostengine: it cannot be combined with --dcgm-mode embedded/);
    const unknown = await run(['frob']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/unknown command "frob"/);
  });

  it('--help works on every command', async () => {
    for (const argv of [['--help'], ['snapshot', '--help'], ['scenarios', '--help'], ['help', 'snapshot']]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.out, argv.join(' ')).toMatch(/^Usage: gpu-telemetry/);
    }
  });
});

describe('gpu-telemetry scenarios', () => {
  it('lists the shipped scenarios', async () => {
    const r = await run(['scenarios', '--json']);
    const names = JSON.parse(r.out).map((s: { name: string }) => s.name);
    expect(names).toEqual(expect.arrayContaining(['h100-sxm-8', 'gb10', 'a100-pcie-2', 'fault-gpu-lost', 'fault-hung-call']));
  });
});

describe('the installed bin', () => {
  it('runs from dist/ as a shebang script', () => {
    const bin = path.join(PACKAGE_ROOT, 'dist', 'cli.js');
    const r = spawnSync(process.execPath, [bin, 'snapshot', '--simulate', 'a100-pcie-2', '--json', '--interval-ms', '50'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).devices).toHaveLength(2);
  });
});

describe('gpu-telemetry watch', () => {
  it('renders every GPU with bars, memory source and throttle reasons, then stops after --count', async () => {
    const r = await run(['watch', '--simulate', 'gb10', '--count', '2', '--interval-ms', '50']);
    expect(r.code).toBe(0);
    const frames = r.out.trim().split('\n\n\n');
    expect(r.out.match(/^gpu-telemetry watch · driver 580\.95\.05 · 1 GPU\(s\)/gm)).toHaveLength(2);
    expect(frames[0]).toMatch(/GPU 0 NVIDIA GB10 \(simulated\)/);
    expect(r.out).toMatch(/memory [█░]+ +\d+%.*\(system, unified\)/);
    expect(r.out).toMatch(/clocks held by: /);
  });
});

describe('gpu-telemetry serve', () => {
  it('--dcgm-host reaches that nv-hostengine; an unreachable one is a stated fallback in the start-up line; --dcgm-mode picks the engine', async () => {
    const { serveCommand } = await import('../src/cli/serve.js');
    const { EventEmitter } = await import('node:events');
    for (const [args, expected] of [
      [['--simulate', 'h100-sxm-8', '--dcgm-host', 'localhost:5555'], /sources: nvml, dcgm \(nv-hostengine at localhost:5555, /],
      [
        ['--simulate', 'h100-sxm-8', '--dcgm-host', '10.255.0.9:5555'],
        /sources: nvml, gpm \(NVML GPM\); dcgm: unavailable \(dcgmConnect_v2 to 10\.255\.0\.9:5555 failed with DCGM_ST_CONNECTION_NOT_VALID/,
      ],
      [['--simulate', 'dcgm-hostengine'], /sources: nvml, dcgm \(nv-hostengine at localhost:5555 \(found running\), /],
      [
        ['--simulate', 'dcgm-hostengine', '--dcgm-mode', 'embedded'],
        /sources: nvml, gpm \(NVML GPM\); dcgm: unavailable \(DCGM watches no GPU: the GPU's profiling counters are held by another DCGM host engine or a profiler \(dcgmWatchFields: DCGM_ST_IN_USE\)/,
      ],
    ] as const) {
      let out = '';
      const signals = new EventEmitter();
      const done = serveCommand([...args, '--port', '0'], { out: (t) => (out += t), err: (t) => (out += t) }, signals);
      const deadline = Date.now() + 15_000;
      while (!out.includes('serving http://') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      signals.emit('SIGTERM');
      expect(await done).toBe(0);
      expect(out).toMatch(expected);
    }
  });
});
