/**
 * The prom-client collector. Every value is read from the latest snapshot at scrape time (no
 * driver call on scrape); one snapshot serves a whole scrape. A value series appears only for a
 * real reading; the health series are always there and say why a value series is missing.
 */
import os from 'node:os';
import { createRequire } from 'node:module';
import type { Registry } from 'prom-client';
import { invalidOption } from '../errors.js';
import { captureStats, type CaptureStats } from '../capture/capture.js';
import { CLOCK_EVENT_REASONS, FIELDS, type FieldName, type FieldSpec } from '../fields.js';
import type { DeviceSample, GpuSnapshot } from '../snapshot.js';
import type { GpuTelemetry } from '../telemetry.js';
import { DCGM_DEFAULT_METRICS, type DcgmMetricSpec } from './dcgm-names.js';
import { asProvider, type GpuMetricsSource, type TelemetryProvider } from './source.js';

export interface PrometheusExportOptions {
  /** `default`: gpu_* names in base units. `dcgm`: dcgm-exporter's names, units and labels. */
  names?: 'default' | 'dcgm';
  /** Per-link NVLink series (adds `link` to the labels: up to 18 series per GPU per metric). */
  perLink?: boolean;
  /** Per-process memory series (adds `pid`: up to 64 series per GPU). */
  processes?: boolean;
  /** The Hostname label in dcgm mode (default os.hostname()). */
  hostname?: string;
}

type Labels = Record<string, string | number>;
interface Sample {
  labels: Labels;
  value: number;
}
interface MetricValue {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  aggregator: 'sum';
  values: Sample[];
}

/** A metric object prom-client's Registry can hold: it only calls get() and reads name/type. */
class SnapshotMetric {
  readonly aggregator = 'sum' as const;
  constructor(
    public name: string,
    readonly help: string,
    readonly type: 'gauge' | 'counter',
    private readonly read: (scrape: Scrape) => Sample[],
    private readonly scrapes: ScrapeCache,
  ) {}

  get(): MetricValue {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.read(this.scrapes.current()) };
  }

  // Registry.merge / reset hooks some code calls on metrics; nothing to reset here.
  reset(): void {}
}

/** The state one scrape reads: a single snapshot for every metric of the scrape. */
interface Scrape {
  gpu: GpuTelemetry | null;
  snapshot: GpuSnapshot | null;
  captures: CaptureStats;
}

/** Outcomes always exported (at 0 until one happens), so rate() and alerts see the series from the start. */
const CAPTURE_OUTCOMES = ['steps', 'max_bytes', 'max_records', 'timeout', 'cancelled', 'closed', 'error', 'failed'];

/**
 * One snapshot per scrape: prom-client asks every metric within the same tick, so the scrape's
 * state is taken once and reused until the microtask queue drains.
 */
class ScrapeCache {
  private cached: Scrape | null = null;
  constructor(private readonly provider: TelemetryProvider) {}

  current(): Scrape {
    if (this.cached) return this.cached;
    const gpu = this.provider.telemetry();
    let snapshot: GpuSnapshot | null = null;
    if (gpu) {
      try {
        snapshot = gpu.snapshot();
      } catch {
        snapshot = null; // closed between the two calls: report as down
      }
    }
    this.cached = { gpu: snapshot ? gpu : null, snapshot, captures: captureStats() };
    queueMicrotask(() => {
      this.cached = null;
    });
    return this.cached;
  }
}

function packageVersion(): string {
  try {
    const require = createRequire(import.meta.url);
    return (require('../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export interface RegisteredGpuMetrics {
  /** The metric names registered. */
  readonly names: readonly string[];
  /**
   * The same metrics rendered straight to the Prometheus text format (0.0.4) from one snapshot,
   * without going through prom-client's generic formatter: label sets are escaped once and reused
   * across scrapes. What `createTelemetryServer` answers /metrics with (OpenMetrics still goes
   * through prom-client).
   */
  renderText(): string;
  /** Removes every metric this call registered. */
  unregister(): void;
}

/**
 * Registers the GPU metrics with a prom-client Registry (or several). Works with a GpuTelemetry,
 * or a provider whose instance may come and go (see `serve`).
 */
export function registerGpuMetrics(
  registry: Registry | Registry[],
  source: GpuMetricsSource,
  options: PrometheusExportOptions = {},
): RegisteredGpuMetrics {
  const registries = Array.isArray(registry) ? registry : [registry];
  const provider = asProvider(source);
  const scrapes = new ScrapeCache(provider);
  const names = options.names ?? 'default';
  if (names !== 'default' && names !== 'dcgm') throw invalidOption('names', `must be "default" or "dcgm", not ${JSON.stringify(String(names))}`);
  if (options.hostname !== undefined && typeof options.hostname !== 'string') {
    throw invalidOption('hostname', `must be a string, not ${typeof options.hostname}`);
  }
  const hostname = options.hostname ?? os.hostname();
  const version = packageVersion();

  // Devices ever seen: a device that disappears keeps its device_up series (at 0) for as long as
  // the process runs, so an alert on it can fire instead of the series silently vanishing.
  const seenDevices = new Map<string, Labels>();

  const defaultLabels = (d: DeviceSample): Labels => ({ gpu: d.index, uuid: d.uuid, model: d.name });
  const dcgmLabels = (gpu: GpuTelemetry, d: DeviceSample): Labels => ({
    gpu: d.index,
    UUID: d.uuid,
    pci_bus_id: gpu.devices[d.index]?.pciBusId ?? '',
    device: `nvidia${d.index}`,
    modelName: d.name,
    Hostname: hostname,
    DCGM_FI_DRIVER_VERSION: gpu.driver.driverVersion,
  });

  // Metric definitions; each registry gets its own metric objects, because prom-client's
  // OpenMetrics rendering renames counters in place (strips "_total") on the objects it holds.
  const definitions: { name: string; help: string; type: 'gauge' | 'counter'; read: (s: Scrape) => Sample[] }[] = [];
  const add = (name: string, help: string, type: 'gauge' | 'counter', read: (s: Scrape) => Sample[]) =>
    definitions.push({ name, help, type, read });

  const realValues = (field: FieldName, scale: number, labelsOf: (gpu: GpuTelemetry, d: DeviceSample) => Labels) => {
    return (s: Scrape): Sample[] => {
      if (!s.snapshot || !s.gpu || s.snapshot.stale) return [];
      const out: Sample[] = [];
      for (const d of s.snapshot.devices) {
        const v = d.fields[field];
        if (v !== null && d.status[field] === 'ok') out.push({ labels: labelsOf(s.gpu, d), value: v * scale });
      }
      return out;
    };
  };

  if (names === 'dcgm') {
    for (const spec of DCGM_DEFAULT_METRICS) {
      add(spec.name, spec.help, spec.type, realValues(spec.field, spec.scale, dcgmLabels));
    }
  } else {
    for (const field of FIELDS) {
      if (field.name === 'clockEventReasons') continue; // emitted per reason below
      add(field.prometheus, helpFor(field), field.kind, realValues(field.name, 1, (_g, d) => defaultLabels(d)));
    }
    add(
      'gpu_clock_event_reason_active',
      'Whether a clock-event (throttle) reason is holding clocks down: 1 active, 0 not. Labels: reason.',
      'gauge',
      (s) => {
        if (!s.snapshot || s.snapshot.stale) return [];
        const out: Sample[] = [];
        for (const d of s.snapshot.devices) {
          if (!d.clockEventReasons) continue;
          for (const r of CLOCK_EVENT_REASONS) {
            out.push({ labels: { ...defaultLabels(d), reason: r.name }, value: d.clockEventReasons.includes(r.name) ? 1 : 0 });
          }
        }
        return out;
      },
    );
    if (options.perLink) {
      const linkMetric = (name: string, help: string, pick: (l: DeviceSample['nvlinks'][number]) => number | null) =>
        add(name, help, 'gauge', (s) => {
          if (!s.snapshot || s.snapshot.stale) return [];
          const out: Sample[] = [];
          for (const d of s.snapshot.devices) {
            for (const l of d.nvlinks) {
              const v = pick(l);
              if (v !== null) out.push({ labels: { ...defaultLabels(d), link: l.link }, value: v });
            }
          }
          return out;
        });
      linkMetric('gpu_nvlink_link_up', 'Whether an NVLink link is up (1) or down (0). Labels: link.', (l) => (l.up === null ? null : l.up ? 1 : 0));
      linkMetric('gpu_nvlink_link_transmit_bytes_per_second', 'NVLink data bytes sent per second on one link.', (l) => l.txBytesPerSecond);
      linkMetric('gpu_nvlink_link_receive_bytes_per_second', 'NVLink data bytes received per second on one link.', (l) => l.rxBytesPerSecond);
    }
    if (options.processes) {
      add('gpu_process_used_memory_bytes', 'GPU memory used by one compute process (bytes). Labels: pid.', 'gauge', (s) => {
        if (!s.snapshot || s.snapshot.stale) return [];
        const out: Sample[] = [];
        for (const d of s.snapshot.devices) {
          for (const p of d.processes) {
            if (p.usedMemoryBytes !== null) out.push({ labels: { ...defaultLabels(d), pid: p.pid }, value: p.usedMemoryBytes });
          }
        }
        return out;
      });
    }
  }

  // ---- health series: always present ----
  add('gpu_telemetry_up', 'Whether gpu-telemetry can read the GPUs (1) or not (0; see gpu_telemetry_down_info).', 'gauge', (s) => [
    { labels: {}, value: s.snapshot ? 1 : 0 },
  ]);
  add('gpu_telemetry_down_info', 'Why gpu-telemetry cannot read the GPUs (present only while it cannot). Labels: code.', 'gauge', (s) => {
    if (s.snapshot) return [];
    const err = provider.lastError();
    return [{ labels: { code: err?.code ?? 'CLOSED' }, value: 1 }];
  });
  add(
    'gpu_telemetry_device_up',
    'Whether a GPU answers (1) or is lost or in error (0). Kept for every GPU seen while the process runs.',
    'gauge',
    (s) => {
      const current = new Map<string, number>();
      if (s.snapshot) {
        for (const d of s.snapshot.devices) {
          const labels = defaultLabels(d);
          const key = `${d.index}/${d.uuid}`;
          seenDevices.set(key, labels);
          current.set(key, d.state === 'ok' ? 1 : 0);
        }
      }
      return [...seenDevices].map(([key, labels]) => ({ labels, value: current.get(key) ?? 0 }));
    },
  );
  add('gpu_telemetry_sample_age_seconds', 'Age of the sample this scrape reports (seconds).', 'gauge', (s) =>
    s.snapshot ? [{ labels: {}, value: s.snapshot.ageMs / 1000 }] : [],
  );
  add('gpu_telemetry_sample_stale', 'Whether the sampler is stuck (1: no fresh sample for staleAfterMs; value series are withheld).', 'gauge', (s) =>
    s.snapshot ? [{ labels: {}, value: s.snapshot.stale ? 1 : 0 }] : [],
  );
  add(
    'gpu_telemetry_field_supported',
    'Whether a field can be read on a GPU (1) or not (0: not supported, no permission, error, GPU lost). Labels: field, source.',
    'gauge',
    (s) => {
      if (!s.snapshot) return [];
      const out: Sample[] = [];
      for (const d of s.snapshot.devices) {
        for (const f of FIELDS) {
          const st = d.status[f.name];
          out.push({
            labels: { gpu: d.index, uuid: d.uuid, field: f.name, source: d.source[f.name] },
            value: st === 'ok' || st === 'pending' || st === 'stale' ? 1 : 0,
          });
        }
      }
      return out;
    },
  );
  add(
    'gpu_telemetry_backend_up',
    'Whether an optional backend in use since open (dcgm, gpm) still answers (1) or fails on every field it serves (0, e.g. the DCGM host engine is gone). Labels: backend.',
    'gauge',
    (s) => {
      const gpu = s.gpu;
      if (!gpu || !s.snapshot) return [];
      const out: Sample[] = [];
      for (const backend of ['dcgm', 'gpm'] as const) {
        if (gpu.backends[backend].state !== 'active') continue;
        let serving = 0;
        let answering = 0;
        for (const d of s.snapshot.devices) {
          if (d.state !== 'ok') continue; // a lost GPU is reported by gpu_telemetry_device_up
          for (const f of FIELDS) {
            if (d.source[f.name] !== backend) continue;
            serving++;
            const st = d.status[f.name];
            if (st === 'ok' || st === 'pending') answering++;
          }
        }
        out.push({ labels: { backend }, value: serving === 0 || answering > 0 ? 1 : 0 });
      }
      return out;
    },
  );
  // Kernel-trace captures of this process (process-wide, whether or not the GPUs can be read now).
  add('gpu_telemetry_capture_active', 'Whether a kernel-trace capture is live in this process (1) or not (0).', 'gauge', (s) => [
    { labels: {}, value: s.captures.active ? 1 : 0 },
  ]);
  add('gpu_telemetry_capture_bytes', 'Memory the live kernel-trace capture holds (bytes: CUPTI buffers and records; 0 when none is live).', 'gauge', (s) => [
    { labels: {}, value: s.captures.activeBytes },
  ]);
  add(
    'gpu_telemetry_capture_cupti_held_bytes',
    'Capture buffers lent to CUPTI and not yet returned (bytes, every capture of the process). Normally 0 between captures; above 0 after one has ended means CUPTI is keeping them.',
    'gauge',
    (s) => [{ labels: {}, value: s.captures.bytesWithCupti }],
  );
  add('gpu_telemetry_captures_armed_total', 'Kernel-trace captures armed in this process.', 'counter', (s) => [{ labels: {}, value: s.captures.armed }]);
  add(
    'gpu_telemetry_captures_ended_total',
    'Kernel-trace captures ended, by outcome: the stop reason (steps, max_bytes, max_records, timeout, cancelled, closed, error) or failed (no trace). Labels: outcome.',
    'counter',
    (s) => {
      const ended = s.captures.ended;
      const outcomes = new Set([...CAPTURE_OUTCOMES, ...Object.keys(ended)]);
      return [...outcomes].map((outcome) => ({ labels: { outcome }, value: ended[outcome] ?? 0 }));
    },
  );
  add('gpu_telemetry_captures_truncated_total', 'Kernel-trace captures whose trace is truncated (a cap hit, fewer steps than asked, or records dropped).', 'counter', (s) => [
    { labels: {}, value: s.captures.truncated },
  ]);
  add('gpu_telemetry_capture_records_total', 'Records kept in finished kernel-trace captures.', 'counter', (s) => [{ labels: {}, value: s.captures.records }]);
  add(
    'gpu_telemetry_capture_records_dropped_total',
    'Kernel-trace records lost: by="cupti" CUPTI had no buffer to write into, by="us" a cap (maxBytes, maxRecords) was hit, by="incomplete" CUPTI handed them back still in flight when the capture ended. Labels: by.',
    'counter',
    (s) => [
      { labels: { by: 'cupti' }, value: s.captures.droppedByCupti },
      { labels: { by: 'us' }, value: s.captures.droppedByUs },
      { labels: { by: 'incomplete' }, value: s.captures.droppedIncomplete },
    ],
  );
  add('gpu_telemetry_build_info', 'gpu-telemetry build and environment. Labels: version, driver, nvml, backend, simulated.', 'gauge', (s) => {
    const gpu = s.gpu;
    const backends = gpu ? ['nvml', ...(['dcgm', 'gpm'] as const).filter((b) => gpu.backends[b].state === 'active')] : [];
    return [
      {
        labels: {
          version,
          driver: gpu?.driver.driverVersion ?? '',
          nvml: gpu?.driver.nvmlVersion ?? '',
          backend: backends.join('+'),
          simulated: gpu?.driver.simulated ? 'true' : 'false',
        },
        value: 1,
      },
    ];
  });

  const registered: [Registry, SnapshotMetric][] = [];
  for (const r of registries) {
    for (const def of definitions) {
      const metric = new SnapshotMetric(def.name, def.help, def.type, def.read, scrapes);
      r.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
      registered.push([r, metric]);
    }
  }
  // Label sets repeat every scrape (same GPUs, same fields): their rendered form is cached by the
  // values, bounded so a changing label set (per-process pids) cannot grow it without limit.
  const labelCache = new Map<string, string>();
  const renderLabels = (labels: Labels): string => {
    let key = '';
    for (const k in labels) key += `${k}\u0000${labels[k]}\u0001`;
    let out = labelCache.get(key);
    if (out === undefined) {
      const parts: string[] = [];
      for (const k in labels) parts.push(`${k}="${escapeLabelValue(String(labels[k]))}"`);
      out = parts.length ? `{${parts.join(',')}}` : '';
      if (labelCache.size >= 100_000) labelCache.clear();
      labelCache.set(key, out);
    }
    return out;
  };
  const headers = definitions.map((d) => `# HELP ${d.name} ${escapeHelp(d.help)}\n# TYPE ${d.name} ${d.type}\n`);
  const renderText = (): string => {
    const scrape = scrapes.current();
    let out = '';
    for (let i = 0; i < definitions.length; i++) {
      const def = definitions[i];
      out += headers[i];
      for (const sample of def.read(scrape)) out += `${def.name}${renderLabels(sample.labels)} ${formatValue(sample.value)}\n`;
      if (i < definitions.length - 1) out += '\n'; // a blank line between metrics, as prom-client does
    }
    return out;
  };

  return {
    names: Object.freeze(definitions.map((d) => d.name)),
    renderText,
    unregister() {
      for (const [r, metric] of registered) {
        if (r.getSingleMetric(metric.name) === (metric as unknown)) r.removeSingleMetric(metric.name);
      }
    },
  };
}

function escapeLabelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

function escapeHelp(h: string): string {
  return /[\\\n]/.test(h) ? h.replace(/\\/g, '\\\\').replace(/\n/g, '\\n') : h;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function helpFor(field: FieldSpec): string {
  const unit: Record<string, string> = {
    Hz: 'hertz',
    bytes: 'bytes',
    'bytes/s': 'bytes per second',
    W: 'watts',
    J: 'joules',
    Cel: 'degrees Celsius',
    ratio: 'ratio 0-1',
    count: 'count',
    errors: 'count',
    pstate: 'P-state number',
    generation: 'PCIe generation',
    lanes: 'lanes',
    links: 'links',
    boolean: '1 yes, 0 no',
    xid: 'XID code',
  };
  return `${field.help} Unit: ${unit[field.unit] ?? field.unit}. Only real readings are exported (see gpu_telemetry_field_supported).`;
}

export type { DcgmMetricSpec };
