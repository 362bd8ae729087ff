/** Kubernetes: which pods hold which GPUs (the kubelet's PodResources API) and which container a process is in. */
export { createKubernetesPods, KubernetesPods } from './pods.js';
export type { KubernetesStatus, KubernetesPodsEvents, KubernetesPodsDeps } from './pods.js';
export type { KubernetesOptions, ResolvedKubernetesOptions } from './options.js';
export { resolveKubernetesOptions } from './options.js';
export { listPodResources, PodResourcesError, DEFAULT_POD_RESOURCES_SOCKET, podResourcesServiceDefinition } from './podresources.js';
export type { PodResourcesErrorCode, ListOptions } from './podresources.js';
export { mapPodDevices, MAX_UNMATCHED } from './mapping.js';
export type {
  ContainerRef,
  GpuAssignment,
  GpuIdentity,
  MigAssignment,
  PodDeviceMap,
  PodResourcesList,
  PodEntry,
  ContainerEntry,
  UnmatchedDevice,
  MappingOptions,
} from './mapping.js';
export { parseDeviceId, isNvidiaGpuResource } from './device-ids.js';
export type { DeviceIdentifier } from './device-ids.js';
export { readGpuMinors, parseGpuInformation, normalisePciBusId } from './gpu-minors.js';
export type { GpuMinor } from './gpu-minors.js';
export { parseProcCgroup } from './cgroup.js';
export type { CgroupIdentity, CgroupContainer, CgroupHost, CgroupUnknown, ContainerRuntime, QosClass } from './cgroup.js';
export { readProcessCgroup, attributeGpuProcesses, attributeGpuPids, readPodLogDirectory, parsePodLogDirName } from './processes.js';
export type { ProcessAttribution, ProcessReadOptions, AttributeOptions, PodName } from './processes.js';
