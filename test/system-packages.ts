/** Where the system packages the tests use live, and a printed reason when one is absent. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

function ldconfigHas(soname: string): string | null {
  try {
    const out = execFileSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' });
    const line = out.split('\n').find((l) => l.trim().startsWith(`${soname} `));
    return line ? line.split('=>')[1].trim() : null;
  } catch {
    return null;
  }
}

/** Debian's libnvidia-ml1: the real NVML runtime (no driver on these machines). */
export const REAL_NVML = ldconfigHas('libnvidia-ml.so.1');
/** Debian's libnvidia-ml-dev: NVIDIA's nvml.h. */
export const NVML_HEADER = fs.existsSync('/usr/include/nvml.h') ? '/usr/include/nvml.h' : null;

export function skipReason(what: string, pkg: string): string {
  const reason = `${what} is not installed (Debian package ${pkg}, contrib/non-free); .ci/run installs it`;
  // Printed so a skipped run says why (vitest's summary only counts skips).
  process.stderr.write(`SKIP: ${reason}\n`);
  return reason;
}

function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const full = `${dir}/${cmd}`;
    try {
      fs.accessSync(full, fs.constants.X_OK);
      return full;
    } catch {
      // keep looking
    }
  }
  return null;
}

/** Debian's prometheus package: the server and promtool. */
export const PROMETHEUS = which('prometheus');
export const PROMTOOL = which('promtool');
/** Debian's tmux: a real terminal for `gpu-telemetry watch` (alternate screen, size, resize). */
export const TMUX = which('tmux');
