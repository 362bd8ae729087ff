/**
 * A decoder of the List reply's protobuf bytes that reads only what gpu-telemetry uses, in slices.
 *
 * Why not protobufjs (what @grpc/proto-loader deserialises with): a 10 MiB reply (#509 in
 * dcgm-exporter: big nodes reply with several MiB) took ~1 s to turn into JS objects on this
 * project's 2-core CI machine, all of it on the event loop, so every refresh would have stalled
 * /metrics for that long. This decoder skips what it does not need (CPU ids, memory, topology,
 * other resources' device ids) without materialising it, and yields to the event loop every
 * few milliseconds, so a scrape waits at most one slice whatever the reply's size. The field
 * numbers are those of proto/kubelet-podresources-v1.proto; a test checks them against it and
 * compares this decoder's output with protobufjs's on generated replies.
 */
import type { ContainerEntry, PodEntry, PodResourcesList } from './mapping.js';

/** Field numbers (proto/kubelet-podresources-v1.proto). */
export const FIELD = Object.freeze({
  ListPodResourcesResponse: { pod_resources: 1 },
  PodResources: { name: 1, namespace: 2, containers: 3 },
  ContainerResources: { name: 1, devices: 2 },
  ContainerDevices: { resource_name: 1, device_ids: 2 },
});

export class WireError extends Error {
  override readonly name = 'WireError';
}

/** Kubernetes names: pods are DNS-1123 subdomains (≤253), namespaces and containers DNS-1123 labels (≤63). */
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const MAX_RESOURCE_NAME = 253;
const MAX_DEVICE_ID = 256;
const MAX_IDS_PER_ENTRY = 4096;

class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  /** A varint as a non-negative number; values past 2^53 saturate (only lengths and tags are used). */
  varint(): number {
    let result = 0;
    for (let i = 0; ; i++) {
      if (i >= 10) throw new WireError('varint longer than 10 bytes');
      if (this.pos >= this.end) throw new WireError('truncated varint');
      const b = this.buf[this.pos++];
      const bits = b & 0x7f;
      if (i < 4) result |= bits << (7 * i);
      else if (i < 7) result += bits * 2 ** (7 * i);
      else if (bits !== 0) result = Number.MAX_SAFE_INTEGER;
      if ((b & 0x80) === 0) return result;
    }
  }

  /** A length-delimited field: [start, end) of its bytes. */
  span(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (len > this.end - start) throw new WireError(`a field of ${len} bytes runs past its message`);
    this.pos = start + len;
    return [start, start + len];
  }

  string(maxLength: number): string | null {
    const [s, e] = this.span();
    if (e - s > maxLength * 4) return null; // too long to be valid: skip without decoding
    return this.buf.toString('utf8', s, e);
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.advance(8);
        return;
      case 2:
        this.span();
        return;
      case 5:
        this.advance(4);
        return;
      default:
        throw new WireError(`wire type ${wireType} (groups or garbage)`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw new WireError('truncated fixed-width field');
    this.pos += n;
  }
}

function tagOf(r: Reader): [field: number, wireType: number] {
  const tag = r.varint();
  const field = Math.floor(tag / 8);
  if (field === 0) throw new WireError('field number 0');
  return [field, tag & 7];
}

/** The kept devices of one ContainerDevices message; null when its resource is not kept; 'bad' when malformed. */
function decodeDevices(buf: Buffer, start: number, end: number, keep: (resource: string) => boolean): { resourceName: string; deviceIds: string[] } | null | 'bad' {
  const r = new Reader(buf, start, end);
  let resourceName: string | null = null;
  // Ids may come before the name on the wire: remember their spans, decode once the name is kept.
  let spans: number[] | null = null;
  while (r.pos < r.end) {
    const [field, wt] = tagOf(r);
    if (field === FIELD.ContainerDevices.resource_name && wt === 2) resourceName = r.string(MAX_RESOURCE_NAME);
    else if (field === FIELD.ContainerDevices.device_ids && wt === 2) {
      const [s, e] = r.span();
      spans ??= [];
      if (spans.length < 2 * MAX_IDS_PER_ENTRY) spans.push(s, e);
    } else r.skip(wt);
  }
  if (resourceName === null || resourceName.length > MAX_RESOURCE_NAME) return 'bad';
  if (spans === null || !keep(resourceName)) return null;
  const deviceIds: string[] = [];
  for (let i = 0; i < spans.length; i += 2) if (spans[i + 1] - spans[i] <= MAX_DEVICE_ID) deviceIds.push(buf.toString('utf8', spans[i], spans[i + 1]));
  return { resourceName, deviceIds };
}

/**
 * One ContainerResources message: its kept devices, or null when it holds none. The name is
 * decoded only for a container that is kept; `bad` counts a malformed one.
 */
function decodeContainer(buf: Buffer, start: number, end: number, keep: (resource: string) => boolean, counts: { ignored: number }): ContainerEntry | null {
  const r = new Reader(buf, start, end);
  let nameStart = -1;
  let nameEnd = -1;
  let devices: ContainerEntry['devices'][number][] | null = null;
  while (r.pos < r.end) {
    const [field, wt] = tagOf(r);
    if (field === FIELD.ContainerResources.name && wt === 2) [nameStart, nameEnd] = r.span();
    else if (field === FIELD.ContainerResources.devices && wt === 2) {
      const [s, e] = r.span();
      const d = decodeDevices(buf, s, e, keep);
      if (d === 'bad') counts.ignored++;
      else if (d && d.deviceIds.length > 0) (devices ??= []).push(d);
    } else r.skip(wt);
  }
  if (devices === null) return null;
  const name = nameStart >= 0 && nameEnd - nameStart <= 63 ? buf.toString('utf8', nameStart, nameEnd) : '';
  if (!LABEL.test(name)) {
    counts.ignored++;
    return null;
  }
  return { name, devices };
}

/** One PodResources message: the pod with its kept containers, or null when none is kept (or it is malformed). */
function decodePod(buf: Buffer, start: number, end: number, keep: (resource: string) => boolean, counts: { ignored: number }): PodEntry | null {
  const r = new Reader(buf, start, end);
  let name: [number, number] | null = null;
  let namespace: [number, number] | null = null;
  let containers: ContainerEntry[] | null = null;
  while (r.pos < r.end) {
    const [field, wt] = tagOf(r);
    if (field === FIELD.PodResources.name && wt === 2) name = r.span();
    else if (field === FIELD.PodResources.namespace && wt === 2) namespace = r.span();
    else if (field === FIELD.PodResources.containers && wt === 2) {
      const [s, e] = r.span();
      const c = decodeContainer(buf, s, e, keep, counts);
      if (c) (containers ??= []).push(c);
    } else r.skip(wt);
  }
  if (containers === null) return null; // nothing kept: the names are never decoded
  const podName = name && name[1] - name[0] <= 253 ? buf.toString('utf8', name[0], name[1]) : '';
  const podNamespace = namespace && namespace[1] - namespace[0] <= 63 ? buf.toString('utf8', namespace[0], namespace[1]) : '';
  if (!SUBDOMAIN.test(podName) || !LABEL.test(podNamespace)) {
    counts.ignored++;
    return null;
  }
  return { name: podName, namespace: podNamespace, containers };
}

export interface DecodeOptions {
  /** Which extended resources to keep (the rest is skipped undecoded). */
  readonly keep: (resourceName: string) => boolean;
  /** Yield to the event loop after this much decoding (ms; default 4). */
  readonly sliceMs?: number;
}

/**
 * Decodes a ListPodResourcesResponse, keeping only containers that hold a kept resource. Yields
 * to the event loop between slices. Throws WireError on bytes that are not such a message.
 */
export async function decodeListReply(buf: Buffer, options: DecodeOptions): Promise<{ list: PodResourcesList; ignored: number }> {
  const sliceMs = options.sliceMs ?? 4;
  const counts = { ignored: 0 };
  const pods: PodEntry[] = [];
  const r = new Reader(buf, 0, buf.length);
  let sliceStart = performance.now();
  let n = 0;
  while (r.pos < r.end) {
    const [field, wt] = tagOf(r);
    if (field === FIELD.ListPodResourcesResponse.pod_resources && wt === 2) {
      const [s, e] = r.span();
      const pod = decodePod(buf, s, e, options.keep, counts);
      if (pod) pods.push(pod);
      if ((++n & 15) === 0 && performance.now() - sliceStart > sliceMs) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
    } else r.skip(wt);
  }
  return { list: { pods }, ignored: counts.ignored };
}
