/**
 * The fleet parts of the Prometheus exporter: MIG-instance labels and series, per-process series
 * (opt-in) with pod labels, and the per-field health that keeps a GPU within its series budget
 * (health only where a field has no reading, plus counts). prometheus.ts calls in.
 */
import type { FieldName } from '../fields.js';
import { FIELD_BY_NAME } from '../fields.js';
import type { KubernetesScrape } from '../kubernetes/exporter.js';
import { attributionKey, migContainers, type ProcessPodCache } from '../kubernetes/process-pods.js';
import type { DeviceSample, MigFieldName, MigInstanceSample } from '../snapshot.js';
import { MIG_FIELD_NAMES } from '../snapshot.js';

export type Labels = Record<string, string | number>;
export interface Sample {
  labels: Labels;
  value: number;
}

export const MIG_FIELDS: ReadonlySet<FieldName> = new Set<FieldName>(MIG_FIELD_NAMES);
export const isMigField = (f: FieldName): f is MigFieldName => MIG_FIELDS.has(f);

/** What the per-process series of one process carry besides their own labels. */
export function podLabelsOfProcess(cache: ProcessPodCache | null, d: DeviceSample, pid: number, gpuInstanceId: number | null): Labels | null {
  if (!cache) return null;
  const a = cache.lookup(attributionKey(d.uuid, gpuInstanceId), pid);
  if (!a) return null;
  const out: Labels = {};
  if (a.pod !== null) {
    out.pod = a.pod;
    out.namespace = a.namespace!;
    if (a.container !== null) out.container = a.container;
  }
  // The pod UID from the process's cgroup: on a shared GPU the only name the join can give, and
  // what kube-state-metrics' kube_pod_info{uid} joins on.
  if (a.podUid !== null) out.pod_uid = a.podUid;
  return Object.keys(out).length ? out : null;
}

/** The one container holding a MIG instance (through its compute instances' MIG UUIDs), if exactly one. */
export function migExclusive(k: KubernetesScrape | null, m: MigInstanceSample) {
  const containers = migContainers(k?.map ?? null, m.computeInstances.map((c) => c.uuid));
  return containers.length === 1 ? containers[0] : null;
}

/** Per-field health of one entity (a GPU, or a MIG instance): unavailable series and counts. */
export function fieldHealth(
  fields: readonly FieldName[],
  status: Readonly<Record<string, string>>,
  source: Readonly<Record<string, string>>,
  base: Labels,
  metricOf: (f: FieldName) => string,
  unavailable: Sample[],
): { readable: number; unreadable: number } {
  let readable = 0;
  let unreadable = 0;
  for (const f of fields) {
    const st = status[f];
    if (st === undefined) continue;
    if (st === 'ok' || st === 'pending' || st === 'stale') {
      readable++;
      continue;
    }
    unreadable++;
    unavailable.push({ labels: { ...base, field: f, metric: metricOf(f), source: source[f] ?? 'none', status: st }, value: 1 });
  }
  return { readable, unreadable };
}

/** The default-mode metric name of a field (FIELDS[i].prometheus). */
export function defaultMetricOf(f: FieldName): string {
  return FIELD_BY_NAME.get(f)?.prometheus ?? f;
}

/** The per-process metrics (default names; opt-in), in the order they are registered. */
export const PROCESS_METRICS = [
  {
    name: 'gpu_process_used_memory_bytes',
    help: 'GPU memory used by one compute process (bytes). Labels: pid; gpu_instance, gpu_instance_profile in MIG; pod, namespace, container, pod_uid when known.',
    pick: (p: DeviceSample['processes'][number]) => p.usedMemoryBytes,
  },
  {
    name: 'gpu_process_sm_utilization_ratio',
    help: "One process's share of the GPU's SM time over the driver's last sample period (0-1; 0 when the driver lists it as idle). Needs per-process utilisation (serve --processes).",
    pick: (p: DeviceSample['processes'][number]) => p.smUtilizationRatio,
  },
  {
    name: 'gpu_process_memory_utilization_ratio',
    help: "One process's share of the GPU's memory-controller time over the driver's last sample period (0-1).",
    pick: (p: DeviceSample['processes'][number]) => p.memoryUtilizationRatio,
  },
  {
    name: 'gpu_process_encoder_utilization_ratio',
    help: "One process's share of the GPU's video-encoder time over the driver's last sample period (0-1).",
    pick: (p: DeviceSample['processes'][number]) => p.encoderUtilizationRatio,
  },
  {
    name: 'gpu_process_decoder_utilization_ratio',
    help: "One process's share of the GPU's video-decoder time over the driver's last sample period (0-1).",
    pick: (p: DeviceSample['processes'][number]) => p.decoderUtilizationRatio,
  },
] as const;
