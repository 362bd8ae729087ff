/**
 * The List reply decoder (src/kubernetes/wire.ts) against protobufjs: its field numbers are the
 * shipped .proto's, and on generated replies — with the fields a real kubelet sends that our .proto
 * leaves out — it returns what protobufjs decodes, filtered the same way. Arbitrary bytes are a
 * WireError, never a hang or another exception.
 */
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isNvidiaGpuResource } from '../src/kubernetes/device-ids.js';
import { protoPath } from '../src/kubernetes/podresources.js';
import { decodeListReply, FIELD, WireError } from '../src/kubernetes/wire.js';

const load = (file: string) => protoLoader.loadSync(file, { keepCase: false, longs: Number, enums: String, defaults: true, arrays: true });
const shipped = load(protoPath());
const shippedRaw = protoLoader.loadSync(protoPath(), { keepCase: true });
const full = load(path.join(import.meta.dirname, 'fixtures', 'podresources-v1-full.proto'));
type Codec = { responseSerialize: (v: unknown) => Buffer; responseDeserialize: (b: Buffer) => unknown };
const fullList = (full['v1.PodResourcesLister'] as Record<string, Codec>).List;
const shippedList = (shipped['v1.PodResourcesLister'] as Record<string, Codec>).List;
const keep = (r: string) => isNvidiaGpuResource(r);

describe('field numbers', () => {
  it('are those of the shipped .proto', () => {
    const fieldsOf = (name: string) =>
      Object.fromEntries(
        ((shippedRaw[`v1.${name}`] as { type: { field: { name: string; number: number }[] } }).type.field).map((f) => [f.name, f.number]),
      );
    expect(fieldsOf('ListPodResourcesResponse')).toEqual(FIELD.ListPodResourcesResponse);
    expect(fieldsOf('PodResources')).toEqual(FIELD.PodResources);
    expect(fieldsOf('ContainerResources')).toEqual(FIELD.ContainerResources);
    expect(fieldsOf('ContainerDevices')).toEqual(FIELD.ContainerDevices);
  });
});

const k8sName = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
const resource = fc.constantFrom('nvidia.com/gpu', 'nvidia.com/gpu.shared', 'nvidia.com/mig-1g.10gb', 'example.com/nic', 'cpu-ish.io/thing');
const deviceId = fc.oneof(fc.uuid().map((u) => `GPU-${u}`), fc.uuid().map((u) => `MIG-${u}`), fc.nat(16).map((n) => `nvidia${n}`), fc.string({ maxLength: 30 }));
const topology = fc.record({ nodes: fc.array(fc.record({ ID: fc.nat(8) }), { maxLength: 2 }) });
const memory = fc.array(fc.record({ memoryType: fc.constantFrom('memory', 'hugepages-1Gi'), size: fc.nat(1 << 30), topology }), { maxLength: 2 });
const container = fc.record({
  name: k8sName,
  devices: fc.array(fc.record({ resourceName: resource, deviceIds: fc.array(deviceId, { maxLength: 4 }), topology }), { maxLength: 3 }),
  cpuIds: fc.array(fc.nat(255), { maxLength: 4 }),
  memory,
  dynamicResources: fc.array(
    fc.record({
      claimName: k8sName,
      claimNamespace: k8sName,
      claimResources: fc.array(fc.record({ cdiDevices: fc.array(fc.record({ name: fc.string() }), { maxLength: 2 }), driverName: fc.constant('gpu.nvidia.com'), poolName: k8sName, deviceName: k8sName }), { maxLength: 2 }),
    }),
    { maxLength: 1 },
  ),
});
const pod = fc.record({ name: k8sName, namespace: k8sName, containers: fc.array(container, { maxLength: 3 }), cpuIds: fc.array(fc.nat(255), { maxLength: 3 }), memory });

/** What the decoder should return, computed from protobufjs's decoding with our .proto. */
function expected(bytes: Buffer) {
  const decoded = shippedList.responseDeserialize(bytes) as {
    podResources: { name: string; namespace: string; containers: { name: string; devices: { resourceName: string; deviceIds: string[] }[] }[] }[];
  };
  const pods = [];
  for (const p of decoded.podResources) {
    const containers = [];
    for (const c of p.containers) {
      const devices = c.devices.filter((d) => keep(d.resourceName) && d.deviceIds.length > 0).map((d) => ({ resourceName: d.resourceName, deviceIds: d.deviceIds }));
      if (devices.length > 0) containers.push({ name: c.name, devices });
    }
    if (containers.length > 0) pods.push({ name: p.name, namespace: p.namespace, containers });
  }
  return pods;
}

describe('decodeListReply', () => {
  it('matches protobufjs on replies with every field a kubelet sends', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(pod, { maxLength: 8 }), async (pods) => {
        const bytes = fullList.responseSerialize({ podResources: pods });
        const { list, ignored } = await decodeListReply(bytes, { keep });
        expect(ignored).toBe(0);
        expect(list.pods).toEqual(expected(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('drops pods and containers whose names are not Kubernetes names, and counts them', async () => {
    const gpu = (name: string) => ({ name, devices: [{ resourceName: 'nvidia.com/gpu', deviceIds: ['GPU-1'] }] });
    const bytes = fullList.responseSerialize({
      podResources: [
        { name: 'ok', namespace: 'ns', containers: [gpu('c'), gpu('Bad Name')] },
        { name: 'has\nnewline', namespace: 'ns', containers: [gpu('c')] },
        { name: 'x', namespace: 'n'.repeat(64), containers: [gpu('c')] },
        { name: 'cpu-only', namespace: 'ns', containers: [{ name: 'NOT checked', cpuIds: [1, 2] }] },
      ],
    });
    const { list, ignored } = await decodeListReply(bytes, { keep });
    expect(list.pods).toEqual([{ name: 'ok', namespace: 'ns', containers: [{ name: 'c', devices: [{ resourceName: 'nvidia.com/gpu', deviceIds: ['GPU-1'] }] }] }]);
    expect(ignored).toBe(3);
  });

  it('an empty reply is an empty list', async () => {
    expect(await decodeListReply(Buffer.alloc(0), { keep })).toEqual({ list: { pods: [] }, ignored: 0 });
  });

  it('arbitrary bytes decode or fail with WireError, nothing else', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (raw) => {
        try {
          await decodeListReply(Buffer.from(raw), { keep });
        } catch (e) {
          expect(e).toBeInstanceOf(WireError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('truncated replies fail with WireError', async () => {
    const bytes = fullList.responseSerialize({ podResources: [{ name: 'p', namespace: 'n', containers: [{ name: 'c', devices: [{ resourceName: 'nvidia.com/gpu', deviceIds: ['GPU-1'] }] }] }] });
    for (let cut = 1; cut < bytes.length; cut++) {
      await expect(decodeListReply(bytes.subarray(0, cut), { keep })).rejects.toBeInstanceOf(WireError);
    }
  });
});
