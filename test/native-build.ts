/** Compiles a plain C++ check program (and the project sources it needs) with g++ and runs it. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../src/paths.js';

export function compileAndRun(source: string, includeDirs: string[], extraSources: string[] = [], args: string[] = []): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-check-'));
  const exe = path.join(dir, 'check');
  try {
    execFileSync(
      'g++',
      [
        '-std=c++17',
        '-Wall',
        '-Werror',
        ...includeDirs.map((d) => `-I${d}`),
        ...[source, ...extraSources].map((s) => path.join(PACKAGE_ROOT, s)),
        '-o',
        exe,
        '-ldl',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
  } catch (e) {
    const err = e as { stderr?: string };
    throw new Error(`check ${source} did not compile:\n${err.stderr ?? String(e)}`);
  }
  try {
    return execFileSync(exe, args, { encoding: 'utf8' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
