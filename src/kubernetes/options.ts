/** Options of createKubernetesPods: types, defaults, validation (INVALID_OPTION naming the option). */
import { invalidOption } from '../errors.js';
import { DEFAULT_POD_RESOURCES_SOCKET } from './podresources.js';

export interface KubernetesOptions {
  /** The kubelet's PodResources socket (default /var/lib/kubelet/pod-resources/kubelet.sock). */
  podResourcesSocket?: string;
  /** How often the kubelet is asked (ms, 1,000 to 3,600,000; default 5,000). Scrapes read the cached answer. */
  refreshMs?: number;
  /** The deadline of one List call (ms, 100 to 60,000; default 2,000). */
  timeoutMs?: number;
  /** The largest reply accepted (bytes, 64 KiB to 256 MiB; default 16 MiB). */
  maxReplyBytes?: number;
  /**
   * How long the last good answer keeps labelling series while the kubelet does not answer (ms, 0 to
   * 3,600,000; default 3 × refreshMs), so one missed refresh does not relabel every series.
   * `gpu_telemetry_backend_up{backend="kubernetes"}` turns 0 at the first failure regardless.
   */
  maxStaleMs?: number;
  /** Extended resources that carry NVIDIA GPUs besides nvidia.com/gpu, nvidia.com/gpu.shared, nvidia.com/mig-*. */
  resourceNames?: string[];
  /** Where /proc is (default /proc): device minor numbers are read under <procRoot>/driver/nvidia/gpus. */
  procRoot?: string;
}

export interface ResolvedKubernetesOptions {
  readonly podResourcesSocket: string;
  readonly refreshMs: number;
  readonly timeoutMs: number;
  readonly maxReplyBytes: number;
  readonly maxStaleMs: number;
  readonly resourceNames: readonly string[];
  readonly procRoot: string;
}

const KNOWN = ['podResourcesSocket', 'refreshMs', 'timeoutMs', 'maxReplyBytes', 'maxStaleMs', 'resourceNames', 'procRoot'];

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return typeof v;
}

function wholeNumber(option: string, v: unknown, min: number, max: number, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalidOption(option, `must be a whole number from ${min} to ${max}, not ${describe(v)}`);
  }
  return v;
}

function absolutePath(option: string, v: unknown, fallback: string): string {
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !v.startsWith('/') || v.includes('\0') || v.length > 4096) {
    throw invalidOption(option, `must be an absolute path, not ${describe(v)}`);
  }
  return v;
}

/** Validates options; `prefix` is the options path shown in messages (e.g. "kubernetes"). */
export function resolveKubernetesOptions(options: unknown, prefix = ''): ResolvedKubernetesOptions {
  const at = (k: string) => (prefix ? `${prefix}.${k}` : k);
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object' || Array.isArray(options) || Object.getPrototypeOf(options) !== Object.prototype) {
    throw invalidOption(prefix, `must be an object like { podResourcesSocket: '${DEFAULT_POD_RESOURCES_SOCKET}' }, not ${describe(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KNOWN.includes(key)) throw invalidOption(at(key), `unknown option (allowed: ${KNOWN.join(', ')})`);
  }
  const refreshMs = wholeNumber(at('refreshMs'), o.refreshMs, 1000, 3_600_000, 5000);
  const resourceNames: string[] = [];
  if (o.resourceNames !== undefined) {
    if (!Array.isArray(o.resourceNames) || o.resourceNames.length > 64) {
      throw invalidOption(at('resourceNames'), `must be an array of up to 64 resource names like "example.com/gpu", not ${describe(o.resourceNames)}`);
    }
    for (const [i, name] of o.resourceNames.entries()) {
      if (typeof name !== 'string' || !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(name) || name.length > 253) {
        throw invalidOption(`${at('resourceNames')}[${i}]`, `must be an extended resource name like "example.com/gpu", not ${describe(name)}`);
      }
      resourceNames.push(name);
    }
  }
  return Object.freeze({
    podResourcesSocket: absolutePath(at('podResourcesSocket'), o.podResourcesSocket, DEFAULT_POD_RESOURCES_SOCKET),
    refreshMs,
    timeoutMs: wholeNumber(at('timeoutMs'), o.timeoutMs, 100, 60_000, 2000),
    maxReplyBytes: wholeNumber(at('maxReplyBytes'), o.maxReplyBytes, 64 * 1024, 256 * 1024 * 1024, 16 * 1024 * 1024),
    maxStaleMs: wholeNumber(at('maxStaleMs'), o.maxStaleMs, 0, 3_600_000, 3 * refreshMs),
    resourceNames: Object.freeze(resourceNames),
    procRoot: absolutePath(at('procRoot'), o.procRoot, '/proc'),
  });
}
