/** The HTTP endpoints: routing, negotiation, readiness, and every bad request answered clearly. */
import fs from 'node:fs';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createTelemetryServer, openGpuTelemetry, TelemetrySupervisor, type GpuTelemetry, type TelemetryServer } from '../src/index.js';
import { constantScenario, waitFor, writeScenario } from './helpers.js';

function request(port: number, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers: init.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    if (init.body) req.write(init.body);
    req.end();
  });
}

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function serve(gpuOrSupervisor: GpuTelemetry | TelemetrySupervisor) {
  const server: TelemetryServer = createTelemetryServer(gpuOrSupervisor);
  const address = await server.listen(0);
  cleanup.push(() => server.close());
  return address.port;
}

describe('telemetry server', () => {
  it('serves /metrics as Prometheus text, or OpenMetrics when asked', async () => {
    const gpu = await openGpuTelemetry({ simulate: 'a100-pcie-2', intervalMs: 100 });
    cleanup.push(() => gpu.close());
    const port = await serve(gpu);
    const text = await request(port, '/metrics');
    expect(text.status).toBe(200);
    expect(text.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(text.body).toMatch(/^gpu_telemetry_up 1$/m);
    const om = await request(port, '/metrics', { headers: { accept: 'application/openmetrics-text; version=1.0.0' } });
    expect(om.headers['content-type']).toMatch(/^application\/openmetrics-text/);
    expect(om.body.endsWith('# EOF\n')).toBe(true);
    const head = await request(port, '/metrics', { method: 'HEAD' });
    expect(head.status).toBe(200);
  });

  it('/healthz is always ok; /readyz follows the GPUs and the sample age', async () => {
    const base = constantScenario();
    const file = writeScenario({ ...base, faults: [{ type: 'hang', call: 'nvmlDeviceGetPowerUsage', atMs: 800, durationMs: 2500 }] });
    const gpu = await openGpuTelemetry({ simulate: file, intervalMs: 50, staleAfterMs: 300, closeTimeoutMs: 100 });
    cleanup.push(() => gpu.close());
    const port = await serve(gpu);
    expect((await request(port, '/healthz')).body).toBe('ok\n');
    const ready = await request(port, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatch(/^ready: 1 GPU/);
    await waitFor(() => gpu.snapshot().stale);
    const stale = await request(port, '/readyz');
    expect(stale.status).toBe(503);
    expect(stale.body).toMatch(/stale \(nvmlDeviceGetPowerUsage on GPU 0 has not returned/);
    expect((await request(port, '/healthz')).status).toBe(200);
  });

  it('/readyz is 503 with the reason when no GPU is usable (the driver went away), 200 while one is', async () => {
    const base = constantScenario();
    const trigger = writeScenario({}).replace(/\.json$/, '.fault');
    const file = writeScenario({
      ...base,
      devices: [{ ...base.devices[0], count: 2 }],
      faults: [
        { type: 'gpu_lost', device: 1, atMs: 0 },
        { type: 'driver_gone', code: 9, whenFileExists: trigger },
      ],
    });
    const gpu = await openGpuTelemetry({ simulate: file, intervalMs: 50, lostRetryMs: 60_000 });
    cleanup.push(async () => {
      fs.rmSync(trigger, { force: true });
      await gpu.close();
    });
    const port = await serve(gpu);
    await waitFor(() => gpu.snapshot().devices[1].state === 'gpu_lost' && gpu.snapshot().devices[0].state === 'ok');
    const partly = await request(port, '/readyz');
    expect(partly.status).toBe(200);
    expect(partly.body).toMatch(/^ready: 1 GPU\(s\) usable \(1 of 2 lost or in error\)/);
    fs.writeFileSync(trigger, '');
    await waitFor(() => gpu.snapshot().devices.every((d) => d.state === 'error' || d.state === 'gpu_lost'));
    const none = await request(port, '/readyz');
    expect(none.status).toBe(503);
    expect(none.body).toMatch(/^not ready: no usable GPU \(GPU 0 error: .*NVML_ERROR_DRIVER_NOT_LOADED.*; GPU 1 gpu_lost/);
    fs.rmSync(trigger);
    await waitFor(() => gpu.snapshot().devices[0].state === 'ok');
    expect((await request(port, '/readyz')).status).toBe(200);
  });

  it('without GPUs: /metrics answers with gpu_telemetry_up 0, /readyz says why', async () => {
    const supervisor = new TelemetrySupervisor({ libraries: { nvml: '/nonexistent/libnvidia-ml.so.1' } });
    await supervisor.start();
    cleanup.push(() => supervisor.close());
    const port = await serve(supervisor);
    const metrics = await request(port, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^gpu_telemetry_up 0$/m);
    expect(metrics.body).toMatch(/^gpu_telemetry_down_info\{code="LIBRARY_NOT_FOUND"\} 1$/m);
    const ready = await request(port, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatch(/LIBRARY_NOT_FOUND/);
  });

  it('unknown paths are 404 and wrong methods 405 with Allow', async () => {
    const supervisor = new TelemetrySupervisor({ simulate: 'a100-pcie-2' });
    await supervisor.start();
    cleanup.push(() => supervisor.close());
    const port = await serve(supervisor);
    const missing = await request(port, '/nope');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatch(/not found: \/nope/);
    const post = await request(port, '/metrics', { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET');
    const traversal = await request(port, '/../../etc/passwd');
    expect(traversal.status).toBe(404);
  });
});
