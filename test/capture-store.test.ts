/** trace.save() and the capture store: 0600 files, no symlink following, retention by count and age. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CaptureStore } from '../src/index.js';
import { fixtureMeta, fixtureResult, fixtureTrace } from './capture-fixtures.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-capture-store-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => path.join(root, `store-${n++}`);
const traceWithId = (id: string) => fixtureTrace(fixtureResult(), fixtureMeta({ id }));
const mode = (p: string) => fs.statSync(p).mode & 0o777;

describe('trace.save()', () => {
  it('writes the trace and the summary 0600 into a new 0700 directory', async () => {
    const dir = freshDir();
    const old = process.umask(0o000); // even with a permissive umask
    let saved;
    try {
      saved = await traceWithId('cap-1').save(dir);
    } finally {
      process.umask(old);
    }
    expect(mode(dir)).toBe(0o700);
    expect(saved.tracePath).toBe(path.join(dir, 'gpu-capture-cap-1.trace.json'));
    expect(saved.summaryPath).toBe(path.join(dir, 'gpu-capture-cap-1.summary.json'));
    expect(mode(saved.tracePath)).toBe(0o600);
    expect(mode(saved.summaryPath)).toBe(0o600);
    const chrome = JSON.parse(fs.readFileSync(saved.tracePath, 'utf8')) as { traceEvents: unknown[] };
    expect(chrome.traceEvents.length).toBeGreaterThan(20);
    expect(fs.readFileSync(saved.tracePath, 'utf8')).toBe(traceWithId('cap-1').toChromeTrace());
    const summary = JSON.parse(fs.readFileSync(saved.summaryPath, 'utf8')) as { meta: { id: string }; summary: { records: { kernels: number } } };
    expect(summary.meta.id).toBe('cap-1');
    expect(summary.summary.records.kernels).toBe(8);
    expect(saved.removed).toEqual([]);
    // No temporary files left behind.
    expect(fs.readdirSync(dir).sort()).toEqual(['gpu-capture-cap-1.summary.json', 'gpu-capture-cap-1.trace.json']);
  });

  it('never writes through a symlink planted at the file name', async () => {
    const dir = freshDir();
    fs.mkdirSync(dir, { mode: 0o700 });
    const outside = path.join(root, `outside-${n++}.txt`);
    fs.writeFileSync(outside, 'precious');
    fs.symlinkSync(outside, path.join(dir, 'gpu-capture-cap-2.trace.json'));
    fs.symlinkSync(outside, path.join(dir, 'gpu-capture-cap-2.summary.json'));
    const saved = await traceWithId('cap-2').save(dir);
    expect(fs.readFileSync(outside, 'utf8')).toBe('precious');
    expect(fs.lstatSync(saved.tracePath).isFile()).toBe(true);
    expect(fs.lstatSync(saved.summaryPath).isFile()).toBe(true);
  });

  it('rejects a path that is a file, and ids that could leave the directory', async () => {
    const file = path.join(root, `file-${n++}`);
    fs.writeFileSync(file, '');
    await expect(traceWithId('cap-3').save(file)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(traceWithId('../evil').save(freshDir())).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(traceWithId('a').save(freshDir(), { keepFiles: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'keepFiles' });
    await expect(traceWithId('a').save(freshDir(), { keepDays: -1 })).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'keepDays' });
    await expect(traceWithId('a').save(freshDir(), { keep: 1 } as never)).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'keep' });
  });
});

describe('capture store retention', () => {
  it('keeps at most keepFiles captures, oldest removed first', async () => {
    const dir = freshDir();
    const t0 = Date.now() / 1000;
    for (let i = 0; i < 5; i++) {
      const saved = await traceWithId(`c${i}`).save(dir, { keepFiles: 3 });
      // Distinct, increasing modification times whatever the file system's resolution.
      fs.utimesSync(saved.tracePath, t0 - 100 + i, t0 - 100 + i);
      fs.utimesSync(saved.summaryPath, t0 - 100 + i, t0 - 100 + i);
    }
    const store = await CaptureStore.open(dir, { keepFiles: 3 });
    expect((await store.list()).map((c) => c.id)).toEqual(['c4', 'c3', 'c2']);
    expect(fs.readdirSync(dir)).toHaveLength(6);
  });

  it('deletes captures older than keepDays, never symlinks or foreign files', async () => {
    const dir = freshDir();
    const old = await traceWithId('old').save(dir);
    const monthAgo = Date.now() / 1000 - 30 * 86400;
    fs.utimesSync(old.tracePath, monthAgo, monthAgo);
    fs.utimesSync(old.summaryPath, monthAgo, monthAgo);
    const outside = path.join(root, `outside-${n++}.trace.json`);
    fs.writeFileSync(outside, 'not ours');
    fs.utimesSync(outside, monthAgo, monthAgo);
    fs.symlinkSync(outside, path.join(dir, 'gpu-capture-link.trace.json'));
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'keep me');
    fs.utimesSync(path.join(dir, 'notes.txt'), monthAgo, monthAgo);
    const saved = await traceWithId('new').save(dir, { keepDays: 14 });
    expect(saved.removed.sort()).toEqual([old.summaryPath, old.tracePath].sort());
    expect(fs.readdirSync(dir).sort()).toEqual([
      'gpu-capture-link.trace.json',
      'gpu-capture-new.summary.json',
      'gpu-capture-new.trace.json',
      'notes.txt',
    ]);
    expect(fs.readFileSync(outside, 'utf8')).toBe('not ours');
  });

  it('the capture just saved is kept even when older than keepDays allows (a clock skew)', async () => {
    const dir = freshDir();
    const store = await CaptureStore.open(dir, { keepFiles: 1, keepDays: 0.001 });
    const saved = await store.write('only', ['{}'], '{}');
    expect(saved.removed).toEqual([]);
    expect((await store.list()).map((c) => c.id)).toEqual(['only']);
  });
});
