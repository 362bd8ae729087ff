/**
 * Which container (and which Kubernetes pod) a process belongs to, from the text of
 * `/proc/<pid>/cgroup`. Pure: no file access here (see processes.ts for the reader).
 *
 * Shapes understood (cgroup v1 lines "ID:controllers:path" and the v2 line "0::path"):
 *  - kubelet with the systemd cgroup driver:
 *      /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope
 *      /kubepods.slice/kubepods-pod<uid>.slice/crio-<id>.scope            (Guaranteed QoS: no QoS slice)
 *      …/kubepods-besteffort-pod<uid>.slice/docker-<id>.scope              (cri-dockerd)
 *  - kubelet with the cgroupfs driver:  /kubepods/burstable/pod<uid>/<id>, /kubepods/pod<uid>/<id>
 *  - plain containers: /docker/<id>, /system.slice/docker-<id>.scope, …/libpod-<id>.scope (podman)
 *  - paths seen from inside a cgroup namespace ("/../../kubepods-…"), nested runtimes
 *    (/docker/<id>/kubepods/…, kind), and a runtime's sub-cgroup below the container's
 *    (…/crio-<id>.scope/container): the segments are scanned, the innermost pod and container win.
 * Container ids are 64 lowercase hex digits (containerd, CRI-O, Docker, Podman all use them). Pod
 * UIDs are RFC 4122 UUIDs, or 32 hex digits for static pods (the kubelet derives those from a hash).
 */

export type ContainerRuntime = 'containerd' | 'cri-o' | 'docker' | 'podman';
export type QosClass = 'guaranteed' | 'burstable' | 'besteffort';

/** A process that runs in a container. */
export interface CgroupContainer {
  readonly kind: 'container';
  /** The runtime's container id (64 hex digits), as in `crictl ps` / the pod's status.containerStatuses[].containerID. */
  readonly containerId: string;
  /** The runtime named by the cgroup path; null with the cgroupfs driver, whose paths do not say. */
  readonly runtime: ContainerRuntime | null;
  /** The Kubernetes pod UID (dashed form), null for a container that is not in a pod (plain docker run). */
  readonly podUid: string | null;
  /** The pod's QoS class, from the kubepods hierarchy (null outside Kubernetes). */
  readonly qosClass: QosClass | null;
  readonly cgroupVersion: 1 | 2;
  /** The cgroup path the answer came from. */
  readonly path: string;
}

/** A process outside any container (a host service, a login session, the root cgroup). */
export interface CgroupHost {
  readonly kind: 'host';
  readonly cgroupVersion: 1 | 2;
  readonly path: string;
}

/** A cgroup file this parser cannot place: the reason says what was seen. */
export interface CgroupUnknown {
  readonly kind: 'unknown';
  readonly reason: string;
}

export type CgroupIdentity = CgroupContainer | CgroupHost | CgroupUnknown;

const CONTAINER_ID = /^[0-9a-f]{64}$/;
const DASHED_UID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HASH_UID = /^[0-9a-f]{32}$/;

/** `<prefix>-<64 hex>.scope` segments of the systemd driver, by runtime. */
const SCOPE_PREFIXES: readonly (readonly [string, ContainerRuntime])[] = [
  ['cri-containerd-', 'containerd'],
  ['crio-', 'cri-o'],
  ['docker-', 'docker'],
  ['libpod-', 'podman'],
];

/** v1 controllers in the order their path is trusted (the same path repeats across controllers). */
const V1_PREFERENCE = ['pids', 'memory', 'cpu', 'cpuacct', 'cpu,cpuacct', 'cpuacct,cpu', 'devices', 'name=systemd', 'blkio'];

/** At most this many lines are looked at: a real file has ~15. */
const MAX_LINES = 64;

function normaliseUid(raw: string): string | null {
  const uid = raw.toLowerCase().replace(/_/g, '-');
  if (DASHED_UID.test(uid) || HASH_UID.test(uid)) return uid;
  return null;
}

interface SegmentFacts {
  containerId: string | null;
  runtime: ContainerRuntime | null;
  podUid: string | null;
  qosClass: QosClass | null;
  inKubepods: boolean;
  /** The path climbs out of the reader's cgroup namespace ("/../.."): the kubepods root may be above it. */
  relative: boolean;
  /** A segment that looks like a container but could not be read (e.g. a truncated id). */
  oddSegment: string | null;
}

function scanPath(path: string): SegmentFacts {
  const facts: SegmentFacts = { containerId: null, runtime: null, podUid: null, qosClass: null, inKubepods: false, relative: false, oddSegment: null };
  const segments = path.split('/');
  let previous = '';
  for (const seg of segments) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      facts.relative = true;
      continue;
    }
    // --- the kubepods hierarchy (both drivers) ---
    if (seg === 'kubepods' || seg === 'kubepods.slice') {
      facts.inKubepods = true;
      facts.podUid = null;
      facts.qosClass = null;
      facts.containerId = null;
      facts.runtime = null;
    } else if (seg.startsWith('kubepods-') && seg.endsWith('.slice')) {
      facts.inKubepods = true;
      const inner = seg.slice('kubepods-'.length, -'.slice'.length); // burstable | burstable-pod<uid> | pod<uid>
      const podAt = inner.indexOf('pod');
      const qos = podAt > 0 ? inner.slice(0, podAt - 1) : podAt === 0 ? '' : inner;
      if (qos === 'burstable' || qos === 'besteffort') facts.qosClass = qos;
      if (podAt >= 0) {
        const uid = normaliseUid(inner.slice(podAt + 3));
        if (uid) {
          facts.podUid = uid;
          if (qos === '') facts.qosClass = 'guaranteed';
        } else {
          facts.oddSegment = seg;
        }
      }
    } else if (facts.inKubepods && (seg === 'burstable' || seg === 'besteffort') && (previous === 'kubepods' || previous === 'kubepods.slice')) {
      facts.qosClass = seg;
    } else if ((facts.inKubepods || facts.relative) && seg.startsWith('pod') && !seg.includes('.')) {
      const uid = normaliseUid(seg.slice(3));
      if (uid) {
        facts.inKubepods = true;
        facts.podUid = uid;
        // Directly below the kubepods root: Guaranteed. Below "/..": the QoS level is out of sight.
        if (facts.qosClass === null && previous === 'kubepods') facts.qosClass = 'guaranteed';
      } else {
        facts.oddSegment = seg;
      }
    } else if (seg.endsWith('.scope')) {
      // --- the systemd driver's container scopes ---
      const name = seg.slice(0, -'.scope'.length);
      if (name.startsWith('crio-conmon-')) continue; // CRI-O's monitor process, not the container
      let matched = false;
      for (const [prefix, runtime] of SCOPE_PREFIXES) {
        if (!name.startsWith(prefix)) continue;
        matched = true;
        const id = name.slice(prefix.length);
        if (CONTAINER_ID.test(id)) {
          facts.containerId = id;
          facts.runtime = runtime;
        } else {
          facts.oddSegment = seg;
        }
      }
      if (!matched && facts.inKubepods && facts.podUid !== null) facts.oddSegment = seg;
    } else if (CONTAINER_ID.test(seg)) {
      // --- the cgroupfs driver (bare id below the pod) and plain docker (/docker/<id>) ---
      if (facts.podUid !== null || previous === 'docker') {
        facts.containerId = seg;
        facts.runtime = previous === 'docker' ? 'docker' : null;
      }
    } else if (seg.startsWith('libpod-') && CONTAINER_ID.test(seg.slice('libpod-'.length))) {
      // podman with the cgroupfs manager: /libpod_parent/libpod-<id>
      facts.containerId = seg.slice('libpod-'.length);
      facts.runtime = 'podman';
    } else if (facts.inKubepods && facts.podUid !== null && facts.containerId === null) {
      facts.oddSegment ??= seg;
    }
    previous = seg;
  }
  return facts;
}

interface CgroupLine {
  version: 1 | 2;
  controllers: string;
  path: string;
}

function splitLines(text: string): CgroupLine[] {
  const out: CgroupLine[] = [];
  let count = 0;
  for (const raw of text.split('\n')) {
    if (++count > MAX_LINES) break;
    const line = raw.trim();
    if (line === '') continue;
    const first = line.indexOf(':');
    const second = first < 0 ? -1 : line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const id = line.slice(0, first);
    if (!/^\d+$/.test(id)) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (!path.startsWith('/')) continue;
    out.push({ version: id === '0' && controllers === '' ? 2 : 1, controllers, path });
  }
  return out;
}

function rank(line: CgroupLine): number {
  if (line.version === 2) return -1;
  const i = V1_PREFERENCE.indexOf(line.controllers);
  return i >= 0 ? i : V1_PREFERENCE.length;
}

/**
 * Reads the text of a `/proc/<pid>/cgroup` file. A `container` answer carries the container id
 * and, inside Kubernetes, the pod UID and QoS class; `host` is a process outside containers;
 * `unknown` has the reason (never throws).
 */
export function parseProcCgroup(text: string): CgroupIdentity {
  if (typeof text !== 'string') return { kind: 'unknown', reason: 'not text' };
  const lines = splitLines(text);
  if (lines.length === 0) {
    return { kind: 'unknown', reason: text.trim() === '' ? 'empty cgroup file' : 'no "ID:controllers:/path" line in the cgroup file' };
  }
  lines.sort((a, b) => rank(a) - rank(b));
  let odd: { path: string; segment: string } | null = null;
  let kubepodsPath: string | null = null;
  for (const line of lines) {
    const facts = scanPath(line.path);
    if (facts.containerId !== null && facts.inKubepods && facts.podUid === null) {
      // A container below kubepods whose pod UID cannot be read: not to be taken for a non-pod container.
      odd ??= { path: line.path, segment: facts.oddSegment ?? 'kubepods' };
      continue;
    }
    if (facts.containerId !== null) {
      return {
        kind: 'container',
        containerId: facts.containerId,
        runtime: facts.runtime,
        podUid: facts.podUid,
        qosClass: facts.qosClass,
        cgroupVersion: line.version,
        path: line.path,
      };
    }
    if (facts.oddSegment !== null && odd === null) odd = { path: line.path, segment: facts.oddSegment };
    if (facts.inKubepods && kubepodsPath === null) kubepodsPath = line.path;
  }
  if (odd !== null) return { kind: 'unknown', reason: `unrecognised cgroup segment "${clip(odd.segment)}" in ${clip(odd.path, 200)}` };
  if (kubepodsPath !== null) {
    return { kind: 'unknown', reason: `a kubepods cgroup without a container id: ${clip(kubepodsPath, 200)}` };
  }
  // No line names a container or a pod: a host process (systemd unit, session, root cgroup). In a
  // hybrid v1/v2 layout the v2 line is often just "/", so report the most specific path seen.
  const best = lines.find((l) => l.path !== '/') ?? lines[0];
  return { kind: 'host', cgroupVersion: best.version, path: best.path };
}

function clip(s: string, max = 80): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
