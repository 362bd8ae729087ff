/**
 * KubernetesPods: asks the kubelet which containers hold which GPUs, every refreshMs, in the
 * background; readers (a scrape, your code) only ever read the cached answer, so a slow, hung or
 * broken kubelet can make the answer old or absent but never makes a scrape wait.
 */
import { EventEmitter } from 'node:events';
import { debuglog } from 'node:util';
import { isNvidiaGpuResource } from './device-ids.js';
import { readGpuMinors, type GpuMinor } from './gpu-minors.js';
import { mapPodDevices, type GpuAssignment, type GpuIdentity, type PodDeviceMap, type PodResourcesList } from './mapping.js';
import { resolveKubernetesOptions, type KubernetesOptions, type ResolvedKubernetesOptions } from './options.js';
import { listPodResources, PodResourcesError, type PodResourcesErrorCode } from './podresources.js';

const debug = debuglog('gpu-telemetry');

export interface KubernetesStatus {
  /** `starting`: no answer yet; `up`: the last call answered; `down`: it failed (see code, reason). */
  readonly state: 'starting' | 'up' | 'down' | 'closed';
  /** Why the last call failed (null when it did not). */
  readonly code: PodResourcesErrorCode | null;
  readonly reason: string | null;
  readonly socket: string;
  /** When the last call ended, and the last one that answered (ms since the epoch). */
  readonly lastAttemptAt: number | null;
  readonly lastSuccessAt: number | null;
  /** Pods holding devices in the answer in use. */
  readonly pods: number;
  /** Entries of the last answer dropped as malformed (names that are not Kubernetes names, …). */
  readonly ignored: number;
  /** Calls made, and calls that failed, since creation. */
  readonly calls: number;
  readonly failures: number;
  /** The last answer's size (bytes) and decode time (ms, spread over event-loop slices). */
  readonly replyBytes: number | null;
  readonly decodeMs: number | null;
}

export interface KubernetesPodsEvents {
  /** The state or the failure code changed (not on every refresh). */
  status: [status: KubernetesStatus];
}

/** Seams for tests. */
export interface KubernetesPodsDeps {
  list?: typeof listPodResources;
  readMinors?: (procRoot: string) => Promise<GpuMinor[]>;
  now?: () => number;
}

export class KubernetesPods extends EventEmitter<KubernetesPodsEvents> {
  readonly options: ResolvedKubernetesOptions;
  private list: PodResourcesList | null = null;
  private generation = 0;
  private ignored = 0;
  private replyBytes: number | null = null;
  private decodeMs: number | null = null;
  private state: KubernetesStatus['state'] = 'starting';
  private code: PodResourcesErrorCode | null = null;
  private reason: string | null = null;
  private lastAttemptAt: number | null = null;
  private lastSuccessAt: number | null = null;
  private calls = 0;
  private failures = 0;
  private minors: readonly GpuMinor[] | null = null;
  private inFlight: Promise<KubernetesStatus> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly abort = new AbortController();
  private readonly first: Promise<void>;
  private cache: { generation: number; gpus: readonly GpuIdentity[]; map: PodDeviceMap } | null = null;
  private readonly deps: Required<KubernetesPodsDeps>;

  /** @internal Use createKubernetesPods(). */
  constructor(options: ResolvedKubernetesOptions, deps: KubernetesPodsDeps = {}, start = true) {
    super();
    this.options = options;
    this.deps = { list: deps.list ?? listPodResources, readMinors: deps.readMinors ?? readGpuMinors, now: deps.now ?? Date.now };
    this.first = start ? this.tick().then(() => undefined) : Promise.resolve();
  }

  /** Resolves once the first call has ended, whatever its outcome. */
  ready(): Promise<void> {
    return this.first;
  }

  /** Where the kubelet is asked, and how that is going. */
  status(): KubernetesStatus {
    return Object.freeze({
      state: this.state,
      code: this.code,
      reason: this.reason,
      socket: this.options.podResourcesSocket,
      lastAttemptAt: this.lastAttemptAt,
      lastSuccessAt: this.lastSuccessAt,
      pods: this.usableList()?.pods.length ?? 0,
      ignored: this.ignored,
      calls: this.calls,
      failures: this.failures,
      replyBytes: this.replyBytes,
      decodeMs: this.decodeMs,
    });
  }

  /**
   * Which containers hold each of these GPUs (e.g. `gpu.devices`), from the cached answer: null
   * while there is none usable (never asked yet, or failing for longer than maxStaleMs). Cheap:
   * the mapping is computed once per answer and GPU list.
   */
  map(gpus: readonly GpuIdentity[]): PodDeviceMap | null {
    const list = this.usableList();
    if (list === null) return null;
    const c = this.cache;
    if (c && c.generation === this.generation && c.gpus === gpus) return c.map;
    const map = mapPodDevices(list, gpus, { resourceNames: this.options.resourceNames, minors: this.minors ?? [] });
    this.cache = { generation: this.generation, gpus, map };
    return map;
  }

  /**
   * `devices(gpu.devices)[i].containers`: the containers holding GPU i ([] when none, or when the
   * kubelet's answer is not usable: check status()).
   */
  devices(gpus: readonly GpuIdentity[]): readonly GpuAssignment[] {
    const map = this.map(gpus);
    if (map) return map.gpus;
    return gpus.map((g) => Object.freeze({ index: g.index, uuid: g.uuid, containers: Object.freeze([]), shared: false, exclusive: null }));
  }

  /** Asks the kubelet now (joins a call already in flight). Resolves with the new status. */
  refresh(): Promise<KubernetesStatus> {
    if (this.state === 'closed') return Promise.resolve(this.status());
    this.inFlight ??= this.call().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  /** Stops refreshing. Idempotent. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.setState('closed', null, null);
    this.abort.abort(); // a call in flight (a hung kubelet) ends now, not at its deadline
  }

  private async tick(): Promise<void> {
    const started = this.deps.now();
    await this.refresh();
    if (this.state === 'closed') return;
    const wait = Math.max(0, this.options.refreshMs - (this.deps.now() - started));
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.tick();
    }, wait);
    this.timer.unref();
  }

  private usableList(): PodResourcesList | null {
    if (this.list === null || this.lastSuccessAt === null) return null;
    if (this.state === 'up') return this.list;
    if (this.state === 'down' && this.deps.now() - this.lastSuccessAt < this.options.maxStaleMs) return this.list;
    return null;
  }

  private async call(): Promise<KubernetesStatus> {
    this.calls++;
    try {
      if (this.minors === null) this.minors = await this.deps.readMinors(this.options.procRoot).catch(() => []);
      const extra = this.options.resourceNames;
      const { list, ignored, bytes, decodeMs } = await this.deps.list(this.options.podResourcesSocket, {
        timeoutMs: this.options.timeoutMs,
        maxReceiveBytes: this.options.maxReplyBytes,
        keepResource: (r) => isNvidiaGpuResource(r, extra),
        signal: this.abort.signal,
      });
      if (this.state === 'closed') return this.status();
      this.list = list;
      this.ignored = ignored;
      this.replyBytes = bytes;
      this.decodeMs = decodeMs;
      this.generation++;
      this.lastAttemptAt = this.lastSuccessAt = this.deps.now();
      this.setState('up', null, null);
    } catch (e) {
      if (this.state === 'closed') return this.status();
      this.failures++;
      const err = e instanceof PodResourcesError ? e : new PodResourcesError('ERROR', (e as Error)?.message ?? String(e));
      this.lastAttemptAt = this.deps.now();
      this.setState('down', err.code, err.message);
    }
    return this.status();
  }

  private setState(state: KubernetesStatus['state'], code: PodResourcesErrorCode | null, reason: string | null): void {
    const changed = state !== this.state || code !== this.code;
    this.state = state;
    this.code = code;
    this.reason = reason;
    if (changed) {
      debug('kubernetes: %s%s', state, reason ? ` (${code}: ${reason})` : '');
      if (this.listenerCount('status') > 0) this.emit('status', this.status());
    }
  }
}

/**
 * Starts asking the kubelet's PodResources API which containers hold which GPUs (first call now,
 * then every refreshMs). Throws INVALID_OPTION for bad options; a missing or failing kubelet is not
 * an error here but a status (`status()`, and `gpu_telemetry_backend_up{backend="kubernetes"} 0`).
 */
export function createKubernetesPods(options?: KubernetesOptions, deps?: KubernetesPodsDeps): KubernetesPods {
  return new KubernetesPods(resolveKubernetesOptions(options), deps);
}
