/**
 * The socket-level check DCGM's 'auto' mode makes before asking DCGM to connect to a local
 * nv-hostengine (native/sources/hostengine_probe.cc), against real sockets: DCGM's own client
 * would spend its whole connect timeout retrying where nothing listens.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { compileAndRun } from './native-build.js';

describe('looking for a local nv-hostengine', () => {
  it('a listening TCP port or unix socket is found; a refused port, a stale socket file and no file are not', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-probe-'));
    try {
      const out = compileAndRun('test/native/hostengine_probe_check.cc', [path.join(PACKAGE_ROOT, 'native')], ['native/sources/hostengine_probe.cc'], [dir]);
      expect(out).toMatch(/hostengine probe: 9 checks passed/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
