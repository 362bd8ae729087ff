/**
 * pid → container → pod: reading /proc/<pid>/cgroup under a fixture proc root, and the join with
 * the kubelet's device assignments (what it can and cannot establish).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseProcCgroup } from '../src/kubernetes/cgroup.js';
import { attributeGpuPids, attributeGpuProcesses, parsePodLogDirName, readPodLogDirectory, readProcessCgroup } from '../src/kubernetes/processes.js';

const CID_A = 'a'.repeat(64);
const CID_B = 'b'.repeat(64);
const UID_A = '11111111-2222-4333-8444-555555555555';
const UID_B = '66666666-7777-4888-9999-aaaaaaaaaaaa';
const inPod = (uid: string, cid: string) => `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid.replace(/-/g, '_')}.slice/cri-containerd-${cid}.scope\n`;
const A = { namespace: 'ml', pod: 'llm-0', container: 'server' };
const B = { namespace: 'ml', pod: 'llm-1', container: 'server' };

function procRoot(files: Record<number, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-proc-'));
  for (const [pid, text] of Object.entries(files)) {
    fs.mkdirSync(path.join(root, pid));
    fs.writeFileSync(path.join(root, pid, 'cgroup'), text);
  }
  return root;
}

describe('readProcessCgroup', () => {
  it('reads and parses a pid under an injected proc root', async () => {
    const root = procRoot({ 4242: inPod(UID_A, CID_A), 7: '0::/system.slice/sshd.service\n' });
    expect(await readProcessCgroup(4242, { procRoot: root })).toMatchObject({ kind: 'container', containerId: CID_A, podUid: UID_A, runtime: 'containerd' });
    expect(await readProcessCgroup(7, { procRoot: root })).toMatchObject({ kind: 'host' });
  });
  it('a pid that is not there says why (ended, or another pid namespace)', async () => {
    const r = await readProcessCgroup(99999, { procRoot: procRoot({}) });
    expect(r).toMatchObject({ kind: 'unknown', reason: expect.stringMatching(/hostPID/) });
  });
  it('refuses what is not a pid', async () => {
    for (const pid of [0, -1, 1.5, Number.NaN, 2 ** 40]) expect((await readProcessCgroup(pid)).kind).toBe('unknown');
  });
  it('reads this process on this machine without throwing', async () => {
    const r = await readProcessCgroup(process.pid);
    expect(['container', 'host', 'unknown']).toContain(r.kind);
  });
});

describe('attributeGpuProcesses', () => {
  const proc = (pid: number, text: string) => ({ pid, cgroup: parseProcCgroup(text) });

  it('a GPU assigned to one container: its pod processes are that container', () => {
    const r = attributeGpuProcesses([proc(10, inPod(UID_A, CID_A)), proc(11, inPod(UID_A, CID_A))], { containers: [A] });
    expect(r).toEqual([
      { pid: 10, containerId: CID_A, podUid: UID_A, ...A, how: 'exclusive-device', reason: null },
      { pid: 11, containerId: CID_A, podUid: UID_A, ...A, how: 'exclusive-device', reason: null },
    ]);
  });

  it('a host process on that GPU is not attributed to the pod', () => {
    const [r] = attributeGpuProcesses([proc(1, '0::/system.slice/dcgm.service')], { containers: [A] });
    expect(r).toMatchObject({ how: 'not-in-pod', pod: null, container: null });
  });

  it('processes of two pods on a GPU assigned to one: ambiguous (one of them can see a GPU it was not given)', () => {
    const r = attributeGpuProcesses([proc(10, inPod(UID_A, CID_A)), proc(20, inPod(UID_B, CID_B))], { containers: [A] });
    expect(r.map((x) => x.how)).toEqual(['ambiguous', 'ambiguous']);
    expect(r[1]).toMatchObject({ podUid: UID_B, containerId: CID_B, pod: null });
  });

  it('a shared GPU: known by pod UID only, unless the UID can be named', () => {
    const procs = [proc(10, inPod(UID_A, CID_A)), proc(20, inPod(UID_B, CID_B))];
    const shared = { containers: [A, B] };
    expect(attributeGpuProcesses(procs, shared).map((x) => [x.how, x.pod])).toEqual([
      ['ambiguous', null],
      ['ambiguous', null],
    ]);
    const names = new Map([
      [UID_A, { namespace: 'ml', pod: 'llm-0' }],
      [UID_B, { namespace: 'ml', pod: 'llm-1' }],
    ]);
    const named = attributeGpuProcesses(procs, shared, { podByUid: (u) => names.get(u) });
    expect(named.map((x) => [x.how, x.pod, x.container])).toEqual([
      ['pod-uid', 'llm-0', 'server'],
      ['pod-uid', 'llm-1', 'server'],
    ]);
  });

  it('a GPU assigned to nobody, and an unreadable cgroup', () => {
    expect(attributeGpuProcesses([proc(10, inPod(UID_A, CID_A))], { containers: [] })[0].how).toBe('unassigned');
    expect(attributeGpuProcesses([proc(10, inPod(UID_A, CID_A))], null)[0].how).toBe('unassigned');
    expect(attributeGpuProcesses([proc(10, 'nonsense')], { containers: [A] })[0]).toMatchObject({ how: 'unknown', reason: expect.any(String) });
  });
});

describe('attributeGpuPids', () => {
  it('reads each pid under the proc root and joins them with the GPU\'s assignment', async () => {
    const root = procRoot({ 10: inPod(UID_A, CID_A), 11: '0::/system.slice/x.service' });
    const r = await attributeGpuPids([10, 11, 12], { containers: [A] }, { procRoot: root });
    expect(r.map((x) => [x.pid, x.how, x.pod])).toEqual([
      [10, 'exclusive-device', 'llm-0'],
      [11, 'not-in-pod', null],
      [12, 'unknown', null],
    ]);
    expect((await attributeGpuPids([10, 11, 12], { containers: [A] }, { procRoot: root, maxPids: 1 })).map((x) => x.pid)).toEqual([10]);
  });
});

describe('pod log directory', () => {
  it('names pods by UID from /var/log/pods entries', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-logs-'));
    for (const name of [`ml_llm-0_${UID_A}`, `kube-system_etcd-node-1_6d4e4f5a8b2c1d3e9f0a7b6c5d4e3f2a`, 'not-a-pod-dir', `x_y_z`]) fs.mkdirSync(path.join(dir, name));
    const m = await readPodLogDirectory(dir);
    expect([...m.entries()]).toEqual(
      expect.arrayContaining([
        [UID_A, { namespace: 'ml', pod: 'llm-0' }],
        ['6d4e4f5a8b2c1d3e9f0a7b6c5d4e3f2a', { namespace: 'kube-system', pod: 'etcd-node-1' }],
      ]),
    );
    expect(m.size).toBe(2);
    expect((await readPodLogDirectory(path.join(dir, 'missing'))).size).toBe(0);
    expect(parsePodLogDirName(`a.b_c_${UID_A}`)).toBeNull(); // namespaces have no dots
  });
});
