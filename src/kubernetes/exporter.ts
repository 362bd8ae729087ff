/**
 * The Kubernetes part of the Prometheus exporter, kept here so the exporter only calls in:
 * pod labels for exclusively assigned GPUs, the pod info series, and the kubernetes backend's health.
 */
import type { PodDeviceMap } from './mapping.js';
import type { KubernetesPods, KubernetesStatus } from './pods.js';
import type { GpuIdentity } from './mapping.js';

type Labels = Record<string, string | number>;

/** What one scrape knows of the pods (computed once per scrape from the cached kubelet answer). */
export interface KubernetesScrape {
  readonly status: KubernetesStatus;
  /** null: no usable answer (series go without pod labels). */
  readonly map: PodDeviceMap | null;
  /** Labelled label sets of this scrape, by label kind and GPU: every field of a GPU shares one. */
  readonly memo: Map<string, Labels>;
}

export const POD_LABEL_NAMES = ['pod', 'namespace', 'container'] as const;

export function kubernetesScrape(pods: KubernetesPods | undefined, gpus: readonly GpuIdentity[] | null): KubernetesScrape | null {
  if (!pods) return null;
  return { status: pods.status(), map: gpus ? pods.map(gpus) : null, memo: new Map() };
}

/**
 * The device's labels plus pod/namespace/container when exactly one container holds the GPU; the
 * same object when not (a shared or unassigned GPU's series carry no pod labels).
 */
export function withPodLabels(labels: Labels, uuid: string, k: KubernetesScrape | null, kind = ''): Labels {
  const a = k?.map?.byUuid.get(uuid)?.exclusive;
  if (!a) return labels;
  // The same device labels repeat for each of a GPU's ~50 series: build the labelled set once per scrape.
  const key = `${kind}\u0000${uuid}`;
  let out = k!.memo.get(key);
  if (out === undefined) {
    out = { ...labels, pod: a.pod, namespace: a.namespace, container: a.container };
    k!.memo.set(key, out);
  }
  return out;
}

/** gpu_telemetry_pod_info: one series per (GPU, container) the kubelet assigned, shared or not. */
export function podInfoSamples(k: KubernetesScrape | null): { labels: Labels; value: number }[] {
  if (!k?.map) return [];
  const out: { labels: Labels; value: number }[] = [];
  for (const g of k.map.gpus) {
    for (const c of g.containers) {
      out.push({ labels: { gpu: g.index, uuid: g.uuid, pod: c.pod, namespace: c.namespace, container: c.container }, value: 1 });
    }
  }
  return out;
}

/** gpu_telemetry_backend_up{backend="kubernetes"}: 1 when the last call answered; absent before the first ends. */
export function kubernetesBackendSample(k: KubernetesScrape | null): { labels: Labels; value: number }[] {
  if (!k || k.status.state === 'starting' || k.status.state === 'closed') return [];
  return [{ labels: { backend: 'kubernetes' }, value: k.status.state === 'up' ? 1 : 0 }];
}

/** gpu_telemetry_kubernetes_down_info{code}: why the kubelet's answer is missing, while it is. */
export function kubernetesDownSamples(k: KubernetesScrape | null): { labels: Labels; value: number }[] {
  if (!k || k.status.state !== 'down') return [];
  return [{ labels: { code: k.status.code ?? 'ERROR' }, value: 1 }];
}
