/**
 * Device ids from the kubelet → this machine's GPUs: UUIDs, GKE's nvidiaN (by device minor number,
 * or by index when /proc/driver/nvidia is not readable), the index strategy, time-slicing replicas,
 * MIG devices kept apart, shared GPUs, and ids that match nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isNvidiaGpuResource, parseDeviceId } from '../src/kubernetes/device-ids.js';
import { normalisePciBusId, parseGpuInformation, readGpuMinors } from '../src/kubernetes/gpu-minors.js';
import { mapPodDevices, MAX_UNMATCHED, type PodResourcesList } from '../src/kubernetes/mapping.js';

const U = (i: number) => `GPU-9e5651b0-0000-5349-4d00-51b0ef95363${i}`;
const MIG = (i: number) => `MIG-2ce7a541-c516-5dbc-a76e-26cc100d9b5${i}`;
const gpus = [0, 1, 2, 3].map((i) => ({ index: i, uuid: U(i), pciBusId: `00000000:${(0x18 + i * 0x10).toString(16).toUpperCase()}:00.0` }));

function list(...pods: [string, string, string, string, string[]][]): PodResourcesList {
  return { pods: pods.map(([namespace, name, container, resourceName, deviceIds]) => ({ name, namespace, containers: [{ name: container, devices: [{ resourceName, deviceIds }] }] })) };
}

describe('parseDeviceId', () => {
  it.each([
    [U(0), { kind: 'gpu-uuid', uuid: U(0), replica: null }],
    [`${U(0)}::3`, { kind: 'gpu-uuid', uuid: U(0), replica: 3 }],
    ['nvidia2', { kind: 'gpu-minor', minor: 2, replica: null }],
    ['nvidia2/vgpu5', { kind: 'gpu-minor', minor: 2, replica: 5 }],
    ['1', { kind: 'gpu-index', index: 1, replica: null }],
    ['1::0', { kind: 'gpu-index', index: 1, replica: 0 }],
    [MIG(1), { kind: 'mig-uuid', uuid: MIG(1), replica: null }],
    [`${MIG(1)}::7`, { kind: 'mig-uuid', uuid: MIG(1), replica: 7 }],
  ])('%s', (id, want) => expect(parseDeviceId(id)).toEqual(want));

  it('MIG ids that name their parent', () => {
    expect(parseDeviceId(`MIG-${U(1)}/3/0`)).toMatchObject({ kind: 'mig-instance', id: `MIG-${U(1)}/3/0`, parent: { by: 'uuid', uuid: U(1) }, gpuInstanceId: 3, computeInstanceId: 0 });
    expect(parseDeviceId('nvidia0/gi2/vgpu1')).toMatchObject({ kind: 'mig-instance', id: 'nvidia0/gi2', parent: { by: 'minor', minor: 0 }, gpuInstanceId: 2, replica: 1 });
    expect(parseDeviceId('0:1')).toMatchObject({ kind: 'mig-instance', parent: { by: 'index', index: 0 }, migIndex: 1 });
  });

  it('anything else is unknown, with a reason', () => {
    for (const id of ['', 'GPU-123', 'nvidia', 'nvidiaX', 'x'.repeat(300), `${U(0)}::x`, 'cpu0']) {
      const r = parseDeviceId(id);
      expect(r.kind).toBe('unknown');
      expect(r.kind === 'unknown' && r.reason.length).toBeGreaterThan(0);
    }
  });

  it('GPU resources', () => {
    expect(isNvidiaGpuResource('nvidia.com/gpu')).toBe(true);
    expect(isNvidiaGpuResource('nvidia.com/gpu.shared')).toBe(true);
    expect(isNvidiaGpuResource('nvidia.com/mig-3g.40gb')).toBe(true);
    expect(isNvidiaGpuResource('nvidia.com/hostdev')).toBe(false);
    expect(isNvidiaGpuResource('example.com/gpu')).toBe(false);
    expect(isNvidiaGpuResource('example.com/gpu', ['example.com/gpu'])).toBe(true);
  });
});

describe('mapPodDevices', () => {
  it('exclusive GPUs by UUID: one container each, labels-ready', () => {
    const m = mapPodDevices(list(['ml', 'llm-0', 'server', 'nvidia.com/gpu', [U(0), U(1)]], ['batch', 'train-7', 'worker', 'nvidia.com/gpu', [U(2)]]), gpus);
    expect(m.gpus.map((g) => g.exclusive)).toEqual([
      { namespace: 'ml', pod: 'llm-0', container: 'server' },
      { namespace: 'ml', pod: 'llm-0', container: 'server' },
      { namespace: 'batch', pod: 'train-7', container: 'worker' },
      null,
    ]);
    expect(m.gpus[3]).toMatchObject({ containers: [], shared: false, exclusive: null });
    expect(m.byUuid.get(U(2))?.exclusive?.pod).toBe('train-7');
    expect(m.unmatched).toEqual([]);
  });

  it('time-slicing replicas of one GPU in several containers: shared, no exclusive', () => {
    const m = mapPodDevices(
      list(['a', 'p1', 'c', 'nvidia.com/gpu.shared', [`${U(0)}::0`]], ['b', 'p2', 'c', 'nvidia.com/gpu.shared', [`${U(0)}::1`]], ['a', 'p1', 'c', 'nvidia.com/gpu.shared', [`${U(1)}::0`, `${U(1)}::1`]]),
      gpus,
    );
    expect(m.gpus[0]).toMatchObject({ shared: true, exclusive: null });
    expect(m.gpus[0].containers).toEqual([
      { namespace: 'a', pod: 'p1', container: 'c' },
      { namespace: 'b', pod: 'p2', container: 'c' },
    ]);
    // two replicas, one container: still exclusive
    expect(m.gpus[1]).toMatchObject({ shared: false, exclusive: { pod: 'p1' } });
  });

  it('two containers of one pod sharing a GPU is shared too', () => {
    const m = mapPodDevices(
      { pods: [{ name: 'p', namespace: 'n', containers: ['a', 'b'].map((c) => ({ name: c, devices: [{ resourceName: 'nvidia.com/gpu', deviceIds: [`${U(3)}::${c === 'a' ? 0 : 1}`] }] })) }] },
      gpus,
    );
    expect(m.gpus[3].shared).toBe(true);
  });

  it('nvidiaN by device minor number when /proc/driver/nvidia says (minor ≠ index)', () => {
    // reversed probe order: /dev/nvidia0 is the GPU with the highest PCI address
    const minors = gpus.map((g, i) => ({ minor: 3 - i, uuid: null, busId: normalisePciBusId(g.pciBusId)! }));
    const m = mapPodDevices(list(['n', 'p', 'c', 'nvidia.com/gpu', ['nvidia0']]), gpus, { minors });
    expect(m.deviceNameBasis).toBe('minor');
    expect(m.gpus[3].exclusive?.pod).toBe('p');
    expect(m.gpus[0].exclusive).toBeNull();
  });

  it('nvidiaN by NVML index without minor numbers (dcgm-exporter\'s device-name convention)', () => {
    const m = mapPodDevices(list(['n', 'p', 'c', 'nvidia.com/gpu', ['nvidia1']]), gpus);
    expect(m.deviceNameBasis).toBe('index');
    expect(m.gpus[1].exclusive?.pod).toBe('p');
  });

  it('index strategy ids', () => {
    const m = mapPodDevices(list(['n', 'p', 'c', 'nvidia.com/gpu', ['2']]), gpus);
    expect(m.gpus[2].exclusive?.pod).toBe('p');
  });

  it('MIG devices are kept by MIG UUID, apart from whole GPUs', () => {
    const m = mapPodDevices(
      list(
        ['ml', 'small-1', 'c', 'nvidia.com/mig-1g.10gb', [MIG(1)]],
        ['ml', 'small-2', 'c', 'nvidia.com/mig-1g.10gb', [`${MIG(2)}::0`]],
        ['ml', 'small-3', 'c', 'nvidia.com/mig-1g.10gb', [`${MIG(2)}::1`]],
        ['ml', 'old', 'c', 'nvidia.com/mig-3g.40gb', [`MIG-${U(0)}/1/0`]],
        ['ml', 'gke', 'c', 'nvidia.com/gpu', ['nvidia1/gi3']],
      ),
      gpus,
    );
    expect(m.gpus.every((g) => g.containers.length === 0)).toBe(true);
    expect(m.mig.get(MIG(1))).toMatchObject({ migUuid: MIG(1), parentUuid: null, resource: 'nvidia.com/mig-1g.10gb', exclusive: { pod: 'small-1' } });
    expect(m.mig.get(MIG(2))).toMatchObject({ shared: true, exclusive: null });
    expect(m.mig.get(MIG(2))?.containers.map((c) => c.pod)).toEqual(['small-2', 'small-3']);
    expect(m.mig.get(`MIG-${U(0)}/1/0`)).toMatchObject({ parentUuid: U(0), parentIndex: 0, gpuInstanceId: 1, computeInstanceId: 0 });
    expect(m.mig.get('nvidia1/gi3')).toMatchObject({ parentUuid: U(1), parentIndex: 1, gpuInstanceId: 3 });
  });

  it('ids that match no GPU here are listed with the reason (bounded), never guessed', () => {
    const m = mapPodDevices(
      list(['n', 'p', 'c', 'nvidia.com/gpu', ['GPU-00000000-0000-0000-0000-000000000000', 'nvidia9', '7', 'weird!']], ['n', 'q', 'c', 'example.com/nic', ['GPU-whatever']]),
      gpus,
    );
    expect(m.unmatched.map((u) => u.reason)).toEqual([
      'no GPU with this UUID on this machine',
      expect.stringMatching(/no GPU with index 9/),
      'no GPU with index 7',
      expect.stringMatching(/not a GPU UUID/),
    ]);
    const many = mapPodDevices(list(['n', 'p', 'c', 'nvidia.com/gpu', Array.from({ length: 100 }, (_, i) => `nvidia${100 + i}`)]), gpus);
    expect(many.unmatched).toHaveLength(MAX_UNMATCHED);
  });

  it('extra resource names', () => {
    const l = list(['n', 'p', 'c', 'example.com/gpu', [U(0)]]);
    expect(mapPodDevices(l, gpus).gpus[0].exclusive).toBeNull();
    expect(mapPodDevices(l, gpus, { resourceNames: ['example.com/gpu'] }).gpus[0].exclusive?.pod).toBe('p');
  });
});

describe('device minor numbers', () => {
  const info = (minor: number, uuid: string, bus: string) =>
    `Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 0\nGPU UUID: \t ${uuid}\nVideo BIOS: \t ??.??.??.??.??\nBus Type: \t PCIe\nDMA Size: \t 52 bits\nBus Location: \t ${bus}\nDevice Minor: \t ${minor}\nGPU Excluded:\t No\n`;

  it('normalises PCI addresses from NVML and sysfs alike', () => {
    expect(normalisePciBusId('00000000:C1:00.0')).toBe('0000:c1:00.0');
    expect(normalisePciBusId('0000:c1:00.0')).toBe('0000:c1:00.0');
    expect(normalisePciBusId('00000001:18:00.1')).toBe('0001:18:00.1');
    expect(normalisePciBusId('nope')).toBeNull();
  });

  it('parses the driver\'s information file', () => {
    expect(parseGpuInformation(info(3, U(0), '0000:18:00.0'), '0000:18:00.0')).toEqual({ minor: 3, uuid: U(0), busId: '0000:18:00.0' });
    expect(parseGpuInformation('Model: x\n', '0000:18:00.0')).toBeNull();
  });

  it('reads <procRoot>/driver/nvidia/gpus/*/information, and [] when absent', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-proc-'));
    expect(await readGpuMinors(root)).toEqual([]);
    for (const [i, g] of gpus.entries()) {
      const bus = normalisePciBusId(g.pciBusId)!;
      fs.mkdirSync(path.join(root, 'driver/nvidia/gpus', bus), { recursive: true });
      fs.writeFileSync(path.join(root, 'driver/nvidia/gpus', bus, 'information'), info(3 - i, g.uuid, bus));
    }
    fs.mkdirSync(path.join(root, 'driver/nvidia/gpus/0000:ff:00.0')); // an entry without a file
    const minors = await readGpuMinors(root);
    expect(minors.map((m) => m.minor).sort()).toEqual([0, 1, 2, 3]);
    const m = mapPodDevices(list(['n', 'p', 'c', 'nvidia.com/gpu', ['nvidia3']]), gpus, { minors });
    expect(m.gpus[0].exclusive?.pod).toBe('p'); // matched by the UUID in the file
  });
});
