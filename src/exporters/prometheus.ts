/**
 * The prom-client collector. Every value is read from the latest snapshot at scrape time (no
 * driver call on scrape); one snapshot serves a whole scrape. A value series appears only for a
 * real reading; the health series are always there and say why a value series is missing.
 */
import os from 'node:os';
import { createRequire } from 'node:module';
import { Registry } from 'prom-client';
import { invalidOption } from '../errors.js';
import { captureStats, type CaptureStats } from '../capture/capture-registry.js';
import { CLOCK_EVENT_REASONS, FIELDS, type FieldName, type FieldSpec } from '../fields.js';
import type { DeviceSample, GpuSnapshot } from '../snapshot.js';
import type { GpuTelemetry } from '../telemetry.js';
import { DCGM_DEFAULT_METRICS, DCGM_FIELDS, type DcgmMetricSpec } from './dcgm-names.js';
import {
  defaultMetricOf,
  fieldHealth,
  isMigField,
  migExclusive,
  PROCESS_METRICS,
  podLabelsOfProcess,
  type Labels,
  type Sample,
} from './fleet.js';
import { ProcessPodCache } from '../kubernetes/process-pods.js';
import {
  kubernetesBackendSample,
  kubernetesDownSamples,
  kubernetesScrape,
  podInfoSamples,
  withPodLabels,
  type KubernetesScrape,
} from '../kubernetes/exporter.js';
import { KubernetesPods } from '../kubernetes/pods.js';
import { asProvider, type GpuMetricsSource, type TelemetryProvider } from './source.js';

export interface PrometheusExportOptions {
  /** `default`: gpu_* names in base units. `dcgm`: dcgm-exporter's names, units and labels. */
  names?: 'default' | 'dcgm';
  /**
   * Per-link NVLink series (adds `link` to the labels: up to 18 series per GPU per metric).
   * Default names only: with `names: 'dcgm'` it is rejected (INVALID_OPTION).
   */
  perLink?: boolean;
  /**
   * Per-process series (adds `pid`, and pod labels when known): memory, and the SM / memory /
   * encoder / decoder utilisation when the instance reads it (openGpuTelemetry({
   * processUtilization: true })). At most `maxProcesses` per GPU, those using the most memory.
   * Default names only: with `names: 'dcgm'` it is rejected (INVALID_OPTION).
   */
  processes?: boolean;
  /** Per-process series per GPU (1 to 64; default 64): the processes using the most memory. */
  maxProcesses?: number;
  /** The host name label's value in dcgm mode (default os.hostname()). */
  hostname?: string;
  /**
   * The host name label's name in dcgm mode: `Hostname` (default: dcgm-exporter's released
   * versions) or `hostname` (dcgm-exporter's main since its PR #655).
   */
  dcgmHostnameLabel?: 'Hostname' | 'hostname';
  /**
   * Pod attribution from the kubelet (createKubernetesPods()): pod/namespace/container labels on the
   * series of GPUs assigned to one container, gpu_telemetry_pod_info, and the kubernetes backend's health.
   */
  kubernetes?: KubernetesPods;
}

interface MetricValue {
  name: string;
  help: string;
  type: 'gauge' | 'counter' | 'unknown';
  aggregator: 'sum';
  values: Sample[];
}

/** A metric object prom-client's Registry can hold: it only calls get() and reads name/type. */
class SnapshotMetric {
  readonly aggregator = 'sum' as const;
  constructor(
    public name: string,
    readonly help: string,
    readonly type: 'gauge' | 'counter' | 'unknown',
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
  /** null unless the kubernetes option is set. */
  kube: KubernetesScrape | null;
  /** Label sets built in this scrape, by entity (a MIG instance's labels are shared by its series). */
  memo: Map<string, Labels>;
  /** Every device's status and values records (read once per scrape by the value series). */
  records: { status: DeviceSample['status'][]; fields: DeviceSample['fields'][] } | null;
}

/** `r => r.<field>`: reads one field of a values or status record through its own inline cache. */
const FIELD_READERS = new Map<FieldName, (r: object) => unknown>();
function fieldReader(f: FieldName): (r: object) => unknown {
  let read = FIELD_READERS.get(f);
  if (read === undefined) {
    if (!/^[A-Za-z_$][\w$]*$/.test(f)) throw new Error(`field name ${f} is not an identifier`);
    read = new Function('r', `return r.${f};`) as (r: object) => unknown;
    FIELD_READERS.set(f, read);
  }
  return read;
}

/** Outcomes always exported (at 0 until one happens), so rate() and alerts see the series from the start. */
const CAPTURE_OUTCOMES = ['steps', 'max_bytes', 'max_records', 'timeout', 'cancelled', 'closed', 'error', 'failed'];
/** Their label objects, kept (renderLabels finds a kept object by identity). */
const OUTCOME_LABELS: Record<string, Labels> = Object.fromEntries(CAPTURE_OUTCOMES.map((o) => [o, { outcome: o }]));

/**
 * One snapshot per scrape: prom-client asks every metric within the same tick, so the scrape's
 * state is taken once and reused until the microtask queue drains.
 */
class ScrapeCache {
  private cached: Scrape | null = null;
  constructor(
    private readonly provider: TelemetryProvider,
    private readonly pods?: KubernetesPods,
  ) {}

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
    const live = snapshot ? gpu : null;
    this.cached = { gpu: live, snapshot, captures: captureStats(), kube: kubernetesScrape(this.pods, live ? live.devices : null), memo: new Map(), records: null };
    // A promise reaction rather than queueMicrotask: that one goes through Node's C++ and makes an
    // async resource each time.
    void RESOLVED.then(this.forget);
    return this.cached;
  }

  private readonly forget = (): void => {
    this.cached = null;
  };
}

const RESOLVED = Promise.resolve();
const EMPTY_DEVICES: readonly DeviceSample[] = Object.freeze([]);

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
 * `perLink` / `processes` have no dcgm-exporter equivalent to match. Per link, dcgm-exporter has
 * byte counters (DCGM_FI_DEV_NVLINK_BANDWIDTH_L0…L17, commented out in its default counters) or
 * profiling fields whose unit differs between DCGM versions (DCGM_FI_PROF_NVLINK_L0_TX_BYTES…).
 * Per process it has, since its PR #594 (4.5.3-4.8.2, behind --kubernetes-virtual-gpus), extra
 * DCGM_FI_DEV_GPU_UTIL / DCGM_FI_DEV_FB_USED series per pod of a shared GPU under the device
 * series' own names: a sum over those names counts the GPU twice, the pod is found by a pod UID
 * from the API server (which this package never calls), and with pod_uid they carry 13 labels.
 * Asking for them in dcgm mode is an error rather than an option silently ignored; the default
 * names have per-process series with pod labels (gpu_process_*).
 */
export function checkDcgmCombination(options: { names?: unknown; perLink?: unknown; processes?: unknown }): void {
  if (options.names !== 'dcgm') return;
  if (options.perLink === true) {
    throw invalidOption(
      'perLink',
      "perLink and names: 'dcgm' cannot be combined: dcgm-exporter has no per-link NVLink rate series to match " +
        "(use names: 'default' for the gpu_nvlink_link_* series)",
    );
  }
  if (options.processes === true) {
    throw invalidOption(
      'processes',
      "processes and names: 'dcgm' cannot be combined: dcgm-exporter's per-pod series (its PR #594) reuse the GPU " +
        "series' names and need the API server; use names: 'default' for the gpu_process_* series",
    );
  }
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
  if (options.kubernetes !== undefined && !(options.kubernetes instanceof KubernetesPods)) {
    throw invalidOption('kubernetes', 'must be the object createKubernetesPods() returns');
  }
  const pods = options.kubernetes;
  const scrapes = new ScrapeCache(provider, pods);
  const names = options.names ?? 'default';
  if (names !== 'default' && names !== 'dcgm') throw invalidOption('names', `must be "default" or "dcgm", not ${JSON.stringify(String(names))}`);
  if (options.hostname !== undefined && typeof options.hostname !== 'string') {
    throw invalidOption('hostname', `must be a string, not ${typeof options.hostname}`);
  }
  checkDcgmCombination(options);
  checkFleetOptions(options);
  const hostname = options.hostname ?? os.hostname();
  const hostnameLabel = options.dcgmHostnameLabel ?? 'Hostname';
  const maxProcesses = options.maxProcesses ?? 64;
  const version = packageVersion();
  // Which pod each process belongs to: worked out in the background, read by scrapes.
  const processPods = pods && options.processes ? new ProcessPodCache(pods.options.procRoot, pods.options.refreshMs) : null;

  // Devices ever seen: a device that disappears keeps its device_up series (at 0) for as long as
  // the process runs, so an alert on it can fire instead of the series silently vanishing.
  interface SeenDevice {
    key: string;
    labels: Labels;
    /** Its device_up lines at 1 and at 0. */
    up: string;
    down: string;
    /** The scrape that last saw it, and whether it was usable then. */
    stamp: number;
    usable: boolean;
  }
  const seenDevices = new Map<string, SeenDevice>();
  const seenList: SeenDevice[] = []; // the same, in the order seen (no iterator per scrape)
  const seenByIndex: (SeenDevice | undefined)[] = [];
  let scrapeStamp = 0;
  const seeDevice = (d: DeviceSample): SeenDevice => {
    let seen = seenByIndex[d.index];
    if (seen === undefined || seen.labels.uuid !== d.uuid || seen.labels.model !== d.name) {
      const key = `${d.index}/${d.uuid}`;
      seen = seenDevices.get(key);
      if (seen === undefined || seen.labels.model !== d.name) {
        const labels = defaultLabels(d);
        const prefix = `gpu_telemetry_device_up${renderLabels(labels)} `;
        seen = { key, labels, up: `${prefix}1\n`, down: `${prefix}0\n`, stamp: 0, usable: false };
        if (!seenDevices.has(key)) seenList.push(seen);
        else seenList[seenList.indexOf(seenDevices.get(key)!)] = seen;
        seenDevices.set(key, seen);
      }
      seenByIndex[d.index] = seen;
    }
    return seen;
  };

  const defaultLabels = (d: DeviceSample): Labels => ({ gpu: d.index, uuid: d.uuid, model: d.name });
  const dcgmLabels = (gpu: GpuTelemetry, d: DeviceSample): Labels => ({
    gpu: d.index,
    UUID: d.uuid,
    pci_bus_id: gpu.devices[d.index]?.pciBusId ?? '',
    device: `nvidia${d.index}`,
    modelName: d.name,
    [hostnameLabel]: hostname,
    DCGM_FI_DRIVER_VERSION: gpu.driver.driverVersion,
  });
  // A MIG instance's series: the GPU's identity plus the instance (dcgm-exporter's GPU_I_* in dcgm
  // mode), and pod labels when one container holds the instance. Built once per scrape.
  const instanceLabels = (s: Scrape, d: DeviceSample, m: DeviceSample['migInstances'][number]): Labels => {
    const key = `mig\u0000${d.uuid}\u0000${m.gpuInstanceId}`;
    let labels = s.memo.get(key);
    if (labels === undefined) {
      labels =
        names === 'dcgm'
          ? { gpu: d.index, UUID: d.uuid, device: `nvidia${d.index}`, modelName: d.name, ...(m.profile ? { GPU_I_PROFILE: m.profile } : {}), GPU_I_ID: m.gpuInstanceId, [hostnameLabel]: hostname }
          : { ...defaultLabels(d), gpu_instance: m.gpuInstanceId, ...(m.profile ? { gpu_instance_profile: m.profile } : {}) };
      const holder = migExclusive(s.kube, m);
      if (holder) labels = { ...labels, pod: holder.pod, namespace: holder.namespace, container: holder.container };
      s.memo.set(key, labels);
    }
    return labels;
  };

  // Metric definitions; each registry gets its own metric objects, because prom-client's
  // OpenMetrics rendering renames counters in place (strips "_total") on the objects it holds.
  // `render`, where given, returns exactly the text renderText would make of read()'s samples, without
  // making them: the series of the GPUs are most of a scrape (test/prometheus.test.ts compares both).
  const definitions: { name: string; help: string; type: 'gauge' | 'counter'; read: (s: Scrape) => Sample[]; render?: (s: Scrape) => string }[] = [];
  const add = (name: string, help: string, type: 'gauge' | 'counter', read: (s: Scrape) => Sample[], render?: (s: Scrape) => string) =>
    definitions.push({ name, help, type, read, render });

  // Label sets repeat every scrape (same GPUs, same fields): their rendered form is cached by the
  // values, bounded so a changing label set (per-process pids) cannot grow it without limit. A
  // label object kept across scrapes (device_up's) is found by identity first.
  const labelCache = new Map<string, string>();
  const labelsSeen = new WeakMap<Labels, string>();
  const renderLabels = (labels: Labels): string => {
    let out = labelsSeen.get(labels);
    if (out !== undefined) return out;
    let key = '';
    for (const k in labels) key += `${k}\u0000${labels[k]}\u0001`;
    out = labelCache.get(key);
    if (out === undefined) {
      const parts: string[] = [];
      for (const k in labels) parts.push(`${k}="${escapeLabelValue(String(labels[k]))}"`);
      out = parts.length ? `{${parts.join(',')}}` : '';
      if (labelCache.size >= 100_000) labelCache.clear();
      labelCache.set(key, out);
    }
    return out;
  };

  /**
   * One metric's series line per GPU, kept between scrapes: the `name{labels} ` prefix while the
   * GPU (and the pod holding it) is the same, the whole line while its value is too. A scrape then
   * makes no label object, sample or label key per series: only the text of the values that
   * changed (bench/ANALYSIS.md, /metrics).
   */
  const deviceLines = (name: string, labelsOf: (gpu: GpuTelemetry, d: DeviceSample) => Labels, kind: string) => {
    const entries: ({ gpu: GpuTelemetry; uuid: string; pod: string; prefix: string; value: number; line: string } | undefined)[] = [];
    return (s: Scrape, d: DeviceSample, value: number): string => {
      const gpu = s.gpu!;
      const holder = pods ? s.kube?.map?.byUuid.get(d.uuid)?.exclusive : undefined;
      const pod = holder ? `${holder.namespace}\u0000${holder.pod}\u0000${holder.container}` : '';
      let e = entries[d.index];
      if (e === undefined || e.gpu !== gpu || e.uuid !== d.uuid || e.pod !== pod) {
        const labels = pods ? withPodLabels(labelsOf(gpu, d), d.uuid, s.kube, kind) : labelsOf(gpu, d);
        e = { gpu, uuid: d.uuid, pod, prefix: `${name}${renderLabels(labels)} `, value: NaN, line: '' };
        entries[d.index] = e;
      }
      if (!Object.is(e.value, value)) {
        e.value = value;
        e.line = `${e.prefix}${formatValue(value)}\n`;
      }
      return e.line;
    };
  };

  // The status and values records of every device of a scrape, read once (they are accessors).
  const recordsOf = (s: Scrape): { status: DeviceSample['status'][]; fields: DeviceSample['fields'][] } => {
    if (s.records === null) {
      const devices = s.snapshot!.devices;
      const status: DeviceSample['status'][] = [];
      const fields: DeviceSample['fields'][] = [];
      for (let k = 0; k < devices.length; k++) {
        status.push(devices[k].status);
        fields.push(devices[k].fields);
      }
      s.records = { status, fields };
    }
    return s.records;
  };

  // Value series of a field: every GPU with a real reading, and every MIG instance of a GPU in MIG
  // mode that has its own reading of it (memory, processes, activity).
  const realValues = (
    name: string,
    fields: readonly FieldName[],
    scale: number,
    labelsOf: (gpu: GpuTelemetry, d: DeviceSample) => Labels,
    kind: string,
    compute?: (d: DeviceSample) => number,
  ): [(s: Scrape) => Sample[], (s: Scrape) => string] => {
    const field = fields[0];
    const perInstance = !compute && fields.length === 1 && isMigField(field);
    const line = deviceLines(name, labelsOf, kind);
    // One reader per field (a property read by its name: each metric's own inline cache), rather
    // than record[name] at one site for every field (megamorphic).
    const readers = fields.map(fieldReader);
    const reader = readers[0];
    const render = (s: Scrape): string => {
      if (!s.snapshot || !s.gpu || s.snapshot.stale) return '';
      const devices = s.snapshot.devices;
      const { status: statuses, fields: values } = recordsOf(s);
      let out = '';
      for (let k = 0; k < devices.length; k++) {
        const d = devices[k];
        const status = statuses[k];
        const v = values[k];
        let real = true;
        for (let i = 0; i < readers.length && real; i++) real = readers[i](status) === 'ok' && readers[i](v) !== null;
        if (real) out += line(s, d, compute ? compute(d) : (reader(v) as number) * scale);
        if (!perInstance) continue;
        // (indexed loops here and below: for-of over a frozen array makes an iterator per loop)
        const instances = d.migInstances;
        for (let j = 0; j < instances.length; j++) {
          const m = instances[j];
          const v = m.fields[field as keyof typeof m.fields];
          if (v !== null && m.status[field as keyof typeof m.status] === 'ok') out += `${name}${renderLabels(instanceLabels(s, d, m))} ${formatValue(v * scale)}\n`;
        }
      }
      return out;
    };
    const read = (s: Scrape): Sample[] => {
      if (!s.snapshot || !s.gpu || s.snapshot.stale) return [];
      const out: Sample[] = [];
      for (const d of s.snapshot.devices) {
        if (fields.every((f) => d.status[f] === 'ok' && d.fields[f] !== null)) {
          const value = compute ? compute(d) : d.fields[field]! * scale;
          out.push({ labels: pods ? withPodLabels(labelsOf(s.gpu, d), d.uuid, s.kube, kind) : labelsOf(s.gpu, d), value });
        }
        if (!perInstance) continue;
        for (const m of d.migInstances) {
          const v = m.fields[field as keyof typeof m.fields];
          if (v !== null && m.status[field as keyof typeof m.status] === 'ok') out.push({ labels: instanceLabels(s, d, m), value: v * scale });
        }
      }
      return out;
    };
    return [read, render];
  };

  if (names === 'dcgm') {
    for (const spec of DCGM_DEFAULT_METRICS) {
      add(spec.name, spec.help, spec.type, ...realValues(spec.name, spec.fields, spec.scale, dcgmLabels, 'dcgm', spec.value));
    }
  } else {
    for (const field of FIELDS) {
      // clockEventReasons too: the raw NVML bitmask as a gauge, decoded per reason below.
      add(field.prometheus, helpFor(field), field.kind, ...realValues(field.prometheus, [field.name], 1, (_g, d) => defaultLabels(d), 'default'));
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
            out.push({ labels: { ...withPodLabels(defaultLabels(d), d.uuid, s.kube, 'default'), reason: r.name }, value: d.clockEventReasons.includes(r.name) ? 1 : 0 });
          }
        }
        return out;
      },
      // 17 series per GPU: each GPU's lines for every reason at 1 and at 0, kept while the GPU and
      // its pod are the same, and the whole block while its reason list is the same object (the
      // decoder hands out one frozen list per mask).
      (() => {
        const blocks: ({ gpu: GpuTelemetry; uuid: string; pod: string; up: string[]; down: string[]; reasons: readonly string[] | null; text: string } | undefined)[] = [];
        return (s: Scrape): string => {
          if (!s.snapshot || !s.gpu || s.snapshot.stale) return '';
          let out = '';
          const devices = s.snapshot.devices;
          for (let k = 0; k < devices.length; k++) {
            const d = devices[k];
            const reasons = d.clockEventReasons;
            if (!reasons) continue;
            const holder = pods ? s.kube?.map?.byUuid.get(d.uuid)?.exclusive : undefined;
            const pod = holder ? `${holder.namespace}\u0000${holder.pod}\u0000${holder.container}` : '';
            let b = blocks[d.index];
            if (b === undefined || b.gpu !== s.gpu || b.uuid !== d.uuid || b.pod !== pod) {
              const up: string[] = [];
              const down: string[] = [];
              for (const r of CLOCK_EVENT_REASONS) {
                const prefix = `gpu_clock_event_reason_active${renderLabels({ ...withPodLabels(defaultLabels(d), d.uuid, s.kube, 'default'), reason: r.name })} `;
                up.push(`${prefix}1\n`);
                down.push(`${prefix}0\n`);
              }
              b = { gpu: s.gpu, uuid: d.uuid, pod, up, down, reasons: null, text: '' };
              blocks[d.index] = b;
            }
            if (b.reasons !== reasons) {
              let text = '';
              for (let i = 0; i < CLOCK_EVENT_REASONS.length; i++) text += reasons.includes(CLOCK_EVENT_REASONS[i].name) ? b.up[i] : b.down[i];
              b.reasons = reasons;
              b.text = text;
            }
            out += b.text;
          }
          return out;
        };
      })(),
    );
    if (options.perLink) {
      const linkMetric = (name: string, help: string, pick: (l: DeviceSample['nvlinks'][number]) => number | null) =>
        add(name, help, 'gauge', (s) => {
          if (!s.snapshot || s.snapshot.stale) return [];
          const out: Sample[] = [];
          for (const d of s.snapshot.devices) {
            for (const l of d.nvlinks) {
              const v = pick(l);
              if (v !== null) out.push({ labels: { ...withPodLabels(defaultLabels(d), d.uuid, s.kube, 'default'), link: l.link }, value: v });
            }
          }
          return out;
        });
      linkMetric('gpu_nvlink_link_up', 'Whether an NVLink link is up (1) or down (0). Labels: link.', (l) => (l.up === null ? null : l.up ? 1 : 0));
      linkMetric('gpu_nvlink_link_transmit_bytes_per_second', 'NVLink data bytes sent per second on one link.', (l) => l.txBytesPerSecond);
      linkMetric('gpu_nvlink_link_receive_bytes_per_second', 'NVLink data bytes received per second on one link.', (l) => l.rxBytesPerSecond);
    }
    if (options.processes) {
      // The processes of a scrape and their labels, built once for the five metrics.
      const processRows = (s: Scrape) => {
        const key = 'processes';
        let rows = s.memo.get(key) as unknown as { labels: Labels; p: DeviceSample['processes'][number] }[] | undefined;
        if (rows) return rows;
        rows = [];
        if (s.snapshot && !s.snapshot.stale) {
          processPods?.refresh(s.snapshot.devices, s.kube?.map ?? null);
          for (const d of s.snapshot.devices) {
            const profiles = new Map(d.migInstances.map((m) => [m.gpuInstanceId, m.profile]));
            // Natively kept by memory, largest first: the first maxProcesses are the top ones.
            for (const p of d.processes.slice(0, maxProcesses)) {
              const mig: Labels = p.gpuInstanceId === null ? {} : { gpu_instance: p.gpuInstanceId, ...(profiles.get(p.gpuInstanceId) ? { gpu_instance_profile: profiles.get(p.gpuInstanceId)! } : {}) };
              const podLabels = podLabelsOfProcess(processPods, d, p.pid, p.gpuInstanceId);
              rows.push({ labels: { ...defaultLabels(d), pid: p.pid, ...mig, ...(podLabels ?? {}) }, p });
            }
          }
        }
        s.memo.set(key, rows as unknown as Labels);
        return rows;
      };
      for (const metric of PROCESS_METRICS) {
        add(metric.name, metric.help, 'gauge', (s) => {
          const out: Sample[] = [];
          for (const { labels, p } of processRows(s)) {
            const v = metric.pick(p);
            if (v !== null) out.push({ labels, value: v });
          }
          return out;
        });
      }
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
    'Whether a GPU is usable (1) or lost or in error (0). A stale sample (a hung driver call) does not change it: that is gpu_telemetry_sample_stale. Kept for every GPU seen while the process runs.',
    'gauge',
    (s) => {
      const current = new Map<string, number>();
      if (s.snapshot) {
        for (const d of s.snapshot.devices) {
          const seen = seeDevice(d);
          // One meaning only: 0 = lost or in error. `stale` overlays an ok device while the sampler
          // waits on a hung call; it has its own series and must not page as a dead GPU.
          current.set(seen.key, deviceUsable(d) ? 1 : 0);
        }
      }
      return [...seenDevices].map(([key, seen]) => ({ labels: seen.labels, value: current.get(key) ?? 0 }));
    },
    (s) => {
      const stamp = ++scrapeStamp;
      if (s.snapshot) {
        const devices = s.snapshot.devices;
        for (let k = 0; k < devices.length; k++) {
          const d = devices[k];
          const seen = seeDevice(d);
          seen.stamp = stamp;
          seen.usable = deviceUsable(d);
        }
      }
      let out = '';
      for (let i = 0; i < seenList.length; i++) {
        const seen = seenList[i];
        out += seen.stamp === stamp && seen.usable ? seen.up : seen.down;
      }
      return out;
    },
  );
  add('gpu_telemetry_sample_age_seconds', 'Age of the sample this scrape reports (seconds).', 'gauge', (s) =>
    s.snapshot ? [{ labels: {}, value: s.snapshot.ageMs / 1000 }] : [],
  );
  add('gpu_telemetry_sample_stale', 'Whether the sampler is stuck (1: no fresh sample for staleAfterMs; value series are withheld).', 'gauge', (s) =>
    s.snapshot ? [{ labels: {}, value: s.snapshot.stale ? 1 : 0 }] : [],
  );
  // Per-field health within the series budget: a series for each field that has no reading on a
  // usable GPU or MIG instance (it appears when a field stops being readable, so an alert can fire
  // on it), and per GPU the count of fields with and without a reading. dcgm mode covers the fields
  // it exports. A lost GPU is said once, by device_up 0 (and its count), not once per field.
  const healthFields = names === 'dcgm' ? DCGM_FIELDS : FIELDS.map((f) => f.name);
  const metricOf = (f: FieldName): string => (names === 'dcgm' ? (DCGM_DEFAULT_METRICS.find((m) => m.fields.includes(f))?.name ?? f) : defaultMetricOf(f));
  /** The health series of one device (GPU fields, its MIG instances', the MIG listing, process utilisation). */
  const deviceHealth = (d: DeviceSample, out: { unavailable: Sample[]; counts: Sample[] }): void => {
    const base = { gpu: d.index, uuid: d.uuid };
    const unavailable: Sample[] = [];
    const { readable, unreadable } = fieldHealth(healthFields, d.status, d.source, base, metricOf, unavailable);
    if (deviceUsable(d)) {
      out.unavailable.push(...unavailable);
      for (const m of d.migInstances) {
        const migFields = healthFields.filter(isMigField);
        fieldHealth(migFields, m.status, m.source, { ...base, gpu_instance: m.gpuInstanceId }, metricOf, out.unavailable);
      }
      if (d.migMode && d.migInstancesReason) {
        out.unavailable.push({ labels: { ...base, field: 'migInstances', metric: 'gpu_telemetry_mig_device_info', source: 'nvml', status: 'error' }, value: 1 });
      }
      const pu = d.processUtilization;
      // stale here: the utilisation call hangs (its own thread; the GPU's other series go on).
      if (options.processes && pu.status !== 'ok' && pu.status !== 'off' && pu.status !== 'pending') {
        out.unavailable.push({ labels: { ...base, field: 'processUtilization', metric: 'gpu_process_sm_utilization_ratio', source: 'nvml', status: pu.status }, value: 1 });
      }
    }
    out.counts.push({ labels: { ...base, state: 'readable' }, value: readable });
    out.counts.push({ labels: { ...base, state: 'unreadable' }, value: unreadable });
  };
  const healthOf = (s: Scrape): { unavailable: Sample[]; counts: Sample[] } => {
    const cached = s.memo.get('health') as unknown as { unavailable: Sample[]; counts: Sample[] } | undefined;
    if (cached) return cached;
    const out = { unavailable: [] as Sample[], counts: [] as Sample[] };
    if (s.snapshot) for (const d of s.snapshot.devices) deviceHealth(d, out);
    s.memo.set('health', out as unknown as Labels);
    return out;
  };
  /**
   * The health lines of a device, kept while what they are made of is the same objects: the
   * decoder hands out the previous sample's status and source records while no status changed, so
   * between status changes a scrape renders nothing here. (MIG instances' records are new each
   * sample: a GPU with instances is rendered each time.)
   */
  interface HealthLines {
    uuid: string;
    status: object;
    source: object;
    state: string;
    migReason: string | null;
    pu: string;
    unavailable: string;
    counts: string;
  }
  const healthLines: (HealthLines | undefined)[] = [];
  const healthTextOf = (d: DeviceSample): HealthLines => {
    const status = d.status;
    const source = d.source;
    const pu = options.processes ? d.processUtilization.status : '';
    let h = healthLines[d.index];
    if (
      h !== undefined &&
      h.status === status &&
      h.source === source &&
      h.uuid === d.uuid &&
      h.state === d.state &&
      h.migReason === d.migInstancesReason &&
      h.pu === pu &&
      d.migInstances.length === 0
    ) {
      return h;
    }
    const samples = { unavailable: [] as Sample[], counts: [] as Sample[] };
    deviceHealth(d, samples);
    const text = (name: string, list: Sample[]) => {
      let t = '';
      for (const x of list) t += `${name}${renderLabels(x.labels)} ${formatValue(x.value)}\n`;
      return t;
    };
    h = {
      uuid: d.uuid,
      status,
      source,
      state: d.state,
      migReason: d.migInstancesReason,
      pu,
      unavailable: text('gpu_telemetry_field_unavailable', samples.unavailable),
      counts: text('gpu_telemetry_fields', samples.counts),
    };
    healthLines[d.index] = h;
    return h;
  };
  add(
    'gpu_telemetry_field_unavailable',
    'A field of a usable GPU (or of a MIG instance: gpu_instance) that has no reading: 1 while it has none (not supported, no permission, error), absent while it reads. metric: the series it would have. Labels: field, metric, source, status.',
    'gauge',
    (s) => healthOf(s).unavailable,
    (s) => {
      let out = '';
      const devices = s.snapshot ? s.snapshot.devices : EMPTY_DEVICES;
      for (let k = 0; k < devices.length; k++) out += healthTextOf(devices[k]).unavailable;
      return out;
    },
  );
  add(
    'gpu_telemetry_fields',
    'Fields of a GPU with a reading (state="readable": ok, pending or stale) and without one (state="unreadable"); dcgm mode counts the fields it exports. Labels: state.',
    'gauge',
    (s) => healthOf(s).counts,
    (s) => {
      let out = '';
      const devices = s.snapshot ? s.snapshot.devices : EMPTY_DEVICES;
      for (let k = 0; k < devices.length; k++) out += healthTextOf(devices[k]).counts;
      return out;
    },
  );
  add(
    'gpu_telemetry_mig_device_info',
    'A MIG device (a compute instance of a GPU instance) of a GPU in MIG mode (constant 1): joins a MIG UUID (what pods are assigned by) to its GPU and instance. Labels: gpu_instance, gpu_instance_profile, compute_instance, mig_uuid.',
    'gauge',
    (s) => {
      if (!s.snapshot) return [];
      const out: Sample[] = [];
      for (const d of s.snapshot.devices) {
        for (const m of d.migInstances) {
          for (const c of m.computeInstances) {
            out.push({
              labels: { gpu: d.index, uuid: d.uuid, gpu_instance: m.gpuInstanceId, ...(m.profile ? { gpu_instance_profile: m.profile } : {}), compute_instance: c.computeInstanceId, mig_uuid: c.uuid ?? '' },
              value: 1,
            });
          }
        }
      }
      return out;
    },
  );
  // The fields each backend serves on a device and how many answer: counted once per status record
  // (the decoder reuses a device's records while no status changes).
  const BACKENDS = ['dcgm', 'gpm'] as const;
  type BackendCounts = Record<(typeof BACKENDS)[number], { serving: number; answering: number }>;
  const backendCache: ({ status: object; source: object; counts: BackendCounts } | undefined)[] = [];
  const backendCounts = (d: DeviceSample): BackendCounts => {
    const status = d.status as Readonly<Record<string, string>>;
    const source = d.source as Readonly<Record<string, string>>;
    const hit = backendCache[d.index];
    if (hit !== undefined && hit.status === status && hit.source === source) return hit.counts;
    const counts: BackendCounts = { dcgm: { serving: 0, answering: 0 }, gpm: { serving: 0, answering: 0 } };
    for (let i = 0; i < FIELDS.length; i++) {
      const name = FIELDS[i].name;
      const src = source[name];
      if (src !== 'dcgm' && src !== 'gpm') continue;
      counts[src].serving++;
      const st = status[name];
      if (st === 'ok' || st === 'pending') counts[src].answering++;
    }
    backendCache[d.index] = { status, source, counts };
    return counts;
  };
  add(
    'gpu_telemetry_backend_up',
    'Whether an optional backend in use since open (dcgm, gpm) still answers (1) or fails on every field it serves (0, e.g. the DCGM host engine is gone); kubernetes: whether the last kubelet PodResources call answered. Labels: backend.',
    'gauge',
    (s) => {
      const gpu = s.gpu;
      const out: Sample[] = kubernetesBackendSample(s.kube); // the kubelet's health does not depend on the GPUs'
      if (!gpu || !s.snapshot) return out;
      for (const backend of BACKENDS) {
        if (gpu.backends[backend].state !== 'active') continue;
        let serving = 0;
        let answering = 0;
        for (const d of s.snapshot.devices) {
          if (d.state !== 'ok') continue; // a lost GPU is reported by gpu_telemetry_device_up
          const c = backendCounts(d)[backend];
          serving += c.serving;
          answering += c.answering;
        }
        out.push({ labels: { backend }, value: serving === 0 || answering > 0 ? 1 : 0 });
      }
      return out;
    },
  );
  // MIG instances the kubelet assigned: pod_info with the instance, for every (instance, container).
  const migPodInfo = (s: Scrape): Sample[] => {
    if (!s.snapshot || !s.kube?.map) return [];
    const out: Sample[] = [];
    for (const d of s.snapshot.devices) {
      for (const m of d.migInstances) {
        const seen = new Set<string>();
        for (const c of m.computeInstances) {
          for (const ref of (c.uuid ? s.kube.map.mig.get(c.uuid)?.containers : undefined) ?? []) {
            const key = `${ref.namespace}/${ref.pod}/${ref.container}`;
            if (seen.has(key)) continue;
            seen.add(key);
            out.push({ labels: { gpu: d.index, uuid: d.uuid, gpu_instance: m.gpuInstanceId, pod: ref.pod, namespace: ref.namespace, container: ref.container }, value: 1 });
          }
        }
      }
    }
    return out;
  };
  if (pods) {
    add(
      'gpu_telemetry_pod_info',
      'A container the kubelet assigned a GPU (or a MIG instance: gpu_instance) to (constant 1), one series per (GPU or instance, container), shared ones included: join on gpu/uuid (and gpu_instance). Labels: pod, namespace, container.',
      'gauge',
      (s) => [...podInfoSamples(s.kube), ...migPodInfo(s)],
    );
    add(
      'gpu_telemetry_kubernetes_down_info',
      'Why the kubelet PodResources answer is missing (present only while the last call failed). Labels: code.',
      'gauge',
      (s) => kubernetesDownSamples(s.kube),
    );
  }
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
      const out: Sample[] = [];
      for (const outcome of CAPTURE_OUTCOMES) out.push({ labels: OUTCOME_LABELS[outcome], value: ended[outcome] ?? 0 });
      for (const outcome in ended) if (!Object.hasOwn(OUTCOME_LABELS, outcome)) out.push({ labels: { outcome }, value: ended[outcome] });
      return out;
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
    // In OpenMetrics a counter's samples must be named <name>_total, and prom-client appends it: a
    // dcgm-exporter counter (DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION, …) would reach Prometheus renamed.
    // dcgm-exporter serves only the text format, where the name stays: in dcgm mode those counters
    // are declared `unknown` in an OpenMetrics registry so the name stays the same in both formats
    // (createTelemetryServer goes further: in dcgm mode it always answers the text format).
    const openMetrics = (r.contentType as string) === Registry.OPENMETRICS_CONTENT_TYPE;
    for (const def of definitions) {
      const type = openMetrics && names === 'dcgm' && def.type === 'counter' && !def.name.endsWith('_total') ? 'unknown' : def.type;
      const metric = new SnapshotMetric(def.name, def.help, type, def.read, scrapes);
      r.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
      registered.push([r, metric]);
    }
  }
  const headers = definitions.map((d) => `# HELP ${d.name} ${escapeHelp(d.help)}\n# TYPE ${d.name} ${d.type}\n`);
  const renderText = (): string => {
    const scrape = scrapes.current();
    let out = '';
    for (let i = 0; i < definitions.length; i++) {
      const def = definitions[i];
      out += headers[i];
      if (def.render) out += def.render(scrape);
      else for (const sample of def.read(scrape)) out += `${def.name}${renderLabels(sample.labels)} ${formatValue(sample.value)}\n`;
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

/** A device that is neither lost nor in error (a stale sample of an ok device still counts). */
export function deviceUsable(d: DeviceSample): boolean {
  return d.state !== 'gpu_lost' && d.state !== 'error';
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
    bitmask: 'bitmask of NVML clocks-event-reason bits, decoded in gpu_clock_event_reason_active',
  };
  return `${field.help} Unit: ${unit[field.unit] ?? field.unit}. Source: ${field.sources.length > 1 ? `the first that works of ${field.sources.join(', ')}` : field.sources[0]} (the snapshot says which per GPU; gpu_telemetry_field_unavailable names the source of a field without a reading). Only real readings are exported.`;
}

export type { DcgmMetricSpec };

/** maxProcesses and dcgmHostnameLabel: INVALID_OPTION naming the option. */
export function checkFleetOptions(options: { maxProcesses?: unknown; dcgmHostnameLabel?: unknown; names?: unknown }): void {
  const m = options.maxProcesses;
  if (m !== undefined && (typeof m !== 'number' || !Number.isInteger(m) || m < 1 || m > 64)) {
    throw invalidOption('maxProcesses', `must be a whole number from 1 to 64 (the processes kept per GPU), not ${JSON.stringify(m) ?? String(m)}`);
  }
  const h = options.dcgmHostnameLabel;
  if (h !== undefined && h !== 'Hostname' && h !== 'hostname') {
    throw invalidOption('dcgmHostnameLabel', `must be "Hostname" (dcgm-exporter's releases) or "hostname" (its main since PR #655), not ${JSON.stringify(h) ?? String(h)}`);
  }
}
