/**
 * End to end: `gpu-telemetry serve --simulate h100-sxm-8 --pod-resources-socket <fake kubelet>` in
 * both naming modes. Pod labels and the info series from a kubelet that answers; then the kubelet
 * hangs, answers garbage, answers too much, goes away: the health series say so, the labels go,
 * /metrics keeps answering and the process keeps running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_POD_RESOURCES_SOCKET } from '../src/kubernetes/podresources.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { valuesOf, type Line } from './exposition.js';
import { GARBAGE_MESSAGE, startFakeKubelet, tempSocketPath, type FakeKubelet, type ReplyPod } from './fake-kubelet.js';
import { killServeChildren, serveChild, type Served } from './serve-child.js';
import { withTelemetry } from './helpers.js';

const kubelets: FakeKubelet[] = [];
const usageChildren: ChildProcess[] = []; // serve runs that should exit at once (usage errors)
afterAll(async () => {
  killServeChildren();
  for (const c of usageChildren) if (c.exitCode === null) c.kill('SIGKILL');
  await Promise.all(kubelets.map((k) => k.close()));
});

let uuids: string[] = [];
beforeAll(async () => {
  uuids = await withTelemetry({ simulate: 'h100-sxm-8' }, async (gpu) => gpu.devices.map((d) => d.uuid));
});

const MIG_UUID = 'MIG-2ce7a541-c516-5dbc-a76e-26cc100d9b55';
function fleet(): ReplyPod[] {
  const pod = (namespace: string, name: string, container: string, resourceName: string, deviceIds: string[]): ReplyPod => ({
    name,
    namespace,
    containers: [{ name: container, devices: [{ resourceName, deviceIds }] }],
  });
  return [
    pod('ml', 'llm-0', 'server', 'nvidia.com/gpu', [uuids[0]]),
    pod('ml', 'embed-0', 'worker', 'nvidia.com/gpu', ['nvidia1']),
    pod('team-a', 'notebook', 'jupyter', 'nvidia.com/gpu.shared', [`${uuids[2]}::0`]),
    pod('team-b', 'notebook', 'jupyter', 'nvidia.com/gpu.shared', [`${uuids[2]}::1`]),
    pod('ml', 'small', 'c', 'nvidia.com/mig-1g.10gb', [MIG_UUID]),
    { name: 'cpu-only', namespace: 'default', containers: [{ name: 'c', devices: [] }] },
  ];
}

const serve = (args: string[]): Promise<Served> => serveChild('h100-sxm-8', args, { env: { NODE_NAME: 'gpu-node-7' } });

const kubeUp = (lines: Line[]) => valuesOf(lines, 'gpu_telemetry_backend_up', { backend: 'kubernetes' })[0];
const hasPodLabels = (lines: Line[]) => lines.some((l) => 'pod' in l.labels && l.name !== 'gpu_telemetry_pod_info');
const downCode = (lines: Line[]) => lines.find((l) => l.name === 'gpu_telemetry_kubernetes_down_info')?.labels.code;

describe('serve with the kubelet PodResources API', () => {
  it('default names: labels, info series; a hung kubelet then recovery', async () => {
    const kubelet = await startFakeKubelet({ kind: 'reply', pods: fleet() }, tempSocketPath());
    kubelets.push(kubelet);
    const s = await serve(['--pod-resources-socket', kubelet.socket, '--pod-resources-refresh-ms', '1000']);
    expect(s.output()).toMatch(/kubernetes: pods from \S+kubelet\.sock: up \(5 pods holding devices\)/);

    let lines = await s.until((l) => valuesOf(l, 'gpu_sm_clock_hertz').length === 8, 'value series');
    const sm = (gpu: string) => lines.find((l) => l.name === 'gpu_sm_clock_hertz' && l.labels.gpu === gpu)!.labels;
    expect(sm('0')).toEqual({ gpu: '0', uuid: uuids[0], model: expect.any(String), pod: 'llm-0', namespace: 'ml', container: 'server' });
    expect(sm('1')).toMatchObject({ pod: 'embed-0', container: 'worker' }); // nvidia1 → GPU 1 (no /proc/driver/nvidia here: by index)
    expect(sm('2')).not.toHaveProperty('pod'); // shared: no guessing
    expect(sm('5')).not.toHaveProperty('pod');
    expect(lines.filter((l) => l.name === 'gpu_telemetry_pod_info').map((l) => `${l.labels.gpu}/${l.labels.namespace}/${l.labels.pod}/${l.labels.container}`)).toEqual([
      '0/ml/llm-0/server',
      '1/ml/embed-0/worker',
      '2/team-a/notebook/jupyter',
      '2/team-b/notebook/jupyter',
    ]);
    expect(kubeUp(lines)).toBe(1);

    // The kubelet hangs: every call now ends at its deadline. /metrics keeps answering meanwhile.
    kubelet.setBehaviour({ kind: 'hang' });
    lines = await s.until((l) => kubeUp(l) === 0, 'backend_up 0');
    expect(downCode(lines)).toBe('TIMEOUT');
    expect(s.output()).toMatch(/kubernetes: pods from .*: DOWN \(TIMEOUT: no reply within 2000 ms\)/);
    // the last answer labels series for maxStaleMs (3 refreshes), then the labels go
    lines = await s.until((l) => !hasPodLabels(l), 'pod labels gone');
    expect(valuesOf(lines, 'gpu_sm_clock_hertz')).toHaveLength(8);
    expect(valuesOf(lines, 'gpu_telemetry_pod_info')).toEqual([]);
    expect(valuesOf(lines, 'gpu_telemetry_up')).toEqual([1]);

    kubelet.setBehaviour({ kind: 'reply', pods: fleet() });
    lines = await s.until((l) => kubeUp(l) === 1 && hasPodLabels(l), 'recovery');
    expect(downCode(lines)).toBeUndefined();
    expect(s.output()).toMatch(/kubernetes: pods from .*: up/);
    expect(await s.stop()).toBe(0);
  }, 90_000);

  it('dcgm names: dcgm-exporter labels; too large, garbage and empty replies', async () => {
    const kubelet = await startFakeKubelet({ kind: 'reply', pods: fleet() }, tempSocketPath());
    kubelets.push(kubelet);
    const s = await serve(['--names', 'dcgm', '--pod-resources-socket', kubelet.socket, '--pod-resources-refresh-ms', '1000']);
    let lines = await s.until((l) => valuesOf(l, 'DCGM_FI_DEV_GPU_TEMP').length === 8, 'value series');
    const temp = (gpu: string) => lines.find((l) => l.name === 'DCGM_FI_DEV_GPU_TEMP' && l.labels.gpu === gpu)!.labels;
    expect(temp('0')).toMatchObject({ gpu: '0', UUID: uuids[0], device: 'nvidia0', Hostname: 'gpu-node-7', pod: 'llm-0', namespace: 'ml', container: 'server' });
    expect(temp('1')).toMatchObject({ device: 'nvidia1', pod: 'embed-0', namespace: 'ml', container: 'worker' });
    expect(temp('2')).not.toHaveProperty('pod');
    expect(valuesOf(lines, 'gpu_telemetry_pod_info')).toHaveLength(4);
    for (const l of lines) expect.soft(Object.keys(l.labels).length, l.name).toBeLessThanOrEqual(10); // + job, instance: 12

    // Over 16 MiB: refused by size, before any decoding.
    kubelet.setBehaviour({ kind: 'raw', bytes: Buffer.alloc(17 * 1024 * 1024, 0x0a) });
    lines = await s.until((l) => downCode(l) === 'REPLY_TOO_LARGE', 'REPLY_TOO_LARGE');
    expect(kubeUp(lines)).toBe(0);
    // Not a PodResources message.
    kubelet.setBehaviour({ kind: 'raw', bytes: GARBAGE_MESSAGE });
    lines = await s.until((l) => downCode(l) === 'BAD_REPLY', 'BAD_REPLY');
    lines = await s.until((l) => !hasPodLabels(l), 'pod labels gone');
    expect(valuesOf(lines, 'DCGM_FI_DEV_GPU_TEMP')).toHaveLength(8);
    // An empty reply is an answer: up, and nobody holds a GPU.
    kubelet.setBehaviour({ kind: 'reply', pods: [] });
    lines = await s.until((l) => kubeUp(l) === 1, 'empty reply: up');
    expect(hasPodLabels(lines)).toBe(false);
    expect(valuesOf(lines, 'gpu_telemetry_pod_info')).toEqual([]);
    expect(s.child.exitCode).toBeNull();
    expect(await s.stop()).toBe(0);
  }, 90_000);

  it.each([
    ['a missing socket', 'missing', 'SOCKET_MISSING'],
    ['a socket that writes garbage (no HTTP/2)', 'garbage-socket', 'BAD_REPLY'],
    ['a socket that accepts and never speaks', 'silent-socket', 'TIMEOUT'],
  ] as const)('%s: backend_up 0 with the reason from the start, no pod labels', async (_what, kind, code) => {
    let socket = tempSocketPath();
    if (kind !== 'missing') {
      const k = await startFakeKubelet({ kind }, socket);
      kubelets.push(k);
      socket = k.socket;
    }
    const s = await serve(['--pod-resources-socket', socket]);
    expect(s.output()).toMatch(new RegExp(`kubernetes: pods from .*: DOWN \\(${code}: `));
    const lines = await s.until((l) => valuesOf(l, 'gpu_sm_clock_hertz').length === 8, 'value series');
    expect(kubeUp(lines)).toBe(0);
    expect(downCode(lines)).toBe(code);
    expect(hasPodLabels(lines)).toBe(false);
    expect(await s.stop()).toBe(0);
  }, 60_000);

  it('--no-kubernetes, and no kubelet socket on this machine: nothing of it', async () => {
    const s = await serve(['--no-kubernetes']);
    expect(s.output()).toMatch(/kubernetes: off \(--no-kubernetes\)/);
    const lines = await s.scrape();
    expect(lines.filter((l) => l.labels.backend === 'kubernetes' || l.name.includes('kubernetes') || l.name === 'gpu_telemetry_pod_info')).toEqual([]);
    expect(await s.stop()).toBe(0);
    if (fs.existsSync(DEFAULT_POD_RESOURCES_SOCKET)) return; // a real node: the default is on there
    const d = await serve([]);
    expect(d.output()).toMatch(/kubernetes: off \(no kubelet socket at \/var\/lib\/kubelet\/pod-resources\/kubelet\.sock/);
    expect(await d.stop()).toBe(0);
  }, 60_000);

  it('usage errors', async () => {
    for (const args of [
      ['--no-kubernetes', '--pod-resources-socket', '/x.sock'],
      ['--pod-resources-socket', 'relative.sock'],
      ['--pod-resources-refresh-ms', '10'],
    ]) {
      const child = spawn(process.execPath, [path.join(PACKAGE_ROOT, 'dist', 'cli.js'), 'serve', '--simulate', 'h100-sxm-8', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      usageChildren.push(child);
      let err = '';
      child.stderr!.on('data', (c) => (err += c));
      const code = await new Promise((r) => child.once('exit', r));
      expect(code, args.join(' ')).toBe(2);
      expect(err).toMatch(/--(no-kubernetes|pod-resources)/);
    }
  }, 60_000);
});
