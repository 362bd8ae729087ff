/**
 * /proc/<pid>/cgroup → container id, pod UID, QoS class: every shape the runtimes and the kubelet's
 * two cgroup drivers write, on cgroup v1 and v2, and the ones that must not be mistaken for a pod.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseProcCgroup, type CgroupIdentity } from '../src/kubernetes/cgroup.js';

const CID = '4b5a2e0e6b2c7d1f9e8a3c5b7d9f1e2a4c6b8d0f2e4a6c8b0d2f4e6a8c0b2d4f';
const CID2 = 'a'.repeat(64);
const UID = '3f2a9c4e-1b7d-4e8f-9a6c-2d5b8e1f4a7c';
const UID_ = UID.replace(/-/g, '_');
const STATIC_UID = '6d4e4f5a8b2c1d3e9f0a7b6c5d4e3f2a'; // static pods: a 32-hex hash

function container(text: string): Extract<CgroupIdentity, { kind: 'container' }> {
  const r = parseProcCgroup(text);
  if (r.kind !== 'container') throw new Error(`expected a container, got ${JSON.stringify(r)}`);
  return r;
}

describe('cgroup v2, systemd driver', () => {
  it('containerd, Burstable', () => {
    const r = container(`0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${CID}.scope\n`);
    expect(r).toMatchObject({ containerId: CID, runtime: 'containerd', podUid: UID, qosClass: 'burstable', cgroupVersion: 2 });
  });
  it('CRI-O, Guaranteed (no QoS slice)', () => {
    const r = container(`0::/kubepods.slice/kubepods-pod${UID_}.slice/crio-${CID}.scope`);
    expect(r).toMatchObject({ containerId: CID, runtime: 'cri-o', podUid: UID, qosClass: 'guaranteed' });
  });
  it('cri-dockerd, BestEffort', () => {
    const r = container(`0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/docker-${CID}.scope`);
    expect(r).toMatchObject({ containerId: CID, runtime: 'docker', podUid: UID, qosClass: 'besteffort' });
  });
  it("CRI-O with crun: the processes sit in the scope's 'container' sub-cgroup", () => {
    const r = container(`0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/crio-${CID}.scope/container`);
    expect(r).toMatchObject({ containerId: CID, runtime: 'cri-o', podUid: UID });
  });
  it('static pod UIDs (32 hex digits) are kept as they are', () => {
    const r = container(`0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${STATIC_UID}.slice/cri-containerd-${CID}.scope`);
    expect(r.podUid).toBe(STATIC_UID);
  });
  it('seen from inside a cgroup namespace ("/../..")', () => {
    const r = container(`0::/../../kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/cri-containerd-${CID}.scope`);
    expect(r).toMatchObject({ containerId: CID, podUid: UID, qosClass: 'besteffort' });
    const r2 = container(`0::/../../../kubepods-burstable-pod${UID_}.slice/cri-containerd-${CID}.scope`);
    expect(r2).toMatchObject({ containerId: CID, podUid: UID, qosClass: 'burstable' });
  });
  it("CRI-O's conmon is not the container", () => {
    const r = parseProcCgroup(`0::/kubepods.slice/kubepods-pod${UID_}.slice/crio-conmon-${CID}.scope`);
    expect(r.kind).toBe('unknown');
  });
});

describe('cgroup v2, cgroupfs driver', () => {
  it('Burstable and Guaranteed pods', () => {
    expect(container(`0::/kubepods/burstable/pod${UID}/${CID}`)).toMatchObject({ containerId: CID, runtime: null, podUid: UID, qosClass: 'burstable' });
    expect(container(`0::/kubepods/pod${UID}/${CID}`)).toMatchObject({ podUid: UID, qosClass: 'guaranteed' });
    expect(container(`0::/kubepods/besteffort/pod${UID}/${CID}`)).toMatchObject({ qosClass: 'besteffort' });
  });
  it('seen from inside a cgroup namespace', () => {
    const r = container(`0::/../pod${UID}/${CID}`);
    expect(r).toMatchObject({ containerId: CID, podUid: UID, qosClass: null });
  });
  it('kind: a node container inside docker, pods inside it', () => {
    const r = container(`0::/docker/${CID2}/kubepods/burstable/pod${UID}/${CID}`);
    expect(r).toMatchObject({ containerId: CID, podUid: UID, qosClass: 'burstable' });
  });
});

describe('cgroup v1', () => {
  const v1 = (path: string) =>
    [
      `12:freezer:${path}`,
      `11:memory:${path}`,
      `10:pids:${path}`,
      `9:cpu,cpuacct:${path}`,
      `8:devices:${path}`,
      '7:rdma:/',
      `1:name=systemd:${path}`,
      '0::/',
    ].join('\n');
  it('systemd driver (hybrid: the v2 line is just "/")', () => {
    const r = container(v1(`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${CID}.scope`));
    expect(r).toMatchObject({ containerId: CID, runtime: 'containerd', podUid: UID, qosClass: 'burstable', cgroupVersion: 1 });
  });
  it('cgroupfs driver', () => {
    expect(container(v1(`/kubepods/besteffort/pod${UID}/${CID}`))).toMatchObject({ containerId: CID, podUid: UID, qosClass: 'besteffort', cgroupVersion: 1 });
  });
  it('plain docker: /docker/<id>', () => {
    expect(container(v1(`/docker/${CID}`))).toMatchObject({ containerId: CID, runtime: 'docker', podUid: null, qosClass: null });
  });
  it('a controller whose path differs (e.g. freezer at the root) does not hide the others', () => {
    const text = [`12:freezer:/`, `11:memory:/kubepods/pod${UID}/${CID}`, '0::/'].join('\n');
    expect(container(text)).toMatchObject({ containerId: CID, podUid: UID });
  });
});

describe('outside Kubernetes', () => {
  it('docker and podman with systemd', () => {
    expect(container(`0::/system.slice/docker-${CID}.scope`)).toMatchObject({ runtime: 'docker', podUid: null });
    expect(container(`0::/machine.slice/libpod-${CID}.scope/container`)).toMatchObject({ runtime: 'podman', podUid: null });
    expect(container(`0::/libpod_parent/libpod-${CID}`)).toMatchObject({ runtime: 'podman', podUid: null });
  });
  it('host processes are host, with their path', () => {
    expect(parseProcCgroup('0::/system.slice/nvidia-persistenced.service\n')).toEqual({ kind: 'host', cgroupVersion: 2, path: '/system.slice/nvidia-persistenced.service' });
    expect(parseProcCgroup('0::/user.slice/user-1000.slice/session-3.scope')).toMatchObject({ kind: 'host' });
    expect(parseProcCgroup('0::/')).toMatchObject({ kind: 'host', path: '/' });
    expect(parseProcCgroup('0::/init.scope')).toMatchObject({ kind: 'host' });
  });
});

describe('unknown shapes say why', () => {
  it.each([
    ['', /empty/],
    ['garbage without colons', /no "ID:controllers:\/path" line/],
    [`0::/kubepods/burstable/pod${UID}`, /without a container id/], // the pod's own cgroup (no container)
    [`0::/kubepods/burstable/pod${UID}/${CID.slice(0, 40)}`, /unrecognised cgroup segment/], // a truncated id
    [`0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podnot-a-uid.slice/cri-containerd-${CID}.scope`, /unrecognised/],
    [`0::/kubepods.slice/kubepods-pod${UID_}.slice/cri-containerd-xyz.scope`, /unrecognised cgroup segment "cri-containerd-xyz.scope"/],
    [`0::/kubepods.slice/kubepods-pod${UID_}.slice/somethingelse-${CID}.scope`, /unrecognised/],
  ])('%j', (text, reason) => {
    const r = parseProcCgroup(text);
    expect(r.kind).toBe('unknown');
    expect(r.kind === 'unknown' && r.reason).toMatch(reason);
  });

  it('never throws, and answers within bounds on any text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        const r = parseProcCgroup(text);
        expect(['container', 'host', 'unknown']).toContain(r.kind);
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('kubepods', 'kubepods.slice', `pod${UID}`, `kubepods-burstable-pod${UID_}.slice`, CID, `crio-${CID}.scope`, '..', 'docker', 'x.scope', 'burstable'), { maxLength: 8 }),
        (segs) => {
          const r = parseProcCgroup(`0::/${segs.join('/')}`);
          if (r.kind === 'container') expect(r.containerId).toMatch(/^[0-9a-f]{64}$/);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('a huge file is read only up to its first 64 lines', () => {
    const text = `${'5:cpu:/\n'.repeat(100)}0::/kubepods/pod${UID}/${CID}\n`;
    expect(parseProcCgroup(text).kind).toBe('host');
  });
});
