/**
 * Which pod each GPU process belongs to, for the per-process series, worked out in the background:
 * a scrape only reads the last answer (reading /proc/<pid>/cgroup for up to 64 processes per GPU is
 * file I/O that must not hold a scrape up). The join itself is attributeGpuProcesses (processes.ts):
 * on a GPU or MIG instance assigned to one container, a process in a pod is that container's; else
 * only its pod UID is known (the pod_uid label, to join with kube_pod_info{uid}).
 */
import type { DeviceSample } from '../snapshot.js';
import type { ContainerRef, PodDeviceMap } from './mapping.js';
import { attributeGpuProcesses, readProcessCgroup, type ProcessAttribution } from './processes.js';

/** The key processes are attributed under: a GPU's UUID, or a MIG instance's "<GPU UUID>/<GPU instance id>". */
export function attributionKey(gpuUuid: string, gpuInstanceId: number | null): string {
  return gpuInstanceId === null ? gpuUuid : `${gpuUuid}/${gpuInstanceId}`;
}

/** The containers the kubelet assigned one MIG GPU instance to (through its compute instances' MIG UUIDs). */
export function migContainers(map: PodDeviceMap | null, migUuids: readonly (string | null)[]): readonly ContainerRef[] {
  if (!map) return [];
  const seen = new Map<string, ContainerRef>();
  for (const uuid of migUuids) {
    if (!uuid) continue;
    for (const c of map.mig.get(uuid)?.containers ?? []) seen.set(`${c.namespace}\u0000${c.pod}\u0000${c.container}`, c);
  }
  return [...seen.values()];
}

export class ProcessPodCache {
  private byKey = new Map<string, Map<number, ProcessAttribution>>();
  private lastStart = 0;
  private inFlight = false;

  constructor(
    private readonly procRoot: string,
    private readonly refreshMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The last attribution of `pid` under `key` (attributionKey), if any. */
  lookup(key: string, pid: number): ProcessAttribution | undefined {
    return this.byKey.get(key)?.get(pid);
  }

  /**
   * Starts a refresh in the background when the last one is older than refreshMs and none is
   * running; never waits. `devices`: the snapshot's devices (their processes, with instance ids).
   */
  refresh(devices: readonly DeviceSample[], map: PodDeviceMap | null): void {
    if (this.inFlight || this.now() - this.lastStart < this.refreshMs) return;
    this.inFlight = true;
    this.lastStart = this.now();
    void this.run(devices, map).finally(() => {
      this.inFlight = false;
    });
  }

  private async run(devices: readonly DeviceSample[], map: PodDeviceMap | null): Promise<void> {
    const next = new Map<string, Map<number, ProcessAttribution>>();
    for (const d of devices) {
      // Group the device's processes by where they run: the whole GPU, or one MIG GPU instance.
      const groups = new Map<number | null, number[]>();
      for (const p of d.processes) {
        const list = groups.get(p.gpuInstanceId) ?? [];
        list.push(p.pid);
        groups.set(p.gpuInstanceId, list);
      }
      for (const [gi, pids] of groups) {
        const containers =
          gi === null
            ? (map?.byUuid.get(d.uuid)?.containers ?? [])
            : migContainers(map, d.migInstances.find((m) => m.gpuInstanceId === gi)?.computeInstances.map((c) => c.uuid) ?? []);
        const processes = await Promise.all(pids.map(async (pid) => ({ pid, cgroup: await readProcessCgroup(pid, { procRoot: this.procRoot }) })));
        const attributed = attributeGpuProcesses(processes, { containers });
        next.set(attributionKey(d.uuid, gi), new Map(attributed.map((a) => [a.pid, a])));
      }
    }
    this.byKey = next;
  }
}
