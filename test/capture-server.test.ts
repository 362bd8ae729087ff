/**
 * The capture endpoint of createTelemetryServer: every status code, the token check, and that none
 * of it disturbs sampling. The capture runs on a fake NativeCapture (the simulator's CUPTI is
 * exercised in capture-e2e.test.ts).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTelemetryServer, openGpuTelemetry, type GpuTelemetry, type TelemetryServerOptions } from '../src/index.js';
import { KernelCapture } from '../src/capture/capture.js';
import { fakeFactory, FakeNative } from './capture-fixtures.js';
import { waitFor } from './helpers.js';

const TOKEN = 'correct-horse-battery-staple';
const auth = { authorization: `Bearer ${TOKEN}` };

function request(port: number, urlPath: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: init.method ?? 'GET', headers: init.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    if (init.body !== undefined) req.write(init.body);
    req.end();
  });
}

const json = (body: string) => JSON.parse(body) as Record<string, unknown>;

let gpu: GpuTelemetry;
let cleanup: (() => Promise<void>)[] = [];
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-capture-server-'));

beforeEach(async () => {
  FakeNative.reset();
  gpu = await openGpuTelemetry({ simulate: 'a100-pcie-2', intervalMs: 50 });
  // The instance's capture, on the fake native side.
  Object.defineProperty(gpu, 'capture', { value: new KernelCapture({ cuptiLibrary: null, simulator: null }, fakeFactory) });
});
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
  const live = gpu.capture.active;
  if (live) await live.cancel().catch(() => undefined);
  await gpu.close();
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

async function serve(options: TelemetryServerOptions = { capture: { token: TOKEN } }) {
  const server = createTelemetryServer(gpu, options);
  const address = await server.listen(0);
  cleanup.push(() => server.close());
  return address.port;
}

describe('capture endpoint', () => {
  it('is off (404) unless a token is configured; a short token is refused', async () => {
    const port = await serve({});
    const r = await request(port, '/capture', { method: 'POST', headers: auth, body: '{}' });
    expect(r.status).toBe(404);
    expect(FakeNative.instances).toHaveLength(0);
    expect(() => createTelemetryServer(gpu, { capture: { token: 'short' } })).toThrow(/capture\.token: must be a string of at least 16 characters/);
    expect(() => createTelemetryServer(gpu, { capture: { token: TOKEN, maxBodyBytes: 0 } })).toThrow(/maxBodyBytes/);
  });

  it('POST arms (201 + id + Location), GET reports progress (202) then serves the trace (200)', async () => {
    const port = await serve();
    const posted = await request(port, '/capture', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"steps": 2, "timeoutMs": 30000}' });
    expect(posted.status).toBe(201);
    const body = json(posted.body);
    expect(body.id).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{8}$/);
    expect(posted.headers.location).toBe(`/capture/${body.id}`);
    expect(body).toMatchObject({ state: 'capturing', progress: { steps: 0, stepsRequested: 2 } });
    expect(FakeNative.last.options.steps).toBe(2);

    const running = await request(port, `/capture/${body.id}`, { headers: auth });
    expect(running.status).toBe(202);
    expect(json(running.body)).toMatchObject({ id: body.id, state: 'capturing' });

    const handle = gpu.capture.active!;
    handle.step();
    handle.step();
    await handle.done;
    const done = await request(port, `/capture/${body.id}`, { headers: auth });
    expect(done.status).toBe(200);
    expect(done.headers['content-type']).toMatch(/^application\/json/);
    expect(done.headers['content-disposition']).toBe(`attachment; filename="gpu-capture-${body.id}.trace.json"`);
    const chrome = json(done.body) as { traceEvents: { cat?: string }[]; otherData: { id: string; reason: string } };
    expect(chrome.otherData).toMatchObject({ id: body.id, reason: 'steps' });
    expect(chrome.traceEvents.filter((e) => e.cat === 'kernel')).toHaveLength(2);
    const summary = await request(port, `/capture/${body.id}/summary`, { headers: auth });
    expect(summary.status).toBe(200);
    expect(json(summary.body)).toMatchObject({ meta: { id: body.id }, summary: { records: { kernels: 2, steps: 2 } } });
  });

  it('401 without or with a wrong token (any length); 404 / 405 for routes', async () => {
    const port = await serve();
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer nope' }, { authorization: `Bearer ${TOKEN}x` }, { authorization: TOKEN }, { authorization: `Basic ${TOKEN}` }]) {
      const r = await request(port, '/capture', { method: 'POST', headers, body: '{}' });
      expect(r.status, JSON.stringify(headers)).toBe(401);
      expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(json(r.body).error).toMatch(/missing or wrong capture token/);
    }
    expect((await request(port, '/capture/some-id')).status).toBe(401);
    expect(FakeNative.instances).toHaveLength(0);

    const unknownRoute = await request(port, '/capture/a/b/c', { headers: auth });
    expect(unknownRoute.status).toBe(404);
    const unknownId = await request(port, '/capture/does-not-exist', { headers: auth });
    expect(unknownId.status).toBe(404);
    expect(json(unknownId.body).error).toMatch(/no capture with id does-not-exist/);
    const getList = await request(port, '/capture', { headers: auth });
    expect(getList.status).toBe(405);
    expect(getList.headers.allow).toBe('POST');
    const postId = await request(port, '/capture/abc', { method: 'POST', headers: auth, body: '{}' });
    expect(postId.status).toBe(405);
    expect(postId.headers.allow).toBe('GET, HEAD');
  });

  it('413 for oversized bodies (declared or streamed), 400 for malformed JSON and invalid options', async () => {
    const port = await serve({ capture: { token: TOKEN, maxBodyBytes: 1024 } });
    const big = JSON.stringify({ steps: 1, pad: 'x'.repeat(5000) });
    const declared = await request(port, '/capture', { method: 'POST', headers: { ...auth, 'content-length': String(big.length) }, body: big });
    expect(declared.status).toBe(413);
    expect(json(declared.body).error).toMatch(/larger than the limit of 1024 bytes/);
    const streamed = await request(port, '/capture', { method: 'POST', headers: auth, body: big }); // chunked
    expect(streamed.status).toBe(413);

    const malformed = await request(port, '/capture', { method: 'POST', headers: auth, body: '{"steps": 2,' });
    expect(malformed.status).toBe(400);
    expect(json(malformed.body).error).toMatch(/^malformed JSON body/);
    const notObject = await request(port, '/capture', { method: 'POST', headers: auth, body: '[1,2]' });
    expect(notObject.status).toBe(400);
    const invalid = await request(port, '/capture', { method: 'POST', headers: auth, body: '{"steps": 0}' });
    expect(invalid.status).toBe(400);
    expect(json(invalid.body)).toMatchObject({ code: 'INVALID_OPTION', option: 'steps', error: expect.stringMatching(/options\.steps: must be from 1 to 100000/) });
    const unknown = await request(port, '/capture', { method: 'POST', headers: auth, body: '{"pad": 1}' });
    expect(unknown.status).toBe(400);
    expect(FakeNative.instances).toHaveLength(0);
  });

  it('a second capture while one is live is 409; CUPTI held by another profiler is 409 too', async () => {
    const port = await serve();
    const first = await request(port, '/capture', { method: 'POST', headers: auth, body: '' }); // empty body: defaults
    expect(first.status).toBe(201);
    const id = json(first.body).id;
    const second = await request(port, '/capture', { method: 'POST', headers: auth, body: '{"steps": 1}' });
    expect(second.status).toBe(409);
    expect(json(second.body)).toMatchObject({ code: 'CAPTURE_BUSY', active: `/capture/${id}` });
    await gpu.capture.active!.cancel();
    FakeNative.nextStart = { ok: false, code: 'CUPTI_BUSY', message: 'another profiler (Nsight, Kineto) holds CUPTI' };
    const held = await request(port, '/capture', { method: 'POST', headers: auth, body: '{}' });
    expect(held.status).toBe(409);
    expect(json(held.body).code).toBe('CUPTI_BUSY');
    FakeNative.nextStart = { ok: false, code: 'LIBRARY_NOT_FOUND', message: 'libcupti.so: cannot open shared object file' };
    const missing = await request(port, '/capture', { method: 'POST', headers: auth, body: '{}' });
    expect(missing.status).toBe(503);
    expect(json(missing.body).error).toMatch(/LIBRARY_NOT_FOUND/);
  });

  it('with a store directory: the finished capture is saved and served from it', async () => {
    const dir = path.join(root, 'store');
    const port = await serve({ capture: { token: TOKEN, dir, keepFiles: 2 } });
    const posted = json((await request(port, '/capture', { method: 'POST', headers: auth, body: '{"steps": 1}' })).body);
    gpu.capture.active!.step();
    const file = path.join(dir, `gpu-capture-${posted.id}.trace.json`);
    await waitFor(() => fs.existsSync(file));
    // The file exists: the entry turns 200 once the save has settled (a condition, not a time budget).
    let served = await request(port, `/capture/${posted.id}`, { headers: auth });
    for (const deadline = Date.now() + 30_000; served.status !== 200 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 20));
      served = await request(port, `/capture/${posted.id}`, { headers: auth });
    }
    expect(served.status).toBe(200);
    expect(served.body).toBe(fs.readFileSync(file, 'utf8'));
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('none of it disturbs sampling or /metrics', async () => {
    const port = await serve();
    const before = gpu.snapshot().seq;
    await request(port, '/capture', { method: 'POST', headers: {}, body: '{}' });
    await request(port, '/capture', { method: 'POST', headers: auth, body: '{oops' });
    await request(port, '/capture', { method: 'POST', headers: auth, body: '{"steps": 1}' });
    await request(port, '/capture', { method: 'POST', headers: auth, body: '{"steps": 1}' });
    await waitFor(() => gpu.snapshot().seq >= before + 3);
    const metrics = await request(port, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^gpu_telemetry_up 1$/m);
    expect(gpu.snapshot().stale).toBe(false);
  });
});
