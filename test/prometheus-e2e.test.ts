/**
 * End to end: a real Prometheus (Debian's package) scrapes `gpu-telemetry serve --simulate` on
 * loopback with the shipped alert rules loaded; its query API sees the series of all 8 GPUs, and
 * after the simulator loses one GPU, gpu_telemetry_device_up for it is 0 (present, not absent)
 * and the XID 79 it reported just before falling off the bus is scraped and raises GpuXidErrors.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { sleep, waitFor } from './helpers.js';
import { PROMETHEUS, skipReason } from './system-packages.js';

if (!PROMETHEUS) skipReason('prometheus', 'prometheus');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

const children: ChildProcess[] = [];
afterAll(async () => {
  for (const c of children) c.kill('SIGTERM');
  await sleep(200);
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

async function query(promPort: number, q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  expect(body.status).toBe('success');
  return body.data.result;
}

describe.skipIf(!PROMETHEUS)('Prometheus scraping gpu-telemetry serve', () => {
  it('sees all 8 GPUs, then the lost one at device_up 0', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-prom-'));
    const scenario = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'scenarios', 'h100-sxm-8.json'), 'utf8'));
    scenario.name = 'h100-sxm-8-loses-gpu-5';
    // GPU 5 falls off the bus when the test creates this file, not on a timer: Prometheus can take
    // a while to come up on a loaded machine, and the first half needs all 8 GPUs present.
    const trigger = path.join(dir, 'lose-gpu-5');
    scenario.faults = [{ type: 'gpu_lost', device: 5, whenFileExists: trigger }];
    // Its last words: XID 79 the instant before the loss (within one sampling interval of it).
    scenario.xids = [{ device: 5, atMs: 0, code: 79, whenFileExists: trigger }];
    const scenarioFile = path.join(dir, 'scenario.json');
    fs.writeFileSync(scenarioFile, JSON.stringify(scenario));

    const [exporterPort, promPort] = [await freePort(), await freePort()];
    const exporter = spawn(
      process.execPath,
      [path.join(PACKAGE_ROOT, 'dist', 'cli.js'), 'serve', '--simulate', scenarioFile, '--port', String(exporterPort), '--interval-ms', '200'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(exporter);
    let exporterOut = '';
    exporter.stdout!.on('data', (c) => (exporterOut += c));
    exporter.stderr!.on('data', (c) => (exporterOut += c));
    await waitFor(() => exporterOut.includes('serving http://'), 15_000);
    expect(exporterOut).toMatch(/found: driver 550\.90\.07 .* 8 GPUs .* SIMULATED/);

    fs.writeFileSync(
      path.join(dir, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'rule_files:',
        `  - ${path.join(PACKAGE_ROOT, 'prometheus', 'alerts.yml')}`,
        'scrape_configs:',
        '  - job_name: gpu-telemetry',
        '    static_configs:',
        `      - targets: ['127.0.0.1:${exporterPort}']`,
        '',
      ].join('\n'),
    );
    const prometheus = spawn(
      PROMETHEUS!,
      [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    children.push(prometheus);
    let promErr = '';
    prometheus.stderr!.on('data', (c) => (promErr += c));

    // Prometheus comes up and scrapes us.
    let series: Awaited<ReturnType<typeof query>> = [];
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      try {
        series = await query(promPort, 'gpu_telemetry_device_up');
        if (series.length === 8) break;
      } catch {
        // not listening yet
      }
      await sleep(250);
    }
    expect(prometheus.exitCode, promErr).toBeNull();
    expect(series.map((s) => s.metric.gpu).sort()).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
    expect((await query(promPort, 'up{job="gpu-telemetry"}'))[0].value[1]).toBe('1');
    const clocks = await query(promPort, 'gpu_sm_clock_hertz');
    expect(clocks).toHaveLength(8);
    expect(clocks[0].metric).toMatchObject({ model: 'NVIDIA H100 80GB HBM3 (simulated)' });
    expect((await query(promPort, 'gpu_tensor_pipe_active_ratio')).length).toBe(8);
    expect((await query(promPort, 'gpu_telemetry_build_info'))[0].metric).toMatchObject({ simulated: 'true' });

    fs.writeFileSync(trigger, '');
    let lost: Awaited<ReturnType<typeof query>> = [];
    const lostDeadline = Date.now() + 30_000;
    while (Date.now() < lostDeadline) {
      lost = await query(promPort, 'gpu_telemetry_device_up{gpu="5"} == 0');
      if (lost.length === 1) break;
      await sleep(250);
    }
    expect(lost).toHaveLength(1);
    expect(lost[0].value[1]).toBe('0');
    // The others are still up, and GPU 5's value series are gone (no stand-in numbers).
    expect((await query(promPort, 'gpu_telemetry_device_up == 1')).length).toBe(7);
    await sleep(1500);
    expect((await query(promPort, 'gpu_power_watts{gpu="5"}')).length).toBe(0);

    // The XID that announced the loss comes from the driver's event stream, not from reading the
    // lost GPU: its counter stays, and the shipped alert sees it (pending: `for: 1m` not yet over).
    expect((await query(promPort, 'gpu_xid_errors_total{gpu="5"}'))[0]?.value[1]).toBe('1');
    expect((await query(promPort, 'gpu_last_xid{gpu="5"}'))[0]?.value[1]).toBe('79');
    let alerts: Awaited<ReturnType<typeof query>> = [];
    const alertDeadline = Date.now() + 20_000;
    while (Date.now() < alertDeadline) {
      alerts = await query(promPort, 'ALERTS{alertname="GpuXidErrors"}');
      if (alerts.length > 0) break;
      await sleep(250);
    }
    expect(alerts.map((a) => a.metric.gpu)).toEqual(['5']);
    expect(['pending', 'firing']).toContain(alerts[0].metric.alertstate);
  }, 120_000);
});
