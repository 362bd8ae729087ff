/** XID errors: what the driver reports when a GPU hits a critical error. */

export interface XidEvent {
  /** Device index. */
  readonly device: number;
  /** The XID code (999: the driver could not tell). */
  readonly xid: number;
  /** A short description of well-known codes (NVIDIA's XID catalogue), else null. */
  readonly description: string | null;
  /** When the event was received (ms since the epoch). */
  readonly at: number;
  /** MIG GPU / compute instance the event is attributed to, or null. */
  readonly gpuInstanceId: number | null;
  readonly computeInstanceId: number | null;
}

/** Short descriptions of the XIDs operators meet most (from NVIDIA's public XID catalogue). */
export const XID_DESCRIPTIONS: Readonly<Record<number, string>> = Object.freeze({
  13: 'graphics engine exception',
  31: 'GPU memory page fault',
  32: 'invalid or corrupted push buffer stream',
  43: 'GPU stopped processing',
  45: 'preemptive cleanup after previous errors',
  48: 'double-bit ECC error',
  61: 'internal micro-controller breakpoint/warning',
  62: 'internal micro-controller halt',
  63: 'ECC page retirement or row remapping recorded',
  64: 'ECC page retirement or row remapping failed',
  74: 'NVLink error',
  79: 'GPU has fallen off the bus',
  92: 'high single-bit ECC error rate',
  94: 'contained ECC error',
  95: 'uncontained ECC error',
  119: 'GSP RPC timeout',
  120: 'GSP error',
});

const NO_INSTANCE = 0xffffffff;

export function toXidEvent(raw: {
  device: number;
  xid: number;
  atEpochMs: number;
  gpuInstanceId: number;
  computeInstanceId: number;
}): XidEvent {
  return Object.freeze({
    device: raw.device,
    xid: raw.xid,
    description: XID_DESCRIPTIONS[raw.xid] ?? null,
    at: raw.atEpochMs,
    gpuInstanceId: raw.gpuInstanceId === NO_INSTANCE ? null : raw.gpuInstanceId,
    computeInstanceId: raw.computeInstanceId === NO_INSTANCE ? null : raw.computeInstanceId,
  });
}
