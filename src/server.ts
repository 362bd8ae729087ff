/**
 * The HTTP side: /metrics (Prometheus text or OpenMetrics by Accept header), /healthz, /readyz.
 * node:http only: the handler is small, and every request path is bounded (timeouts, body size).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, type OpenMetricsContentType } from 'prom-client';
import { registerGpuMetrics, type PrometheusExportOptions } from './exporters/prometheus.js';
import { asProvider, type GpuMetricsSource } from './exporters/source.js';
import { createCaptureEndpoint, type CaptureEndpointOptions, type CaptureRoute } from './capture/endpoint.js';

export type { CaptureEndpointOptions } from './capture/endpoint.js';

export interface TelemetryServerOptions extends PrometheusExportOptions {
  /** Header and request timeouts against slow clients (ms, default 10,000). */
  requestTimeoutMs?: number;
  /**
   * The kernel-trace capture endpoint (POST /capture, GET /capture/<id>), off unless set with a
   * token: `{ token, dir?, maxBodyBytes?, keepFiles?, keepDays? }`.
   */
  capture?: CaptureEndpointOptions;
}

export interface TelemetryServer {
  readonly server: http.Server;
  /** Starts listening (default 127.0.0.1:9400); resolves with the bound address. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** Stops accepting connections and closes idle ones. */
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

export function sendText(res: http.ServerResponse, status: number, body: string, headers: http.OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(body.endsWith('\n') ? body : `${body}\n`);
}

export function wantsOpenMetrics(accept: string | undefined): boolean {
  return typeof accept === 'string' && /application\/openmetrics-text/i.test(accept);
}

export function createTelemetryServer(source: GpuMetricsSource, options: TelemetryServerOptions = {}): TelemetryServer {
  const provider = asProvider(source);
  const text = new Registry();
  const openMetrics = new Registry<OpenMetricsContentType>();
  openMetrics.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  const { capture: captureOptions, ...metricOptions } = options;
  const captureRoute: CaptureRoute | null = captureOptions !== undefined ? createCaptureEndpoint(provider, captureOptions) : null;
  registerGpuMetrics([text, openMetrics as unknown as Registry], provider, metricOptions);

  const routes: Record<string, Record<string, Handler>> = {
    '/metrics': {
      GET: async (req, res) => {
        const registry = wantsOpenMetrics(req.headers.accept) ? openMetrics : text;
        const body = await registry.metrics();
        res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
        res.end(body);
      },
    },
    '/healthz': { GET: (_req, res) => sendText(res, 200, 'ok') },
    '/readyz': {
      GET: (_req, res) => {
        const gpu = provider.telemetry();
        if (!gpu) {
          const err = provider.lastError();
          sendText(res, 503, `not ready: GPUs unavailable (${err ? `${err.code}: ${err.message}` : 'not opened yet'})`);
          return;
        }
        const snap = gpu.snapshot();
        if (snap.stale) {
          sendText(res, 503, `not ready: sample is stale (${snap.staleReason})`);
          return;
        }
        sendText(res, 200, `ready: ${snap.devices.length} GPU(s), sample age ${Math.round(snap.ageMs)} ms`);
      },
    },
    '/': {
      GET: (_req, res) => sendText(res, 200, 'gpu-telemetry\n  /metrics  Prometheus / OpenMetrics\n  /healthz  liveness\n  /readyz   readiness'),
    },
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (captureRoute) {
      try {
        if (captureRoute(req, res, url.pathname)) return;
      } catch (e) {
        if (!res.headersSent) sendText(res, 500, `internal error: ${(e as Error).message}`);
        else res.destroy();
        return;
      }
    }
    const route = routes[url.pathname];
    if (!route) {
      sendText(res, 404, `not found: ${url.pathname} (try /metrics)`);
      return;
    }
    const handler = route[req.method ?? 'GET'] ?? (req.method === 'HEAD' ? route.GET : undefined);
    if (!handler) {
      sendText(res, 405, `method ${req.method} not allowed on ${url.pathname}`, { allow: Object.keys(route).join(', ') });
      return;
    }
    Promise.resolve(handler(req, res)).catch((e: unknown) => {
      if (!res.headersSent) sendText(res, 500, `internal error: ${(e as Error).message}`);
      else res.destroy();
    });
  });
  const timeout = options.requestTimeoutMs ?? 10_000;
  server.headersTimeout = timeout;
  server.requestTimeout = timeout;
  server.keepAliveTimeout = 5_000;

  return {
    server,
    listen(port = 9400, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    },
  };
}

