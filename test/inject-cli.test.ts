/**
 * The operator's side of the injection library: `gpu-telemetry inject-path`, `gpu-telemetry capture
 * --pid`, and the HTTP capture endpoint's `pid`, against the fake CUDA application.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { captureCommand } from '../src/cli/capture.js';
import { main } from '../src/cli/main.js';
import { createTelemetryServer, injectLibraryPath, openGpuTelemetry } from '../src/index.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { validateChromeTrace } from './capture-fixtures.js';
import { waitFor } from './helpers.js';
import { killAllTargets, makeBench, startTarget, type Bench } from './inject-helpers.js';

let bench: Bench;
beforeAll(() => {
  bench = makeBench();
  process.env.XDG_RUNTIME_DIR = bench.xdg;
});
afterEach(killAllTargets);
afterAll(() => bench.cleanup());

function run(argv: string[]) {
  let out = '';
  let err = '';
  return main(argv, { out: (t) => (out += t), err: (t) => (err += t) }).then((code) => ({ code, out, err }));
}

describe('gpu-telemetry inject-path', () => {
  it('prints the library for CUDA_INJECTION64_PATH (in process and through the bin)', async () => {
    const r = await run(['inject-path']);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toBe(`${injectLibraryPath()}\n`);
    expect(path.isAbsolute(r.out.trim())).toBe(true);
    expect(path.basename(r.out.trim())).toBe('libgpu_telemetry_inject.so');
    const bin = spawnSync(process.execPath, [path.join(PACKAGE_ROOT, 'dist', 'cli.js'), 'inject-path'], { encoding: 'utf8', timeout: 30_000 });
    expect(bin.status).toBe(0);
    expect(bin.stdout).toBe(r.out);
    expect((await run(['help', 'inject-path'])).out).toMatch(/^Usage: gpu-telemetry inject-path/);
    expect((await run(['inject-path', '--bogus'])).code).toBe(2);
  });
});

describe('gpu-telemetry capture --pid', () => {
  it('--step-range: writes the Chrome trace and the summary, progress on stderr, exit 0', async () => {
    const t = await startTarget(bench);
    const out = path.join(bench.dir, 'cli-trace.json');
    const summary = path.join(bench.dir, 'cli-summary.json');
    const r = await run(['capture', '--pid', String(t.pid), '--steps', '4', '--step-range', 'decode_step', '--out', out, '--summary', summary]);
    expect(r.err).toMatch(new RegExp(`captured: 4/4 steps of pid ${t.pid} \\(fake_cuda_app\\), \\d+ kernels, reason steps -> ${out}`));
    expect(r.code).toBe(0);
    // Not a terminal: whole lines, no carriage returns.
    expect(r.err).toMatch(new RegExp(`^pid ${t.pid}: (capturing|finished), step \\d/4`, 'm'));
    expect(r.err).not.toContain('\r');
    const chrome = validateChromeTrace(fs.readFileSync(out, 'utf8'));
    expect(chrome.otherData).toMatchObject({ pid: t.pid, reason: 'steps', stepsCaptured: 4 });
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    const s = JSON.parse(fs.readFileSync(summary, 'utf8')) as { meta: { pid: number }; summary: { steps: unknown[] } };
    expect(s.meta.pid).toBe(t.pid);
    expect(s.summary.steps).toHaveLength(4);
  });

  it('--duration-ms on a terminal: one updating progress line', async () => {
    const t = await startTarget(bench, { args: ['--no-nvtx'], nvtxInjection: false });
    const out = path.join(bench.dir, 'cli-window.json');
    let err = '';
    const code = await captureCommand(['--pid', String(t.pid), '--duration-ms', '600', '--out', out], { out: () => undefined, err: (x) => (err += x) }, {
      stderrIsTTY: true,
    });
    expect(code).toBe(0);
    expect(err).toContain('\r\x1b[K');
    expect(err).toMatch(/\d+\/600 ms/);
    expect(err).toMatch(/captured: 600 ms of pid/);
  });

  it('an incomplete trace is written and exits 3 (the target killed mid-capture); errors exit 1; usage 2', async () => {
    const t = await startTarget(bench);
    const out = path.join(bench.dir, 'cli-killed.json');
    const running = run(['capture', '--pid', String(t.pid), '--steps', '100000', '--step-range', 'decode_step', '--out', out]);
    await waitFor(() => fs.readdirSync(path.join(bench.xdg, 'gpu-telemetry')).length > 0 && /armed by/.test(t.stderr()));
    await t.kill();
    const r = await running;
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/captured \(incomplete\).*reason target_exited, truncated/);
    expect(JSON.parse(fs.readFileSync(out, 'utf8')).otherData.reason).toBe('target_exited');

    const plain = await startTarget(bench, { injected: false });
    const e = await run(['capture', '--pid', String(plain.pid), '--duration-ms', '10', '--out', out]);
    expect(e.code).toBe(1);
    expect(e.err).toMatch(/NOT_INJECTED: .*CUDA_INJECTION64_PATH/);

    for (const argv of [
      ['capture', '--pid', '1', '--duration-ms', '10'], // no --out
      ['capture', '--pid', '1', '--duration-ms', '10', '--step-range', 'x', '--out', out], // both
      ['capture', '--pid', '1', '--duration-ms', '10', '--steps', '3', '--out', out], // steps with a window
      ['capture', '--duration-ms', '10', '--out', out], // no pid
      ['capture', '--pid', 'abc', '--duration-ms', '10', '--out', out],
    ]) {
      const u = await run(argv);
      expect(u.code, argv.join(' ')).toBe(2);
      expect(u.err).toMatch(/Usage: gpu-telemetry capture/);
    }
    expect((await run(['help', 'capture'])).out).toMatch(/CUDA_INJECTION64_PATH=\$\(npx gpu-telemetry inject-path\)/);
    expect((await run(['--help'])).out).toMatch(/capture {6}a kernel trace of another CUDA process/);
  });

  it('--prewarm pays CUPTI\'s start-up in the process and leaves nothing enabled', async () => {
    const t = await startTarget(bench);
    const r = await run(['capture', '--pid', String(t.pid), '--prewarm']);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(new RegExp(`pre-warmed CUPTI in pid ${t.pid}: .*gpu_telemetry_sim\\.so \\(API 130001, cuda13\\)`));
    expect(await t.ask('state', 'STATE')).toBe('STATE subscribed=0 kinds=');
  });

  it('--list shows the injected processes', async () => {
    const t = await startTarget(bench);
    const r = await run(['capture', '--list', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toContainEqual(expect.objectContaining({ pid: t.pid, processName: 'fake_cuda_app', state: 'dormant' }));
    const table = await run(['capture', '--list']);
    expect(table.out).toMatch(new RegExp(`^${t.pid}\\s+fake_cuda_app\\s+\\d+\\s+dormant`, 'm'));
  });
});

describe('the HTTP capture endpoint with a pid', () => {
  const TOKEN = 'correct-horse-battery-staple';
  function request(port: number, urlPath: string, method = 'GET', body?: string) {
    return new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  it('POST /capture {pid, steps, stepRange} arms the process; GET returns its trace; errors map to 404/409/400', async () => {
    const t = await startTarget(bench, { args: ['--step-sleep-us', '5000'] });
    const gpu = await openGpuTelemetry({ simulate: 'a100-pcie-2', intervalMs: 200 });
    const server = createTelemetryServer(gpu, { capture: { token: TOKEN } });
    try {
      const { port } = await server.listen(0);
      const posted = await request(port, '/capture', 'POST', JSON.stringify({ pid: t.pid, steps: 3, stepRange: 'decode_step', flushIntervalMs: 20 }));
      expect(posted.status).toBe(201);
      const created = JSON.parse(posted.body) as { id: string; pid: number };
      expect(created.pid).toBe(t.pid);
      const busy = await request(port, '/capture', 'POST', JSON.stringify({ pid: t.pid, durationMs: 10 }));
      expect(busy.status).toBe(409);
      expect(JSON.parse(busy.body).code).toBe('CAPTURE_BUSY');
      let got = await request(port, `/capture/${created.id}`);
      for (let i = 0; got.status === 202 && i < 500; i++) {
        await new Promise((r) => setTimeout(r, 20));
        got = await request(port, `/capture/${created.id}`);
      }
      expect(got.status).toBe(200);
      expect(validateChromeTrace(got.body).otherData).toMatchObject({ pid: t.pid, stepsCaptured: 3 });
      const missing = await request(port, '/capture', 'POST', JSON.stringify({ pid: 4_000_000, durationMs: 10 }));
      expect([missing.status, JSON.parse(missing.body).code]).toEqual([404, 'TARGET_NOT_FOUND']);
      const bad = await request(port, '/capture', 'POST', JSON.stringify({ pid: t.pid }));
      expect([bad.status, JSON.parse(bad.body).code]).toEqual([400, 'INVALID_OPTION']);
    } finally {
      await server.close();
      await gpu.close();
    }
  });
});
