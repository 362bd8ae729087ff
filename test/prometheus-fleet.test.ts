/**
 * The fleet parts of the Prometheus exporter: MIG-instance series (both naming modes, with the
 * pods holding them), per-process series (opt-in; utilisation, instances, pods from the
 * processes' cgroups), DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL as DCGM computes it, the host name label
 * of dcgm-exporter's releases or its main, and dcgm-exporter's names whatever format is asked for.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Registry, type OpenMetricsContentType } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createTelemetryServer, GpuTelemetryError, registerGpuMetrics, type GpuTelemetry } from '../src/index.js';
import { createKubernetesPods, type KubernetesPods } from '../src/kubernetes/pods.js';
import type { PodResourcesList } from '../src/kubernetes/mapping.js';
import { parseExposition, type Line } from './exposition.js';
import { nextSamples, waitFor, withTelemetry } from './helpers.js';

const open: KubernetesPods[] = [];
afterEach(() => {
  for (const p of open.splice(0)) p.close();
});
const byName = (lines: Line[], name: string) => lines.filter((l) => l.name === name);

function kube(list: PodResourcesList, procRoot?: string): Promise<KubernetesPods> {
  const k = createKubernetesPods({ refreshMs: 60_000, ...(procRoot ? { procRoot } : {}) }, { list: async () => ({ list, ignored: 0, bytes: 1, decodeMs: 0 }), readMinors: async () => [] });
  open.push(k);
  return k.ready().then(() => k);
}
const holds = (namespace: string, name: string, resourceName: string, ids: string[]) => ({
  name,
  namespace,
  containers: [{ name: 'main', devices: [{ resourceName, deviceIds: ids }] }],
});

async function migReady(gpu: GpuTelemetry) {
  return waitFor(() => {
    const s = gpu.snapshot();
    return s.devices[0].migInstances.length === 4 && s.devices[0].migInstances.every((m) => m.status.tensorActiveRatio === 'ok') ? s : undefined;
  });
}

describe('MIG instances', () => {
  it('default naming: the GPU fields an instance has, with gpu_instance / gpu_instance_profile and its pod', async () => {
    await withTelemetry({ simulate: 'h100-mig', intervalMs: 100 }, async (gpu) => {
      const s = await migReady(gpu);
      const uuidOf = (gi: number) => s.devices[0].migInstances.find((m) => m.gpuInstanceId === gi)!.computeInstances[0].uuid!;
      const k = await kube({ pods: [holds('team-a', 'notebook', 'nvidia.com/mig-1g.10gb', [uuidOf(9)])] });
      const { lines } = parseExposition(registerGpuMetrics(new Registry(), gpu, { kubernetes: k }).renderText());
      const used = byName(lines, 'gpu_memory_used_bytes').filter((l) => l.labels.gpu === '0');
      expect(used.map((l) => l.labels.gpu_instance).sort()).toEqual(['10', '11', '2', '9']);
      const nine = used.find((l) => l.labels.gpu_instance === '9')!;
      expect(nine.labels).toEqual({ gpu: '0', uuid: s.devices[0].uuid, model: s.devices[0].name, gpu_instance: '9', gpu_instance_profile: '1g.10gb', pod: 'notebook', namespace: 'team-a', container: 'main' });
      expect(Object.keys(used.find((l) => l.labels.gpu_instance === '2')!.labels)).not.toContain('pod');
      // Every instance field is exported per instance (values as in the snapshot).
      for (const name of ['gpu_memory_total_bytes', 'gpu_memory_free_bytes', 'gpu_processes', 'gpu_process_memory_bytes', 'gpu_tensor_pipe_active_ratio', 'gpu_sm_active_ratio', 'gpu_dram_active_ratio']) {
        expect(byName(lines, name).filter((l) => l.labels.gpu_instance !== undefined), name).toHaveLength(4);
      }
      // Not per instance: what NVML reports only for the whole GPU.
      expect(byName(lines, 'gpu_power_watts').filter((l) => l.labels.gpu_instance !== undefined)).toEqual([]);
      // The MIG devices, joinable by MIG UUID; pod_info with the instance.
      expect(byName(lines, 'gpu_telemetry_mig_device_info').map((l) => l.labels.mig_uuid).sort()).toEqual(s.devices[0].migInstances.map((m) => m.computeInstances[0].uuid).sort());
      expect(byName(lines, 'gpu_telemetry_pod_info').map((l) => l.labels)).toEqual([
        { gpu: '0', uuid: s.devices[0].uuid, gpu_instance: '9', pod: 'notebook', namespace: 'team-a', container: 'main' },
      ]);
      // The parent's own series are honest: no utilisation in MIG mode, memory needs privileges.
      const parent = byName(lines, 'gpu_telemetry_field_unavailable').filter((l) => l.labels.gpu === '0');
      expect(parent.map((l) => [l.labels.field, l.labels.status])).toEqual(
        expect.arrayContaining([
          ['gpuUtilizationRatio', 'not_supported'],
          ['memoryUsedBytes', 'no_permission'],
        ]),
      );
    });
  });

  it("dcgm naming: dcgm-exporter's GPU_I_PROFILE / GPU_I_ID on FB and profiling series", async () => {
    await withTelemetry({ simulate: 'h100-mig', intervalMs: 100 }, async (gpu) => {
      await migReady(gpu);
      const { lines } = parseExposition(registerGpuMetrics(new Registry(), gpu, { names: 'dcgm', hostname: 'node-3' }).renderText());
      const perInstance = (name: string) => byName(lines, name).filter((l) => l.labels.GPU_I_ID !== undefined);
      for (const name of ['DCGM_FI_DEV_FB_USED', 'DCGM_FI_DEV_FB_FREE', 'DCGM_FI_PROF_GR_ENGINE_ACTIVE', 'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE', 'DCGM_FI_PROF_DRAM_ACTIVE']) {
        expect(perInstance(name), name).toHaveLength(4);
      }
      expect(perInstance('DCGM_FI_DEV_GPU_TEMP')).toEqual([]);
      const l = perInstance('DCGM_FI_DEV_FB_USED').find((x) => x.labels.GPU_I_ID === '2')!;
      expect(Object.keys(l.labels)).toEqual(['gpu', 'UUID', 'device', 'modelName', 'GPU_I_PROFILE', 'GPU_I_ID', 'Hostname']);
      expect(l.labels).toMatchObject({ gpu: '0', GPU_I_PROFILE: '3g.40gb', Hostname: 'node-3' });
      // MiB, like the GPU's.
      const snapUsed = gpu.snapshot().devices[0].migInstances.find((m) => m.gpuInstanceId === 2)!.fields.memoryUsedBytes!;
      expect(l.value).toBeCloseTo(snapUsed / 2 ** 20, -1);
      // GPU 0's utilisation is not supported in MIG mode: no series, a health series instead.
      expect(byName(lines, 'DCGM_FI_DEV_GPU_UTIL').map((x) => x.labels.gpu)).toEqual(['1', '2', '3', '4', '5', '6', '7']);
      expect(byName(lines, 'gpu_telemetry_field_unavailable').find((x) => x.labels.gpu === '0' && x.labels.field === 'gpuUtilizationRatio')!.labels.metric).toBe('DCGM_FI_DEV_GPU_UTIL');
    });
  });
});

describe('per-process series (opt-in, default naming)', () => {
  it('memory and utilisation per process, top maxProcesses by memory, pods from the cgroups', async () => {
    // pid 4101 (73 GiB) and 4187 (0.5 GiB) on every GPU of h100-sxm-8; 4101 is in a pod.
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-proc-'));
    const uid = '11111111-2222-4333-8444-555555555555';
    fs.mkdirSync(path.join(root, '4101'));
    fs.writeFileSync(path.join(root, '4101', 'cgroup'), `0::/kubepods.slice/kubepods-pod${uid.replace(/-/g, '_')}.slice/cri-containerd-${'a'.repeat(64)}.scope\n`);
    await withTelemetry({ simulate: 'h100-sxm-8', intervalMs: 100, processUtilization: true }, async (gpu) => {
      await waitFor(() => gpu.snapshot().devices.every((d) => d.processUtilization.status === 'ok'));
      const k = await kube({ pods: [holds('ml', 'llm-0', 'nvidia.com/gpu', [gpu.devices[0].uuid])] }, root);
      const metrics = registerGpuMetrics(new Registry(), gpu, { processes: true, maxProcesses: 1, kubernetes: k });
      metrics.renderText(); // starts the background attribution
      const lines = await waitFor(() => {
        const ls = parseExposition(metrics.renderText()).lines;
        return byName(ls, 'gpu_process_used_memory_bytes').some((l) => l.labels.pod === 'llm-0') ? ls : undefined;
      });
      const mem = byName(lines, 'gpu_process_used_memory_bytes');
      expect(mem).toHaveLength(8); // one per GPU: the largest
      expect(mem.every((l) => l.labels.pid === '4101')).toBe(true);
      expect(mem.find((l) => l.labels.gpu === '0')!.labels).toMatchObject({ pod: 'llm-0', namespace: 'ml', container: 'main', pod_uid: uid });
      // On a GPU no container holds, the process is known by its pod UID only.
      expect(mem.find((l) => l.labels.gpu === '3')!.labels).toEqual({ gpu: '3', uuid: gpu.devices[3].uuid, model: gpu.devices[3].name, pid: '4101', pod_uid: uid });
      for (const name of ['gpu_process_sm_utilization_ratio', 'gpu_process_memory_utilization_ratio', 'gpu_process_encoder_utilization_ratio', 'gpu_process_decoder_utilization_ratio']) {
        expect(byName(lines, name), name).toHaveLength(8);
        for (const l of byName(lines, name)) expect(l.value).toBeGreaterThanOrEqual(0);
      }
    });
  });

  it('MIG processes carry their instance; utilisation is not reported in MIG mode (a health series says so)', async () => {
    await withTelemetry({ simulate: 'h100-mig', intervalMs: 100, processUtilization: true }, async (gpu) => {
      await migReady(gpu);
      await waitFor(() => gpu.snapshot().devices.every((d) => d.processUtilization.status !== 'pending'));
      const { lines } = parseExposition(registerGpuMetrics(new Registry(), gpu, { processes: true }).renderText());
      const mem = byName(lines, 'gpu_process_used_memory_bytes').filter((l) => l.labels.gpu === '0');
      expect(mem.map((l) => [l.labels.pid, l.labels.gpu_instance, l.labels.gpu_instance_profile]).sort()).toEqual([
        ['5201', '2', '3g.40gb'],
        ['5301', '9', '1g.10gb'],
        ['5401', '10', '1g.10gb'],
        ['5402', '10', '1g.10gb'],
      ]);
      expect(byName(lines, 'gpu_process_sm_utilization_ratio').filter((l) => l.labels.gpu === '0')).toEqual([]);
      expect(byName(lines, 'gpu_telemetry_field_unavailable').find((l) => l.labels.gpu === '0' && l.labels.field === 'processUtilization')!.labels.status).toBe('not_supported');
    });
  });

  it('dcgm naming refuses it, naming dcgm-exporter #594; maxProcesses is checked', () => {
    const provider = { telemetry: () => null, lastError: () => null };
    expect(() => registerGpuMetrics(new Registry(), provider, { names: 'dcgm', processes: true })).toThrow(/PR #594/);
    for (const maxProcesses of [0, 65, 1.5, '8' as unknown as number]) {
      expect(() => registerGpuMetrics(new Registry(), provider, { processes: true, maxProcesses })).toThrow(GpuTelemetryError);
    }
  });
});

describe('dcgm naming', () => {
  it('DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL is what DCGM computes: NVLink data TX + RX, KiB/s / 1000; absent without NVLink', async () => {
    await withTelemetry({ simulate: 'h100-sxm-8', intervalMs: 100 }, async (gpu) => {
      await nextSamples(gpu, 3);
      const registry = new Registry();
      const metrics = registerGpuMetrics(registry, gpu, { names: 'dcgm' });
      const snap = gpu.snapshot();
      const { lines, types } = parseExposition(metrics.renderText());
      expect(types.get('DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL')).toBe('counter');
      const d = snap.devices[0];
      const want = Math.trunc((d.fields.nvlinkTxBytesPerSecond! + d.fields.nvlinkRxBytesPerSecond!) / 1024 / 1000);
      expect(byName(lines, 'DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL').find((l) => l.labels.gpu === '0')!.value).toBe(want);
      expect(Number.isInteger(want) && want > 0).toBe(true);
    });
    await withTelemetry({ simulate: 'a100-pcie-2', intervalMs: 100 }, async (gpu) => {
      await nextSamples(gpu, 2);
      const { lines } = parseExposition(registerGpuMetrics(new Registry(), gpu, { names: 'dcgm' }).renderText());
      expect(byName(lines, 'DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL')).toEqual([]);
      expect(byName(lines, 'gpu_telemetry_field_unavailable').filter((l) => l.labels.metric === 'DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL').map((l) => l.labels.status)).toEqual([
        'not_supported',
        'not_supported',
        'not_supported',
        'not_supported',
      ]);
    });
  });

  it('the host name label: Hostname (released dcgm-exporter) by default, hostname (its main, PR #655) when asked', async () => {
    await withTelemetry({ simulate: 'a100-pcie-2', intervalMs: 100 }, async (gpu) => {
      const label = (o: object) => Object.keys(parseExposition(registerGpuMetrics(new Registry(), gpu, { names: 'dcgm', hostname: 'n1', ...o }).renderText()).lines.find((l) => l.name === 'DCGM_FI_DEV_SM_CLOCK')!.labels);
      expect(label({})).toContain('Hostname');
      expect(label({ dcgmHostnameLabel: 'hostname' })).toContain('hostname');
      expect(label({ dcgmHostnameLabel: 'hostname' })).not.toContain('Hostname');
      expect(() => registerGpuMetrics(new Registry(), gpu, { names: 'dcgm', dcgmHostnameLabel: 'host' as never })).toThrow(GpuTelemetryError);
    });
  });

  it('keeps dcgm-exporter\'s counter names in an OpenMetrics registry, and the server answers text in dcgm naming', async () => {
    await withTelemetry({ simulate: 'a100-pcie-2', intervalMs: 100 }, async (gpu) => {
      await nextSamples(gpu, 2);
      const om = new Registry<OpenMetricsContentType>();
      om.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
      registerGpuMetrics(om as unknown as Registry, gpu, { names: 'dcgm' });
      const body = await om.metrics();
      expect(body).toMatch(/^DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION\{/m);
      expect(body).not.toMatch(/^DCGM_\w*_total\{/m);
      expect(body).toMatch(/^# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION unknown$/m);

      for (const [names, wantOpenMetrics] of [['dcgm', false], ['default', true]] as const) {
        const server = createTelemetryServer(gpu, { names });
        const address = await server.listen(0, '127.0.0.1');
        try {
          const res = await fetch(`http://127.0.0.1:${address.port}/metrics`, { headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' } });
          const text = await res.text();
          expect(res.headers.get('content-type')!.startsWith('application/openmetrics-text'), names).toBe(wantOpenMetrics);
          if (names === 'dcgm') {
            expect(text).toMatch(/^# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter$/m);
            expect(text).toMatch(/^DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION\{/m);
          }
        } finally {
          await server.close();
        }
      }
    });
  });
});
