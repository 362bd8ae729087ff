/**
 * Device minor numbers (the N of /dev/nvidiaN), which GKE's device plugin uses as device ids. The
 * NVIDIA kernel driver lists every GPU under /proc/driver/nvidia/gpus/<PCI address>/information
 * ("Device Minor: N", "GPU UUID: GPU-…", "Bus Location: 0000:18:00.0"); the NVIDIA container
 * toolkit mounts those entries into containers for the GPUs they can see. The minor number is
 * assigned in the driver's probe order and is not always the NVML index.
 */
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';

export interface GpuMinor {
  readonly minor: number;
  /** "GPU-…" when the file says, else null. */
  readonly uuid: string | null;
  /** Normalised PCI address, e.g. "0000:18:00.0". */
  readonly busId: string;
}

const MAX_INFO_BYTES = 16 * 1024;
const MAX_GPUS = 256;

/** "00000000:18:00.0" (NVML) or "0000:18:00.0" (sysfs) → "0000:18:00.0"; null when not an address. */
export function normalisePciBusId(busId: string): string | null {
  const m = /^([0-9a-fA-F]{1,8}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/.exec(busId.trim());
  if (!m) return null;
  const domain = parseInt(m[1], 16).toString(16).padStart(4, '0');
  return `${domain}:${m[2]}:${m[3]}.${m[4]}`.toLowerCase();
}

/** Parses one `information` file; null when it has no readable "Device Minor". */
export function parseGpuInformation(text: string, dirName: string): GpuMinor | null {
  let minor: number | null = null;
  let uuid: string | null = null;
  let busId = normalisePciBusId(dirName);
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (key === 'Device Minor' && /^\d{1,4}$/.test(value)) minor = Number(value);
    else if (key === 'GPU UUID' && /^GPU-[0-9a-fA-F-]{36}$/.test(value)) uuid = value;
    else if (key === 'Bus Location') busId = normalisePciBusId(value) ?? busId;
  }
  if (minor === null || busId === null) return null;
  return { minor, uuid, busId };
}

/** Reads every GPU's minor number under `<procRoot>/driver/nvidia/gpus`; [] when it is not there. */
export async function readGpuMinors(procRoot = '/proc'): Promise<GpuMinor[]> {
  const dir = path.join(procRoot, 'driver', 'nvidia', 'gpus');
  let names: string[];
  try {
    names = (await readdir(dir)).slice(0, MAX_GPUS);
  } catch {
    return [];
  }
  const out: GpuMinor[] = [];
  for (const name of names) {
    try {
      const fh = await open(path.join(dir, name, 'information'), 'r');
      try {
        const buf = Buffer.alloc(MAX_INFO_BYTES);
        const { bytesRead } = await fh.read(buf, 0, MAX_INFO_BYTES, 0);
        const parsed = parseGpuInformation(buf.subarray(0, bytesRead).toString('utf8'), name);
        if (parsed) out.push(parsed);
      } finally {
        await fh.close();
      }
    } catch {
      // an unreadable entry: that GPU is matched by index instead
    }
  }
  return out;
}
