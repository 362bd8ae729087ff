/**
 * What a device plugin's device id names. The kubelet reports, per container, the ids the device
 * plugin handed out; their shape depends on the plugin and its settings:
 *  - NVIDIA's k8s-device-plugin: the GPU UUID ("GPU-…", the default) or the NVML index ("0";
 *    DEVICE_ID_STRATEGY=index); MIG devices as the MIG UUID ("MIG-…") or "<gpu index>:<mig index>";
 *    time-slicing and MPS replicas get "::<replica>" appended ("GPU-…::3").
 *  - GKE's device plugin: the /dev node name "nvidiaN" (N is the device minor number, which is not
 *    always the NVML index), MIG as "nvidiaN/giK", shared GPUs with "/vgpuM" appended.
 *  - Drivers before R470 named MIG devices "MIG-GPU-<parent uuid>/<gi>/<ci>".
 */

export type DeviceIdentifier =
  /** A whole GPU by its UUID. */
  | { readonly kind: 'gpu-uuid'; readonly uuid: string; readonly replica: number | null }
  /** A whole GPU by its /dev/nvidiaN minor number (GKE). */
  | { readonly kind: 'gpu-minor'; readonly minor: number; readonly replica: number | null }
  /** A whole GPU by its NVML index (k8s-device-plugin with DEVICE_ID_STRATEGY=index). */
  | { readonly kind: 'gpu-index'; readonly index: number; readonly replica: number | null }
  /** A MIG device by its UUID (R470+ drivers: "MIG-<uuid>"; the parent is not in the id). */
  | { readonly kind: 'mig-uuid'; readonly uuid: string; readonly replica: number | null }
  /** A MIG device whose id names its parent GPU and GPU instance (old UUIDs, GKE, index strategy). */
  | {
      readonly kind: 'mig-instance';
      /** The id with any replica suffix removed: the key the MIG device is kept under. */
      readonly id: string;
      readonly parent:
        | { readonly by: 'uuid'; readonly uuid: string }
        | { readonly by: 'minor'; readonly minor: number }
        | { readonly by: 'index'; readonly index: number };
      /** The GPU instance id (GKE, old UUIDs); null for the index strategy's MIG ordinal. */
      readonly gpuInstanceId: number | null;
      readonly computeInstanceId: number | null;
      /** k8s-device-plugin's index strategy: the MIG device's ordinal on its parent. */
      readonly migIndex: number | null;
      readonly replica: number | null;
    }
  | { readonly kind: 'unknown'; readonly id: string; readonly reason: string };

/** GPU UUIDs are "GPU-" then a UUID; older drivers and the simulator keep the same shape. */
const GPU_UUID = /^GPU-[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$/;
const MIG_UUID = /^MIG-[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$/;
const LEGACY_MIG = /^MIG-(GPU-[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})\/(\d{1,3})\/(\d{1,3})$/;
const SMALL_INT = /^\d{1,4}$/;

/** The longest device id looked at (a real one is < 64 characters). */
export const MAX_DEVICE_ID_LENGTH = 256;

function splitReplica(id: string): { base: string; replica: number | null } | null {
  const at = id.indexOf('::');
  if (at >= 0) {
    const tail = id.slice(at + 2);
    if (!SMALL_INT.test(tail)) return null;
    return { base: id.slice(0, at), replica: Number(tail) };
  }
  const vgpu = /^(.*)\/vgpu(\d{1,4})$/.exec(id);
  if (vgpu) return { base: vgpu[1], replica: Number(vgpu[2]) };
  return { base: id, replica: null };
}

/** Parses one device id from the kubelet. Never throws; an id it cannot place is `unknown`. */
export function parseDeviceId(id: string): DeviceIdentifier {
  if (typeof id !== 'string' || id === '') return { kind: 'unknown', id: String(id), reason: 'empty device id' };
  if (id.length > MAX_DEVICE_ID_LENGTH) return { kind: 'unknown', id: `${id.slice(0, 64)}…`, reason: 'device id too long' };
  const split = splitReplica(id);
  if (split === null) return { kind: 'unknown', id, reason: 'a "::" suffix that is not a replica number' };
  const { base, replica } = split;
  if (GPU_UUID.test(base)) return { kind: 'gpu-uuid', uuid: base, replica };
  if (MIG_UUID.test(base)) return { kind: 'mig-uuid', uuid: base, replica };
  const legacy = LEGACY_MIG.exec(base);
  if (legacy) {
    return {
      kind: 'mig-instance',
      id: base,
      parent: { by: 'uuid', uuid: legacy[1] },
      gpuInstanceId: Number(legacy[2]),
      computeInstanceId: Number(legacy[3]),
      migIndex: null,
      replica,
    };
  }
  const gke = /^nvidia(\d{1,4})(?:\/gi(\d{1,3}))?$/.exec(base);
  if (gke) {
    const minor = Number(gke[1]);
    if (gke[2] === undefined) return { kind: 'gpu-minor', minor, replica };
    return {
      kind: 'mig-instance',
      id: base,
      parent: { by: 'minor', minor },
      gpuInstanceId: Number(gke[2]),
      computeInstanceId: null,
      migIndex: null,
      replica,
    };
  }
  if (SMALL_INT.test(base)) return { kind: 'gpu-index', index: Number(base), replica };
  const indexMig = /^(\d{1,4}):(\d{1,3})$/.exec(base);
  if (indexMig) {
    return {
      kind: 'mig-instance',
      id: base,
      parent: { by: 'index', index: Number(indexMig[1]) },
      gpuInstanceId: null,
      computeInstanceId: null,
      migIndex: Number(indexMig[2]),
      replica,
    };
  }
  return { kind: 'unknown', id, reason: 'not a GPU UUID, MIG UUID, nvidiaN name or index' };
}

/**
 * The extended resources that carry NVIDIA GPUs: `nvidia.com/gpu`, the renamed shared resource
 * (`nvidia.com/gpu.shared`, time-slicing or MPS with renameByDefault) and `nvidia.com/mig-<profile>`
 * (MIG "mixed" strategy). Other resource names can be added with the `resourceNames` option.
 */
export function isNvidiaGpuResource(resource: string, extra: readonly string[] = []): boolean {
  if (resource === 'nvidia.com/gpu' || resource === 'nvidia.com/gpu.shared') return true;
  if (resource.startsWith('nvidia.com/mig-')) return true;
  return extra.includes(resource);
}
