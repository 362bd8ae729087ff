/**
 * Pod attribution in the Prometheus exporter, both naming modes: pod/namespace/container on the
 * series of GPUs held by one container, none on shared ones, gpu_telemetry_pod_info for every
 * (GPU, container), and the kubernetes backend's health; a failing kubelet never breaks a scrape.
 */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { GpuTelemetryError, registerGpuMetrics, TelemetrySupervisor } from '../src/index.js';
import { createKubernetesPods, type KubernetesPods } from '../src/kubernetes/pods.js';
import { PodResourcesError, type ListResult } from '../src/kubernetes/podresources.js';
import type { PodResourcesList } from '../src/kubernetes/mapping.js';
import { parseExposition, valuesOf, type Line } from './exposition.js';
import { nextSamples, withTelemetry } from './helpers.js';

const MIG_UUID = 'MIG-2ce7a541-c516-5dbc-a76e-26cc100d9b55';
const open: KubernetesPods[] = [];
afterEach(() => {
  for (const p of open.splice(0)) p.close();
});

/** GPU 0 exclusive by UUID, GPU 1 exclusive by nvidia1, GPU 2 time-sliced by two pods, a MIG device, GPUs 3–7 free. */
function fleet(uuids: readonly string[]): PodResourcesList {
  const pod = (namespace: string, name: string, container: string, resourceName: string, deviceIds: string[]) => ({
    name,
    namespace,
    containers: [{ name: container, devices: [{ resourceName, deviceIds }] }],
  });
  return {
    pods: [
      pod('ml', 'llm-0', 'server', 'nvidia.com/gpu', [uuids[0]]),
      pod('ml', 'embed-0', 'worker', 'nvidia.com/gpu', ['nvidia1']),
      pod('team-a', 'notebook', 'jupyter', 'nvidia.com/gpu.shared', [`${uuids[2]}::0`]),
      pod('team-b', 'notebook', 'jupyter', 'nvidia.com/gpu.shared', [`${uuids[2]}::1`]),
      pod('ml', 'small', 'c', 'nvidia.com/mig-1g.10gb', [MIG_UUID]),
    ],
  };
}

function pods(list: () => Promise<ListResult>, options: Parameters<typeof createKubernetesPods>[0] = {}): KubernetesPods {
  const p = createKubernetesPods({ refreshMs: 60_000, ...options }, { list, readMinors: async () => [] });
  open.push(p);
  return p;
}
const answer = (list: PodResourcesList): ListResult => ({ list, ignored: 0, bytes: 1, decodeMs: 0 });
const labelsOf = (lines: Line[], name: string, gpu: string) => lines.filter((l) => l.name === name && l.labels.gpu === gpu).map((l) => l.labels);

describe.each(['default', 'dcgm'] as const)('names: %s', (names) => {
  const value = names === 'dcgm' ? 'DCGM_FI_DEV_SM_CLOCK' : 'gpu_sm_clock_hertz';
  it('labels exclusive GPUs, leaves shared and free ones alone, and lists every (GPU, container)', async () => {
    await withTelemetry({ simulate: 'h100-sxm-8', intervalMs: 100 }, async (gpu) => {
      await nextSamples(gpu, 2);
      const k = pods(async () => answer(fleet(gpu.devices.map((d) => d.uuid))));
      await k.ready();
      const registry = new Registry();
      const metrics = registerGpuMetrics(registry, gpu, { names, kubernetes: k });
      const text = metrics.renderText();
      // the direct renderer and prom-client agree on names and labels (values may move: a sample can land between the two)
      const shape = (t: string) => t.replace(/ \S+$/gm, ' V');
      expect(shape(await registry.metrics())).toBe(shape(text));
      const { lines } = parseExposition(text);

      expect(labelsOf(lines, value, '0')[0]).toMatchObject({ pod: 'llm-0', namespace: 'ml', container: 'server' });
      expect(labelsOf(lines, value, '1')[0]).toMatchObject({ pod: 'embed-0', namespace: 'ml', container: 'worker' });
      for (const g of ['2', '3', '7']) expect(Object.keys(labelsOf(lines, value, g)[0])).not.toContain('pod');
      if (names === 'dcgm') {
        // dcgm-exporter's label names, after its own
        expect(Object.keys(labelsOf(lines, value, '0')[0])).toEqual(['gpu', 'UUID', 'pci_bus_id', 'device', 'modelName', 'Hostname', 'DCGM_FI_DRIVER_VERSION', 'pod', 'namespace', 'container']);
      } else {
        expect(Object.keys(labelsOf(lines, value, '0')[0])).toEqual(['gpu', 'uuid', 'model', 'pod', 'namespace', 'container']);
        expect(labelsOf(lines, 'gpu_clock_event_reason_active', '0')[0]).toMatchObject({ pod: 'llm-0' });
      }
      // every value series of GPU 0 carries the pod; health series keep their stable labels
      for (const l of lines.filter((x) => (x.labels.gpu === '0' && x.labels.UUID) || (x.labels.gpu === '0' && x.name.startsWith('gpu_') && !x.name.startsWith('gpu_telemetry_')))) {
        expect.soft(l.labels.pod, l.name).toBe('llm-0');
      }
      expect(lines.find((l) => l.name === 'gpu_telemetry_device_up' && l.labels.gpu === '0')!.labels).toEqual({ gpu: '0', uuid: gpu.devices[0].uuid, model: gpu.devices[0].name });

      const info = lines.filter((l) => l.name === 'gpu_telemetry_pod_info').map((l) => ({ ...l.labels, value: l.value }));
      expect(info).toEqual([
        { gpu: '0', uuid: gpu.devices[0].uuid, pod: 'llm-0', namespace: 'ml', container: 'server', value: 1 },
        { gpu: '1', uuid: gpu.devices[1].uuid, pod: 'embed-0', namespace: 'ml', container: 'worker', value: 1 },
        { gpu: '2', uuid: gpu.devices[2].uuid, pod: 'notebook', namespace: 'team-a', container: 'jupyter', value: 1 },
        { gpu: '2', uuid: gpu.devices[2].uuid, pod: 'notebook', namespace: 'team-b', container: 'jupyter', value: 1 },
      ]);
      expect(valuesOf(lines, 'gpu_telemetry_backend_up', { backend: 'kubernetes' })).toEqual([1]);
      expect(valuesOf(lines, 'gpu_telemetry_kubernetes_down_info')).toEqual([]);
      // the label budget (≤12): at most 10 of our own, plus job and instance from the ServiceMonitor (deploy/kubernetes)
      for (const l of lines) expect.soft(Object.keys(l.labels).length, l.name).toBeLessThanOrEqual(10);
      // the MIG device is kept for the MIG-instance series, not put on a whole GPU
      expect(k.map(gpu.devices)?.mig.get(MIG_UUID)?.exclusive?.pod).toBe('small');
    });
  });
});

describe('a failing kubelet', () => {
  it('backend_up 0, the reason, no pod labels; the scrape is whole', async () => {
    await withTelemetry({ simulate: 'h100-sxm-8', intervalMs: 100 }, async (gpu) => {
      await nextSamples(gpu, 2);
      let fail: PodResourcesError | null = null;
      const k = pods(async () => {
        if (fail) throw fail;
        return answer(fleet(gpu.devices.map((d) => d.uuid)));
      }, { maxStaleMs: 0 });
      await k.ready();
      const registry = new Registry();
      const metrics = registerGpuMetrics(registry, gpu, { kubernetes: k });
      fail = new PodResourcesError('REPLY_TOO_LARGE', 'reply larger than 16777216 bytes');
      await k.refresh();
      const { lines } = parseExposition(metrics.renderText());
      expect(valuesOf(lines, 'gpu_telemetry_backend_up', { backend: 'kubernetes' })).toEqual([0]);
      expect(valuesOf(lines, 'gpu_telemetry_kubernetes_down_info', { code: 'REPLY_TOO_LARGE' })).toEqual([1]);
      expect(lines.filter((l) => 'pod' in l.labels)).toEqual([]);
      expect(valuesOf(lines, 'gpu_sm_clock_hertz')).toHaveLength(8);
      expect(valuesOf(lines, 'gpu_telemetry_backend_up', { backend: 'dcgm' })).toEqual([1]);
    });
  });

  it('without kubernetes nothing of it is exported', async () => {
    await withTelemetry({ simulate: 'a100-pcie-2', intervalMs: 100 }, async (gpu) => {
      const registry = new Registry();
      const { lines } = parseExposition(registerGpuMetrics(registry, gpu).renderText());
      expect(lines.filter((l) => l.name === 'gpu_telemetry_pod_info' || l.labels.backend === 'kubernetes' || 'pod' in l.labels)).toEqual([]);
    });
  });

  it('the kubernetes backend is reported while the GPUs cannot be read', async () => {
    const supervisor = new TelemetrySupervisor({ libraries: { nvml: '/nonexistent/libnvidia-ml.so.1' } }, { reopenMs: 60_000 });
    await supervisor.start();
    try {
      const k = pods(async () => answer({ pods: [] }));
      await k.ready();
      const { lines } = parseExposition(registerGpuMetrics(new Registry(), supervisor, { kubernetes: k }).renderText());
      expect(valuesOf(lines, 'gpu_telemetry_up')).toEqual([0]);
      expect(valuesOf(lines, 'gpu_telemetry_backend_up', { backend: 'kubernetes' })).toEqual([1]);
      expect(valuesOf(lines, 'gpu_telemetry_pod_info')).toEqual([]);
    } finally {
      await supervisor.close();
    }
  });

  it('kubernetes must be a KubernetesPods', () => {
    expect(() => registerGpuMetrics(new Registry(), { telemetry: () => null, lastError: () => null }, { kubernetes: {} as never })).toThrow(GpuTelemetryError);
  });
});
