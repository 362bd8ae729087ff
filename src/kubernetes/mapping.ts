/**
 * From the kubelet's List reply to "which containers hold which GPU": pure functions over the reply,
 * the GPUs the sampler sees and (optionally) their device minor numbers.
 */
import { isNvidiaGpuResource, parseDeviceId, type DeviceIdentifier } from './device-ids.js';
import type { GpuMinor } from './gpu-minors.js';
import { normalisePciBusId } from './gpu-minors.js';

/** One container of one pod. */
export interface ContainerRef {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
}

/** The kubelet's List reply, reduced to what gpu-telemetry reads (see podresources.ts). */
export interface PodResourcesList {
  readonly pods: readonly PodEntry[];
}
export interface PodEntry {
  readonly name: string;
  readonly namespace: string;
  readonly containers: readonly ContainerEntry[];
}
export interface ContainerEntry {
  readonly name: string;
  readonly devices: readonly { readonly resourceName: string; readonly deviceIds: readonly string[] }[];
}

/** What mapping needs to know of a GPU (a DeviceInfo fits). */
export interface GpuIdentity {
  readonly index: number;
  readonly uuid: string;
  readonly pciBusId?: string;
}

/** The containers the kubelet assigned one whole GPU to. */
export interface GpuAssignment {
  readonly index: number;
  readonly uuid: string;
  /** Distinct containers, sorted by namespace, pod, container; [] when no container holds it. */
  readonly containers: readonly ContainerRef[];
  /** More than one container holds the GPU (time-slicing, MPS): no pod labels on its series. */
  readonly shared: boolean;
  /** The one container holding it, when exactly one does. */
  readonly exclusive: ContainerRef | null;
}

/** The containers assigned one MIG device (kept for the MIG-instance series). */
export interface MigAssignment {
  /** The MIG UUID ("MIG-…"), or the device id with any replica suffix removed. */
  readonly key: string;
  readonly migUuid: string | null;
  /** The parent GPU, when the id names it (old MIG UUIDs, GKE "nvidiaN/giK", "gpu:mig" indexes). */
  readonly parentUuid: string | null;
  readonly parentIndex: number | null;
  readonly gpuInstanceId: number | null;
  readonly computeInstanceId: number | null;
  /** k8s-device-plugin's index strategy: the MIG device's ordinal on its parent. */
  readonly migIndex: number | null;
  readonly resource: string;
  readonly containers: readonly ContainerRef[];
  readonly shared: boolean;
  readonly exclusive: ContainerRef | null;
}

/** A device id the kubelet reported that matches none of this machine's GPUs. */
export interface UnmatchedDevice {
  readonly resource: string;
  readonly deviceId: string;
  readonly reason: string;
}

export interface PodDeviceMap {
  /** One entry per GPU given, in the same order. */
  readonly gpus: readonly GpuAssignment[];
  readonly byUuid: ReadonlyMap<string, GpuAssignment>;
  /** MIG devices by `MigAssignment.key`. */
  readonly mig: ReadonlyMap<string, MigAssignment>;
  /** At most MAX_UNMATCHED entries. */
  readonly unmatched: readonly UnmatchedDevice[];
  /** How "nvidiaN" ids were read: by device minor number, or (no /proc/driver/nvidia) by NVML index. */
  readonly deviceNameBasis: 'minor' | 'index';
}

export const MAX_UNMATCHED = 32;

export interface MappingOptions {
  /** Extra extended-resource names that carry NVIDIA GPUs. */
  readonly resourceNames?: readonly string[];
  /** Device minor numbers, from readGpuMinors(); empty: "nvidiaN" is read as the NVML index. */
  readonly minors?: readonly GpuMinor[];
}

function compareRefs(a: ContainerRef, b: ContainerRef): number {
  return a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : a.container < b.container ? -1 : a.container > b.container ? 1 : 0;
}

class RefSet {
  private readonly seen = new Map<string, ContainerRef>();
  add(ref: ContainerRef): void {
    const key = `${ref.namespace}\u0000${ref.pod}\u0000${ref.container}`;
    if (!this.seen.has(key)) this.seen.set(key, ref);
  }
  sorted(): readonly ContainerRef[] {
    return Object.freeze([...this.seen.values()].sort(compareRefs));
  }
}

/** Builds the GPU → containers map. Pure; never throws on odd input (odd ids land in `unmatched`). */
export function mapPodDevices(list: PodResourcesList, gpus: readonly GpuIdentity[], options: MappingOptions = {}): PodDeviceMap {
  const extra = options.resourceNames ?? [];
  const byUuid = new Map<string, GpuIdentity>();
  const byIndex = new Map<number, GpuIdentity>();
  const byBus = new Map<string, GpuIdentity>();
  for (const g of gpus) {
    byUuid.set(g.uuid, g);
    byIndex.set(g.index, g);
    const bus = g.pciBusId ? normalisePciBusId(g.pciBusId) : null;
    if (bus) byBus.set(bus, g);
  }
  const byMinor = new Map<number, GpuIdentity>();
  for (const m of options.minors ?? []) {
    const g = (m.uuid !== null ? byUuid.get(m.uuid) : undefined) ?? byBus.get(m.busId);
    if (g) byMinor.set(m.minor, g);
  }
  const deviceNameBasis = byMinor.size > 0 ? 'minor' : 'index';

  const gpuRefs = new Map<string, RefSet>();
  const migRefs = new Map<string, { id: DeviceIdentifier; resource: string; refs: RefSet; parent: GpuIdentity | null }>();
  const unmatched: UnmatchedDevice[] = [];
  const miss = (resource: string, deviceId: string, reason: string) => {
    if (unmatched.length < MAX_UNMATCHED) unmatched.push({ resource, deviceId: deviceId.length > 80 ? `${deviceId.slice(0, 80)}…` : deviceId, reason });
  };
  const gpuFor = (id: DeviceIdentifier): GpuIdentity | null | string => {
    switch (id.kind) {
      case 'gpu-uuid':
        return byUuid.get(id.uuid) ?? 'no GPU with this UUID on this machine';
      case 'gpu-minor':
        if (deviceNameBasis === 'minor') return byMinor.get(id.minor) ?? `no GPU with device minor ${id.minor}`;
        return byIndex.get(id.minor) ?? `no GPU with index ${id.minor} (read as an index: /proc/driver/nvidia is not readable)`;
      case 'gpu-index':
        return byIndex.get(id.index) ?? `no GPU with index ${id.index}`;
      default:
        return null;
    }
  };

  for (const pod of list.pods) {
    for (const c of pod.containers) {
      const ref: ContainerRef = Object.freeze({ namespace: pod.namespace, pod: pod.name, container: c.name });
      for (const dev of c.devices) {
        if (!isNvidiaGpuResource(dev.resourceName, extra)) continue;
        for (const raw of dev.deviceIds) {
          const id = parseDeviceId(raw);
          if (id.kind === 'unknown') {
            miss(dev.resourceName, raw, id.reason);
            continue;
          }
          if (id.kind === 'mig-uuid' || id.kind === 'mig-instance') {
            const key = id.kind === 'mig-uuid' ? id.uuid : id.id;
            let parent: GpuIdentity | null = null;
            if (id.kind === 'mig-instance') {
              const p = id.parent;
              parent = (p.by === 'uuid' ? byUuid.get(p.uuid) : p.by === 'index' ? byIndex.get(p.index) : deviceNameBasis === 'minor' ? byMinor.get(p.minor) : byIndex.get(p.minor)) ?? null;
            }
            let entry = migRefs.get(key);
            if (!entry) {
              entry = { id, resource: dev.resourceName, refs: new RefSet(), parent };
              migRefs.set(key, entry);
            }
            entry.refs.add(ref);
            continue;
          }
          const gpu = gpuFor(id);
          if (typeof gpu === 'string' || gpu === null) {
            miss(dev.resourceName, raw, typeof gpu === 'string' ? gpu : 'not a whole-GPU id');
            continue;
          }
          let set = gpuRefs.get(gpu.uuid);
          if (!set) {
            set = new RefSet();
            gpuRefs.set(gpu.uuid, set);
          }
          set.add(ref);
        }
      }
    }
  }

  const assignments = gpus.map((g): GpuAssignment => {
    const containers = gpuRefs.get(g.uuid)?.sorted() ?? Object.freeze([]);
    return Object.freeze({
      index: g.index,
      uuid: g.uuid,
      containers,
      shared: containers.length > 1,
      exclusive: containers.length === 1 ? containers[0] : null,
    });
  });
  const mig = new Map<string, MigAssignment>();
  for (const [key, e] of migRefs) {
    const containers = e.refs.sorted();
    const id = e.id;
    mig.set(
      key,
      Object.freeze({
        key,
        migUuid: id.kind === 'mig-uuid' ? id.uuid : null,
        parentUuid: e.parent?.uuid ?? (id.kind === 'mig-instance' && id.parent.by === 'uuid' ? id.parent.uuid : null),
        parentIndex: e.parent?.index ?? null,
        gpuInstanceId: id.kind === 'mig-instance' ? id.gpuInstanceId : null,
        computeInstanceId: id.kind === 'mig-instance' ? id.computeInstanceId : null,
        migIndex: id.kind === 'mig-instance' ? id.migIndex : null,
        resource: e.resource,
        containers,
        shared: containers.length > 1,
        exclusive: containers.length === 1 ? containers[0] : null,
      }),
    );
  }
  return Object.freeze({
    gpus: Object.freeze(assignments),
    byUuid: new Map(assignments.map((a) => [a.uuid, a])),
    mig,
    unmatched: Object.freeze(unmatched),
    deviceNameBasis,
  });
}
