/**
 * h100-mig end to end through `gpu-telemetry serve` (a child process scraped over HTTP), both
 * naming modes, next to a fake kubelet that assigns MIG devices to pods; then bad input (issue #12
 * item 7): MIG listing that fails, a per-process utilisation call that fails or never returns. Each
 * gives a reason and series without the labels it cannot establish; /metrics keeps answering and the
 * process keeps running.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { valuesOf, type Line } from './exposition.js';
import { startFakeKubelet, tempSocketPath, type FakeKubelet, type ReplyPod } from './fake-kubelet.js';
import { killServeChildren, serveChild, type Served } from './serve-child.js';
import { waitFor, withTelemetry, writeScenario } from './helpers.js';

const kubelets: FakeKubelet[] = [];
afterAll(async () => {
  killServeChildren();
  await Promise.all(kubelets.map((k) => k.close()));
});

let migUuids = new Map<number, string>();
beforeAll(async () => {
  migUuids = await withTelemetry({ simulate: 'h100-mig', intervalMs: 100 }, async (gpu) => {
    const s = await waitFor(() => (gpu.snapshot().devices[0].migInstances.length === 4 ? gpu.snapshot() : undefined));
    return new Map(s.devices[0].migInstances.map((m) => [m.gpuInstanceId, m.computeInstances[0].uuid!]));
  });
});

const migPods = (): ReplyPod[] => [
  { name: 'llm-big', namespace: 'ml', containers: [{ name: 'server', devices: [{ resourceName: 'nvidia.com/mig-3g.40gb', deviceIds: [migUuids.get(2)!] }] }] },
  { name: 'notebook', namespace: 'team-a', containers: [{ name: 'jupyter', devices: [{ resourceName: 'nvidia.com/mig-1g.10gb', deviceIds: [migUuids.get(9)!] }] }] },
  // Two containers on one MIG device (time-sliced): no pod labels on its series, pod_info for both.
  { name: 'a', namespace: 'team-b', containers: [{ name: 'c', devices: [{ resourceName: 'nvidia.com/mig-1g.10gb', deviceIds: [`${migUuids.get(10)!}::0`] }] }] },
  { name: 'b', namespace: 'team-b', containers: [{ name: 'c', devices: [{ resourceName: 'nvidia.com/mig-1g.10gb', deviceIds: [`${migUuids.get(10)!}::1`] }] }] },
];

const serve = (simulate: string, args: string[]): Promise<Served> => serveChild(simulate, args, { env: { NODE_NAME: 'gpu-node-9' } });

const of = (lines: Line[], name: string, labels: Record<string, string> = {}) =>
  lines.filter((l) => l.name === name && Object.entries(labels).every(([k, v]) => l.labels[k] === v));

describe.each(['default', 'dcgm'] as const)('serve --simulate h100-mig --names %s with the kubelet', (names) => {
  it('MIG instances with their own series, the pods that hold them, the GPU honest about MIG mode', async () => {
    const kubelet = await startFakeKubelet({ kind: 'reply', pods: migPods() }, tempSocketPath());
    kubelets.push(kubelet);
    const s = await serve('h100-mig', ['--names', names, '--pod-resources-socket', kubelet.socket, '--pod-resources-refresh-ms', '1000']);
    const giLabel = names === 'dcgm' ? 'GPU_I_ID' : 'gpu_instance';
    const profileLabel = names === 'dcgm' ? 'GPU_I_PROFILE' : 'gpu_instance_profile';
    const tensor = names === 'dcgm' ? 'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE' : 'gpu_tensor_pipe_active_ratio';
    const used = names === 'dcgm' ? 'DCGM_FI_DEV_FB_USED' : 'gpu_memory_used_bytes';
    const lines = await s.until((l) => of(l, tensor).filter((x) => x.labels[giLabel] !== undefined && x.labels.pod !== undefined).length === 2, 'instance series with pods');
    const inst = (gi: string) => of(lines, used, { gpu: '0', [giLabel]: gi })[0].labels;
    expect(inst('2')).toMatchObject({ [profileLabel]: '3g.40gb', pod: 'llm-big', namespace: 'ml', container: 'server' });
    expect(inst('9')).toMatchObject({ [profileLabel]: '1g.10gb', pod: 'notebook', namespace: 'team-a', container: 'jupyter' });
    expect(inst('10')).not.toHaveProperty('pod'); // shared by two containers: no guessing
    expect(inst('11')).not.toHaveProperty('pod'); // held by nobody
    if (names === 'dcgm') expect(inst('2')).toMatchObject({ Hostname: 'gpu-node-9', device: 'nvidia0' });
    expect(of(lines, 'gpu_telemetry_pod_info', { gpu: '0' }).map((l) => `${l.labels.gpu_instance} ${l.labels.namespace}/${l.labels.pod}`).sort()).toEqual([
      '10 team-b/a',
      '10 team-b/b',
      '2 ml/llm-big',
      '9 team-a/notebook',
    ]);
    expect(of(lines, 'gpu_telemetry_mig_device_info')).toHaveLength(4);
    // GPUs 1-7 have no instances, and GPU 0 keeps its own series.
    expect(of(lines, used).filter((l) => l.labels.gpu !== '0').every((l) => l.labels[giLabel] === undefined)).toBe(true);
    expect(of(lines, names === 'dcgm' ? 'DCGM_FI_DEV_POWER_USAGE' : 'gpu_power_watts', { gpu: '0' })).toHaveLength(1);
    expect(of(lines, 'gpu_telemetry_field_unavailable', { gpu: '0', field: 'gpuUtilizationRatio' })[0].labels.status).toBe('not_supported');
    expect(valuesOf(lines, 'gpu_telemetry_device_up')).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    expect(await s.stop()).toBe(0);
  }, 60_000);
});

describe('bad input: MIG and per-process calls that fail or hang', () => {
  it('MIG listing fails: a reason, the GPU\'s series without instance labels, the scrape whole', async () => {
    const scenario = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'scenarios', 'h100-mig.json'), 'utf8'));
    scenario.faults = [{ type: 'error', device: 0, call: 'nvmlDeviceGetMigDeviceHandleByIndex', code: 999 }];
    const s = await serve(writeScenario(scenario), []);
    const lines = await s.until((l) => of(l, 'gpu_telemetry_field_unavailable', { field: 'migInstances' }).length === 1, 'the MIG health series');
    expect(of(lines, 'gpu_telemetry_field_unavailable', { field: 'migInstances' })[0].labels).toMatchObject({ gpu: '0', status: 'error' });
    expect(lines.filter((l) => 'gpu_instance' in l.labels && l.name !== 'gpu_telemetry_field_unavailable')).toEqual([]);
    expect(of(lines, 'gpu_power_watts')).toHaveLength(8);
    expect(valuesOf(lines, 'gpu_telemetry_device_up')).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    expect(await s.stop()).toBe(0);
  }, 60_000);

  it('the per-process utilisation call fails on one GPU and never returns on another: reasons, the rest unaffected', async () => {
    const scenario = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'scenarios', 'h100-sxm-8.json'), 'utf8'));
    scenario.faults = [
      { type: 'error', device: 2, call: 'nvmlDeviceGetProcessesUtilizationInfo', code: 999 },
      { type: 'hang', device: 5, call: 'nvmlDeviceGetProcessesUtilizationInfo', atMs: 1500, durationMs: -1 },
    ];
    const s = await serve(writeScenario(scenario), ['--processes']);
    const lines = await s.until(
      (l) => of(l, 'gpu_telemetry_field_unavailable', { field: 'processUtilization', status: 'stale' }).length > 0,
      'the hung utilisation call reported',
      30_000,
    );
    expect(of(lines, 'gpu_telemetry_field_unavailable', { field: 'processUtilization', gpu: '2' })[0]?.labels.status).toMatch(/^(error|stale)$/);
    // The per-process memory series carry on; the GPUs' own series too; nothing is stale.
    expect(of(lines, 'gpu_process_used_memory_bytes')).toHaveLength(16);
    expect(of(lines, 'gpu_power_watts')).toHaveLength(8);
    expect(valuesOf(lines, 'gpu_telemetry_sample_stale')).toEqual([0]);
    // SIGTERM ends it although a thread is stuck in the driver.
    expect(await s.stop()).toBe(0);
  }, 60_000);
});
