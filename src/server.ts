/**
 * The HTTP side: /metrics (Prometheus text, or OpenMetrics by Accept header in default naming; always
 * the text format in dcgm naming, as dcgm-exporter), /healthz, /readyz.
 * node:http only: the handler is small, and every request path is bounded (timeouts, body size).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, type OpenMetricsContentType } from 'prom-client';
import { describeValue, invalidOption } from './errors.js';
import { checkDcgmCombination, checkFleetOptions, deviceUsable, registerGpuMetrics, type PrometheusExportOptions } from './exporters/prometheus.js';
import type { DeviceSample } from './snapshot.js';
import { asProvider, type GpuMetricsSource } from './exporters/source.js';
import { createCaptureEndpoint, type CaptureEndpointOptions, type CaptureRoute } from './capture/endpoint.js';

export type { CaptureEndpointOptions } from './capture/endpoint.js';

export interface TelemetryServerOptions extends PrometheusExportOptions {
  /**
   * Header and request timeouts against slow clients (ms, 100 to 600,000; default 10,000). A client
   * that has not sent its whole request by then gets 408 and its connection is closed.
   */
  requestTimeoutMs?: number;
  /**
   * The kernel-trace capture endpoint (POST /capture, GET /capture/<id>), off unless set with a
   * token: `{ token, dir?, maxBodyBytes?, keepFiles?, keepDays? }`.
   */
  capture?: CaptureEndpointOptions;
}

const SERVER_OPTIONS = new Set(['names', 'perLink', 'processes', 'maxProcesses', 'hostname', 'dcgmHostnameLabel', 'requestTimeoutMs', 'capture', 'kubernetes']);

/** Checks server / exporter options; every mistake is an INVALID_OPTION naming the option. */
export function checkServerOptions(options: unknown): TelemetryServerOptions {
  if (options === undefined || options === null) return {};
  const proto = typeof options === 'object' ? (Object.getPrototypeOf(options) as unknown) : undefined;
  if (typeof options !== 'object' || Array.isArray(options) || (proto !== Object.prototype && proto !== null)) {
    throw invalidOption('', `server options must be a plain object like { names: 'dcgm' }, not ${describeValue(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!SERVER_OPTIONS.has(key)) throw invalidOption(key, `unknown server option (allowed: ${[...SERVER_OPTIONS].join(', ')})`);
  }
  if (o.names !== undefined && o.names !== 'default' && o.names !== 'dcgm') {
    throw invalidOption('names', `must be "default" or "dcgm", not ${describeValue(o.names)}`);
  }
  for (const key of ['perLink', 'processes'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw invalidOption(key, `must be true or false, not ${describeValue(o[key])}`);
  }
  checkDcgmCombination(o);
  checkFleetOptions(o);
  if (o.hostname !== undefined && (typeof o.hostname !== 'string' || o.hostname.length > 253)) {
    throw invalidOption('hostname', `must be a host name of up to 253 characters, not ${describeValue(o.hostname)}`);
  }
  const t = o.requestTimeoutMs;
  if (t !== undefined && (typeof t !== 'number' || !Number.isInteger(t) || t < 100 || t > 600_000)) {
    throw invalidOption('requestTimeoutMs', `must be a whole number of milliseconds from 100 to 600000, not ${describeValue(t)}`);
  }
  return o as TelemetryServerOptions;
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

/** Why a lost or failing device is down: the reason of its first field in that state. */
function firstReason(d: DeviceSample): string | null {
  for (const [field, r] of Object.entries(d.reasons) as [keyof DeviceSample['status'], string | undefined][]) {
    if (r && d.status[field] === d.state) return r.length > 160 ? `${r.slice(0, 160)}…` : r;
  }
  return null;
}

export function createTelemetryServer(source: GpuMetricsSource, options: TelemetryServerOptions = {}): TelemetryServer {
  options = checkServerOptions(options);
  const provider = asProvider(source);
  const text = new Registry();
  const openMetrics = new Registry<OpenMetricsContentType>();
  openMetrics.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  const { capture: captureOptions, ...metricOptions } = options;
  const captureRoute: CaptureRoute | null = captureOptions !== undefined ? createCaptureEndpoint(provider, captureOptions) : null;
  const metrics = registerGpuMetrics([text, openMetrics as unknown as Registry], provider, metricOptions);

  const routes: Record<string, Record<string, Handler>> = {
    '/metrics': {
      GET: async (req, res) => {
        // dcgm naming answers the text format whatever the scraper prefers, as dcgm-exporter does: in
        // OpenMetrics its counters (DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION, …) would have to be named
        // …_total, and every dashboard and alert written for dcgm-exporter would find nothing.
        if (metricOptions.names !== 'dcgm' && wantsOpenMetrics(req.headers.accept)) {
          const body = await openMetrics.metrics();
          res.writeHead(200, { 'content-type': openMetrics.contentType, 'cache-control': 'no-store' });
          res.end(body);
          return;
        }
        // The text format is rendered directly (same metrics, same values): several times faster
        // than prom-client's generic formatter for ~600 series (bench/, section 3).
        const body = metrics.renderText();
        res.writeHead(200, { 'content-type': text.contentType, 'cache-control': 'no-store' });
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
        const usable = snap.devices.filter(deviceUsable);
        if (usable.length === 0) {
          // Every GPU lost or in error (e.g. the driver went away mid-run): nothing this exporter
          // reports is a reading, so it is not ready, and says why per GPU.
          const why = snap.devices.map((d) => `GPU ${d.index} ${d.state}${firstReason(d) ? `: ${firstReason(d)}` : ''}`);
          sendText(res, 503, `not ready: no usable GPU (${snap.devices.length ? why.join('; ') : 'no GPU found'})`);
          return;
        }
        const down = snap.devices.length - usable.length;
        sendText(
          res,
          200,
          `ready: ${usable.length} GPU(s) usable${down ? ` (${down} of ${snap.devices.length} lost or in error)` : ''}, sample age ${Math.round(snap.ageMs)} ms`,
        );
      },
    },
    '/': {
      GET: (_req, res) => sendText(res, 200, 'gpu-telemetry\n  /metrics  Prometheus / OpenMetrics\n  /healthz  liveness\n  /readyz   readiness'),
    },
  };

  const timeout = options.requestTimeoutMs ?? 10_000;
  // Node checks the header/request deadlines only every connectionsCheckingInterval (30 s by
  // default): a slowloris client would hold its connection that much longer than the timeout.
  const server = http.createServer({ connectionsCheckingInterval: Math.min(1000, Math.max(50, timeout / 4)) }, (req, res) => {
    // Never `new URL(req.url)`: a request line like "GET // HTTP/1.1" makes it throw, and a throw
    // here is an uncaught exception that ends the process (found by the hostile-input test).
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const pathname = q >= 0 ? target.slice(0, q) : target;
    const shown = pathname.length > 100 ? `${pathname.slice(0, 100)}…` : pathname;
    if (captureRoute) {
      try {
        if (captureRoute(req, res, pathname)) return;
      } catch (e) {
        if (!res.headersSent) sendText(res, 500, `internal error: ${(e as Error).message}`);
        else res.destroy();
        return;
      }
    }
    const route = Object.hasOwn(routes, pathname) ? routes[pathname] : undefined;
    if (!route) {
      sendText(res, 404, `not found: ${shown} (try /metrics)`);
      return;
    }
    const method = req.method ?? 'GET';
    const handler = Object.hasOwn(route, method) ? route[method] : method === 'HEAD' ? route.GET : undefined;
    if (!handler) {
      sendText(res, 405, `method ${method} not allowed on ${shown}`, { allow: Object.keys(route).join(', ') });
      return;
    }
    let result;
    try {
      result = handler(req, res);
    } catch (e) {
      result = Promise.reject(e);
    }
    Promise.resolve(result).catch((e: unknown) => {
      if (!res.headersSent) sendText(res, 500, `internal error: ${(e as Error).message}`);
      else res.destroy();
    });
  });
  server.headersTimeout = timeout;
  server.requestTimeout = timeout;
  server.keepAliveTimeout = 5_000;
  // A connection that never sends a byte is not covered by the two timeouts above: close idle
  // sockets after the same time.
  server.timeout = timeout;

  return {
    server,
    listen(port = 9400, host = '127.0.0.1') {
      if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
        return Promise.reject(invalidOption('port', `must be a whole number from 0 to 65535, not ${describeValue(port)}`));
      }
      // An empty host would make Node listen on every interface: refuse it rather than expose /metrics.
      if (typeof host !== 'string' || host.trim() === '' || host.length > 253) {
        return Promise.reject(invalidOption('host', `must be an address or host name (default 127.0.0.1), not ${describeValue(host)}`));
      }
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

