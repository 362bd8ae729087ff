/**
 * Processes → containers → pods, for per-process series.
 *
 * What each source gives, and so what the join can and cannot say:
 *  - the driver (NVML) lists the pids on each GPU: host pids, whatever pid namespace the process
 *    runs in, so this needs `/proc` of the host (hostPID: true, or a host /proc mounted as procRoot);
 *  - `/proc/<pid>/cgroup` gives the container id and, in Kubernetes, the pod UID (parseProcCgroup);
 *  - the kubelet's PodResources List gives, per pod name/namespace and container name, the devices
 *    assigned to it, but neither the pod UID nor the container id.
 * Nothing the kubelet's socket says links a pod UID or a container id to a pod name, so the join
 * goes through the device: a process in a pod that runs on a GPU the kubelet assigned to exactly
 * one container belongs to that container. On a shared GPU (time-slicing, MPS) the process is
 * known by pod UID and container id only, unless a `podByUid` lookup is given (e.g.
 * readPodLogDirectory on the kubelet's /var/log/pods, or an API-server pod list); then the pod is
 * known, and the container too when only one of the GPU's containers belongs to that pod. A process
 * outside any pod (a host service, a container that was not assigned the GPU but can see it, e.g.
 * with NVIDIA_VISIBLE_DEVICES=all) is never attributed to the GPU's pod.
 */
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { parseProcCgroup, type CgroupIdentity } from './cgroup.js';
import type { ContainerRef, GpuAssignment } from './mapping.js';

const MAX_CGROUP_BYTES = 64 * 1024;

export interface ProcessReadOptions {
  /** Where /proc is (default /proc); a test points it at a fixture tree. */
  readonly procRoot?: string;
}

/**
 * Reads and parses `/proc/<pid>/cgroup` (bounded read; never throws). A pid that is not there —
 * gone, or in a pid namespace this process cannot see — is `unknown` with the reason.
 */
export async function readProcessCgroup(pid: number, options: ProcessReadOptions = {}): Promise<CgroupIdentity> {
  if (!Number.isInteger(pid) || pid <= 0 || pid > 0x3fffffff) return { kind: 'unknown', reason: `not a pid: ${pid}` };
  const file = path.join(options.procRoot ?? '/proc', String(pid), 'cgroup');
  let text: string;
  try {
    const fh = await open(file, 'r');
    try {
      const buf = Buffer.alloc(MAX_CGROUP_BYTES);
      const { bytesRead } = await fh.read(buf, 0, MAX_CGROUP_BYTES, 0);
      text = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fh.close();
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') {
      return { kind: 'unknown', reason: `no ${file}: the process ended, or runs in another pid namespace (the driver reports host pids: run with hostPID)` };
    }
    return { kind: 'unknown', reason: `cannot read ${file}: ${code ?? (e as Error).message}` };
  }
  return parseProcCgroup(text);
}

/** A pod known by UID (from readPodLogDirectory or an API-server list). */
export interface PodName {
  readonly namespace: string;
  readonly pod: string;
}

/** What is known of one process on one GPU. */
export interface ProcessAttribution {
  readonly pid: number;
  /** From the cgroup file (null when it is not a container process, or could not be read). */
  readonly containerId: string | null;
  readonly podUid: string | null;
  /** Pod labels when they could be established; null otherwise (see `how`). */
  readonly namespace: string | null;
  readonly pod: string | null;
  readonly container: string | null;
  /**
   * `exclusive-device`: the GPU is assigned to one container and the process is in a pod;
   * `pod-uid`: found through podByUid (container set only when unambiguous);
   * `not-in-pod`: a host or non-Kubernetes container process; `ambiguous`: in a pod on a shared
   * GPU with no way to name it; `unassigned`: the GPU is assigned to no container; `unknown`: the
   * cgroup file could not be placed (reason).
   */
  readonly how: 'exclusive-device' | 'pod-uid' | 'not-in-pod' | 'ambiguous' | 'unassigned' | 'unknown';
  readonly reason: string | null;
}

export interface AttributeOptions {
  /** Pod UID → namespace/name, when something can tell (readPodLogDirectory, an API-server list). */
  readonly podByUid?: (uid: string) => PodName | undefined;
}

/**
 * Joins the processes on one GPU with the containers the kubelet assigned it. Pure: give it the
 * parsed cgroup of each pid (readProcessCgroup) and the GPU's assignment (KubernetesPods.map()).
 *
 * On an exclusively assigned GPU every pod process is attributed to that container, except when
 * processes of more than one pod UID (or more than one container id of one pod) are on it: one of
 * them then is not the assigned container (it can see the GPU without having been given it), the
 * join cannot tell which, and those processes are `ambiguous` unless podByUid settles it.
 */
export function attributeGpuProcesses(
  processes: readonly { readonly pid: number; readonly cgroup: CgroupIdentity }[],
  assignment: Pick<GpuAssignment, 'containers'> | null,
  options: AttributeOptions = {},
): ProcessAttribution[] {
  const containers = assignment?.containers ?? [];
  const inPods = processes.filter((p) => p.cgroup.kind === 'container' && p.cgroup.podUid !== null);
  const distinct = new Set(inPods.map((p) => (p.cgroup.kind === 'container' ? `${p.cgroup.podUid}/${p.cgroup.containerId}` : '')));
  const exclusive = containers.length === 1 && distinct.size <= 1 ? containers[0] : null;
  return processes.map((p): ProcessAttribution => {
    const c = p.cgroup;
    const base = { pid: p.pid, containerId: c.kind === 'container' ? c.containerId : null, podUid: c.kind === 'container' ? c.podUid : null };
    const none = { namespace: null, pod: null, container: null };
    if (c.kind === 'unknown') return { ...base, ...none, how: 'unknown', reason: c.reason };
    if (c.kind === 'host' || c.podUid === null) {
      return { ...base, ...none, how: 'not-in-pod', reason: c.kind === 'host' ? `host cgroup ${c.path}` : 'a container outside Kubernetes' };
    }
    if (containers.length === 0) return { ...base, ...none, how: 'unassigned', reason: 'the kubelet assigned this GPU to no container' };
    if (exclusive) return { ...base, ...exclusive, how: 'exclusive-device', reason: null };
    const named = options.podByUid?.(c.podUid);
    if (named) {
      const candidates = containers.filter((r: ContainerRef) => r.namespace === named.namespace && r.pod === named.pod);
      if (candidates.length > 0) {
        return {
          ...base,
          namespace: named.namespace,
          pod: named.pod,
          container: candidates.length === 1 ? candidates[0].container : null,
          how: 'pod-uid',
          reason: candidates.length === 1 ? null : 'several containers of this pod hold the GPU',
        };
      }
      return { ...base, ...none, how: 'ambiguous', reason: `pod ${named.namespace}/${named.pod} was not assigned this GPU` };
    }
    return {
      ...base,
      ...none,
      how: 'ambiguous',
      reason: containers.length > 1 ? 'the GPU is shared by several containers and the pod UID cannot be named' : 'processes of several pods are on a GPU assigned to one container',
    };
  });
}

/**
 * readProcessCgroup for each pid, then attributeGpuProcesses: what the per-process series of one GPU
 * need, given the pids the driver lists on it (host pids) and its assignment from
 * KubernetesPods.map(gpu.devices)?.byUuid.get(uuid). Reads are bounded (64 KiB each); at most
 * `maxPids` pids are looked at (default 64, what the sampler keeps per GPU).
 */
export async function attributeGpuPids(
  pids: readonly number[],
  assignment: Pick<GpuAssignment, 'containers'> | null,
  options: ProcessReadOptions & AttributeOptions & { readonly maxPids?: number } = {},
): Promise<ProcessAttribution[]> {
  const chosen = pids.slice(0, options.maxPids ?? 64);
  const processes = await Promise.all(chosen.map(async (pid) => ({ pid, cgroup: await readProcessCgroup(pid, options) })));
  return attributeGpuProcesses(processes, assignment, options);
}

/**
 * Pod UID → namespace/name from the kubelet's pod log directory (/var/log/pods/<namespace>_<name>_<uid>):
 * namespaces and pod names cannot contain "_", so the split is unambiguous. Only the directory's
 * entry names are read. Mounting /var/log/pods gives read access to every pod's logs, though:
 * prefer an API-server list where that is acceptable.
 */
export async function readPodLogDirectory(dir = '/var/log/pods', maxEntries = 10_000): Promise<Map<string, PodName>> {
  const out = new Map<string, PodName>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return out;
  }
  for (const name of names.slice(0, maxEntries)) {
    const parsed = parsePodLogDirName(name);
    if (parsed) out.set(parsed.uid, { namespace: parsed.namespace, pod: parsed.pod });
  }
  return out;
}

/** "<namespace>_<pod>_<uid>" → its parts; null for anything else. */
export function parsePodLogDirName(name: string): { namespace: string; pod: string; uid: string } | null {
  const m = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)_([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$/.exec(name);
  if (!m) return null;
  return { namespace: m[1], pod: m[3], uid: m[5] };
}
