/** The gpu-telemetry command line: in-process for detail, and the installed bin end to end. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import { fitLine, renderWatch } from '../src/cli/watch.js';
import { FIELD_NAMES } from '../src/index.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { constantScenario, nextSamples, waitFor, withTelemetry, writeScenario } from './helpers.js';

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

  it('help for an unknown command is a usage error (exit 2), as documented', async () => {
    const r = await run(['help', 'frob']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no help for "frob": unknown command/);
    expect(r.err).toMatch(/Usage: gpu-telemetry <command>/);
    expect((await run(['help'])).code).toBe(0);
  });

  it('--help works on every command', async () => {
    for (const argv of [['--help'], ['snapshot', '--help'], ['scenarios', '--help'], ['help', 'snapshot']]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.out, argv.join(' ')).toMatch(/^Usage: gpu-telemetry/);
    }
  });
});

describe('gpu-telemetry snapshot: what it waits for', () => {
  const pendingIn = (doc: { devices: { fields: Record<string, { status: string }> }[] }) =>
    doc.devices.flatMap((d) => Object.entries(d.fields).filter(([, f]) => f.status === 'pending').map(([k]) => k));

  it('GPM metrics: waits for a pair of GPM samples (never printed pending, never from a pair < 100 ms)', async () => {
    // No DCGM: the profiling fields (and PCIe rates) come from GPM.
    const t0 = Date.now();
    const r = await run(['snapshot', '--json', '--simulate', 'h100-no-dcgm']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(pendingIn(doc)).toEqual([]);
    for (const d of doc.devices) {
      expect(d.fields.tensorActiveRatio).toMatchObject({ status: 'ok', source: 'gpm' });
      expect(d.fields.pcieTxBytesPerSecond).toMatchObject({ status: 'ok', source: 'gpm' });
    }
    // The first GPM sample is taken at open: the first pair is complete 100 ms later at the earliest.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
  });

  it('rates from NVML counters: waits for their second sample', async () => {
    const r = await run(['snapshot', '--json', '--simulate', 'a100-pcie-2']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(pendingIn(doc)).toEqual([]);
    for (const d of doc.devices) expect(d.fields.pcieTxBytesPerSecond).toMatchObject({ status: 'ok', source: 'nvml' });
  });

  it('--json: waits for the second sample the per-link NVLink rates need', async () => {
    const r = await run(['snapshot', '--json', '--simulate', 'h100-sxm-8']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(pendingIn(doc)).toEqual([]);
    for (const d of doc.devices) {
      for (const l of d.nvlinks) if (l.up) expect(l.txBytesPerSecond !== null && l.rxBytesPerSecond !== null).toBe(true);
    }
  });

  it('the table: prints the first sample when nothing in it is pending (DCGM gives its rates at once)', async () => {
    const r = await run(['snapshot', '--simulate', 'h100-sxm-8']);
    expect(r.code).toBe(0);
    expect(r.out).not.toMatch(/pending/);
    expect(r.out).toMatch(/pcieTxBytesPerSecond\s+[\d.]+ [GMK]?i?B\/s {2}dcgm/);
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
  const bin = path.join(PACKAGE_ROOT, 'dist', 'cli.js');

  it('runs when reached through a symlink (npm bin links, pnpm node_modules)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-cli-link-'));
    fs.symlinkSync(bin, path.join(dir, 'gpu-telemetry'));
    fs.symlinkSync(path.join(PACKAGE_ROOT, 'dist'), path.join(dir, 'dist'));
    for (const entry of [path.join(dir, 'gpu-telemetry'), path.join(dir, 'dist', 'cli.js')]) {
      const r = spawnSync(process.execPath, [entry, 'help', 'scenarios'], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status, entry).toBe(0);
      expect(r.stdout, entry).toMatch(/^Usage: gpu-telemetry scenarios/);
    }
  });

  it('exits quietly when the reader closes the pipe early (scenarios | head -1)', () => {
    // `| true` closes the pipe before the CLI has started writing: every write gets EPIPE.
    for (const reader of ['true', 'head -1']) {
      const r = spawnSync('bash', ['-c', `"${process.execPath}" "${bin}" scenarios | ${reader}; echo "cli exit: \${PIPESTATUS[0]}" >&2`], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(r.stderr, reader).toBe('cli exit: 0\n');
    }
  });

  it('runs from dist/ as a shebang script', () => {
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
  const visible = (line: string) => line.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

  it('piped: plain frames without escape codes, every GPU with bars, memory source and throttle reasons, stops after --count', async () => {
    const r = await run(['watch', '--simulate', 'gb10', '--count', '2', '--interval-ms', '50']);
    expect(r.code).toBe(0);
    expect(r.out).not.toMatch(/\x1b/);
    expect(r.out.match(/^gpu-telemetry watch · driver 580\.95\.05 · 1 GPU\(s\)/gm)).toHaveLength(2);
    expect(r.out).toMatch(/^GPU 0 NVIDIA GB10 \(simulated\)$/m);
    expect(r.out).toMatch(/memory [█░]+ +\d+% .*\(source: meminfo, unified memory\)/);
    expect(r.out).toMatch(/clocks held by: /);
  });

  it('fits 8 GPUs into 120×40: header first, one compact row per GPU, each with its memory source', async () => {
    await withTelemetry({ simulate: 'h100-sxm-8', intervalMs: 50 }, async (gpu) => {
      const snap = await nextSamples(gpu, 2);
      const lines = renderWatch(gpu, snap, { width: 120, height: 40, color: true }).split('\n');
      expect(lines.length).toBeLessThanOrEqual(40);
      for (const l of lines) expect(visible(l).length, l).toBeLessThanOrEqual(120);
      expect(lines[0]).toMatch(/^gpu-telemetry watch · driver 550\.90\.07 · 8 GPU\(s\) · .* · SIMULATED \(h100-sxm-8\)$/);
      const rows = lines.map(visible).filter((l) => /^ {2}\d {2}H100/.test(l));
      expect(rows.map((l) => Number(l.trim().split(' ')[0]))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      for (const row of rows) expect(row).toMatch(/\d+\.\d\/79\.6 GiB {2}nvml /);

      // Room for the full view: six rows per GPU, the source on every memory line.
      const full = renderWatch(gpu, snap, { width: 120, height: 60 }).split('\n');
      expect(full.length).toBe(1 + 8 * 6);
      expect(full.filter((l) => /^ {2}memory .*\(source: nvml\)$/.test(l))).toHaveLength(8);

      // Narrow and short: columns give way, and GPUs that cannot be shown are counted, not cut off silently.
      const tiny = renderWatch(gpu, snap, { width: 60, height: 8 }).split('\n');
      expect(tiny.length).toBeLessThanOrEqual(8);
      for (const l of tiny) expect(l.length, l).toBeLessThanOrEqual(60);
      expect(tiny[tiny.length - 1]).toMatch(/^… 4 more GPU\(s\) not shown: the terminal has 8 rows/);
      expect(tiny.filter((l) => /^ {2}\d {2}/.test(l)).every((l) => / nvml /.test(l))).toBe(true);
    });
  });

  it('a lost GPU says so on its row', async () => {
    const base = constantScenario();
    const file = writeScenario({ ...base, devices: [{ ...base.devices[0], count: 8 }], faults: [{ type: 'gpu_lost', device: 3, atMs: 0 }] });
    await withTelemetry({ simulate: file, intervalMs: 50, lostRetryMs: 60_000 }, async (gpu) => {
      const snap = await waitFor(() => {
        const s = gpu.snapshot();
        return s.devices[3].state === 'gpu_lost' ? s : undefined;
      });
      const lines = renderWatch(gpu, snap, { width: 120, height: 40 }).split('\n');
      expect(lines.find((l) => /^ {2}3 /.test(l))).toMatch(/\[GPU_LOST\] /);
    });
  });

  it('fitLine cuts by visible characters and keeps colour codes whole', () => {
    const red = '\x1b[31m██████\x1b[0m';
    expect(fitLine(`ab${red}cd`, 5)).toBe('ab\x1b[31m███\x1b[0m');
    expect(fitLine('short', 10)).toBe('short');
  });
});

describe('gpu-telemetry serve', () => {
  it('--per-link / --processes with --names dcgm is a usage error, not an option silently ignored', async () => {
    for (const flag of ['--per-link', '--processes']) {
      const r = await run(['serve', '--simulate', 'a100-pcie-2', '--port', '0', '--names', 'dcgm', flag]);
      expect(r.code, flag).toBe(2);
      expect(r.err, flag).toMatch(new RegExp(`${flag} cannot be combined with --names dcgm`));
    }
  });

  it('--dcgm-hostname-label and --max-processes are checked, and only go with what they apply to', async () => {
    for (const [args, message] of [
      [['--names', 'dcgm', '--dcgm-hostname-label', 'HOSTNAME'], /--dcgm-hostname-label must be Hostname or hostname, not "HOSTNAME"/],
      [['--dcgm-hostname-label', 'hostname'], /--dcgm-hostname-label applies to --names dcgm only/],
      [['--max-processes', '8'], /--max-processes needs --processes/],
      [['--processes', '--max-processes', '65'], /max-processes/],
    ] as const) {
      const r = await run(['serve', '--simulate', 'a100-pcie-2', '--port', '0', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err, args.join(' ')).toMatch(message);
    }
  });

  it('a SIGTERM sent the moment the "serving" line is read stops it cleanly (the handlers are in before the line)', async () => {
    const { serveCommand } = await import('../src/cli/serve.js');
    const { EventEmitter } = await import('node:events');
    let out = '';
    const signals = new EventEmitter();
    // The signal arrives inside the write of the line, the earliest a supervisor could send it.
    // With no handler yet, a real process would die of it: here, nothing would ever stop serve.
    const io = {
      out: (t: string) => {
        out += t;
        if (t.includes('serving http://')) signals.emit('SIGTERM');
      },
      err: (t: string) => (out += t),
    };
    const done = serveCommand(['--simulate', 'a100-pcie-2', '--port', '0'], io, signals);
    const timeout = new Promise<string>((r) => setTimeout(() => r('still serving after 15 s'), 15_000).unref());
    expect(await Promise.race([done, timeout])).toBe(0);
    expect(out).toMatch(/serving http:\/\/[\s\S]*SIGTERM: stopping/);
  });

  it('--names dcgm --dcgm-hostname-label hostname: the label dcgm-exporter\'s main uses', async () => {
    const { serveCommand } = await import('../src/cli/serve.js');
    const { EventEmitter } = await import('node:events');
    let out = '';
    const signals = new EventEmitter();
    const done = serveCommand(['--simulate', 'a100-pcie-2', '--port', '0', '--names', 'dcgm', '--dcgm-hostname-label', 'hostname'], { out: (t) => (out += t), err: (t) => (out += t) }, signals);
    const deadline = Date.now() + 15_000;
    while (!out.includes('serving http://') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const url = /serving (http:\/\/\S+\/metrics)/.exec(out)![1];
    const body = await (await fetch(url)).text();
    signals.emit('SIGTERM');
    expect(await done).toBe(0);
    expect(body).toMatch(/^DCGM_FI_DEV_SM_CLOCK\{[^}]*,hostname="[^"]+"/m);
    expect(body).not.toMatch(/Hostname=/);
  });

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
