/**
 * The injection protocol on its own: the library's parser (native/inject/protocol.cc, built with
 * the sanitizers and hammered with hostile input by test/native/inject_protocol_check.cc), the Node
 * decoder, and that both sides and the capture options agree on every constant and bound.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CAPTURE_LIMITS, GpuTelemetryError, PROCESS_CAPTURE_LIMITS } from '../src/index.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import {
  COLUMNS,
  FRAME,
  FrameDecoder,
  HEADER_BYTES,
  MAGIC,
  MAX_REPLY_BYTES,
  MAX_REQUEST_BYTES,
  PROTOCOL_VERSION,
  decodeColumns,
  decodeStrings,
  encodeFrame,
  encodeJson,
} from '../src/inject/protocol.js';

const HEADER = fs.readFileSync(path.join(PACKAGE_ROOT, 'native', 'inject', 'protocol.h'), 'utf8');

function constant(name: string): number {
  const m = new RegExp(`\\b${name}\\s*=\\s*([^,;}]+)[,;}]`).exec(HEADER);
  if (!m) throw new Error(`${name} not found in protocol.h`);
  // C++ integer literals and shifts as JS numbers (4ull << 30 is past 32 bits).
  const expr = m[1]
    .replace(/'/g, '')
    .replace(/(\d+)(ull|u)\b/g, '$1')
    .replace(/(\d+)\s*<<\s*(\d+)/g, '($1 * 2 ** $2)');
  return Function(`return (${expr});`)() as number;
}

describe('protocol constants: native/inject/protocol.h, src/inject/protocol.ts and the capture options agree', () => {
  it('framing', () => {
    expect(/kMagic\[4\] = \{'G', 'T', 'I', 'J'\}/.test(HEADER)).toBe(true);
    expect(MAGIC.toString('latin1')).toBe('GTIJ');
    expect(constant('kVersion')).toBe(PROTOCOL_VERSION);
    expect(constant('kHeaderBytes')).toBe(HEADER_BYTES);
    expect(constant('kMaxRequestBytes')).toBe(MAX_REQUEST_BYTES);
    expect(constant('kMaxReplyBytes')).toBe(MAX_REPLY_BYTES);
    expect([constant('kFrameJson'), constant('kFrameColumns'), constant('kFrameStrings')]).toEqual([FRAME.json, FRAME.columns, FRAME.strings]);
    const columns = ['kColKernels', 'kColMemcpys', 'kColMemsets', 'kColApiCalls', 'kColRanges', 'kColSteps'].map(constant);
    expect(columns).toEqual(COLUMNS.map((_, i) => i));
  });

  it('the arm bounds are the capture options bounds', () => {
    const L = CAPTURE_LIMITS;
    expect([constant('kStepsMin'), constant('kStepsMax'), constant('kStepsDefault')]).toEqual([L.steps.min, L.steps.max, L.steps.default]);
    expect(constant('kStartAfterStepsMax')).toBe(L.startAfterSteps.max);
    expect([constant('kMaxBytesMin'), constant('kMaxBytesMax'), constant('kMaxBytesDefault')]).toEqual([L.maxBytes.min, L.maxBytes.max, L.maxBytes.default]);
    expect([constant('kMaxRecordsMin'), constant('kMaxRecordsMax'), constant('kMaxRecordsDefault')]).toEqual([
      L.maxRecords.min,
      L.maxRecords.max,
      L.maxRecords.default,
    ]);
    expect([constant('kBufferBytesMin'), constant('kBufferBytesMax'), constant('kBufferBytesDefault')]).toEqual([
      L.bufferBytes.min,
      L.bufferBytes.max,
      L.bufferBytes.default,
    ]);
    expect([constant('kTimeoutMsMin'), constant('kTimeoutMsMax'), constant('kTimeoutMsDefault')]).toEqual([L.timeoutMs.min, L.timeoutMs.max, L.timeoutMs.default]);
    expect([constant('kFlushIntervalMsMin'), constant('kFlushIntervalMsMax'), constant('kFlushIntervalMsDefault')]).toEqual([
      L.flushIntervalMs.min,
      L.flushIntervalMs.max,
      L.flushIntervalMs.default,
    ]);
    expect([constant('kDrainTimeoutMsMax'), constant('kDrainTimeoutMsDefault')]).toEqual([L.drainTimeoutMs.max, L.drainTimeoutMs.default]);
    expect([constant('kDurationMsMin'), constant('kDurationMsMax')]).toEqual([PROCESS_CAPTURE_LIMITS.durationMs.min, PROCESS_CAPTURE_LIMITS.durationMs.max]);
    expect(constant('kStepRangeLength')).toBe(L.stepRangeLength);
  });
});

describe('the library side (protocol.cc), built with ASan + UBSan', () => {
  it('frames, JSON, arm bounds, and 100,000 hostile inputs: each parsed or refused with a message', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-protocol-'));
    try {
      const exe = path.join(dir, 'check');
      const san = ['-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer'];
      execFileSync(
        'g++',
        ['-std=c++17', '-O1', '-g', '-Wall', '-Wextra', '-Werror', ...san, path.join(PACKAGE_ROOT, 'test/native/inject_protocol_check.cc'), path.join(PACKAGE_ROOT, 'native/inject/protocol.cc'), '-o', exe],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      // Not under the test run's LD_PRELOAD (test:asan preloads the runtimes into Node's children).
      const env = { ...process.env, ASAN_OPTIONS: 'detect_leaks=1', LD_PRELOAD: '' };
      expect(execFileSync(exe, { encoding: 'utf8', env })).toBe('ok 100000\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the client side (src/inject/protocol.ts)', () => {
  it('decodes frames split anywhere, and refuses what is not a frame', () => {
    const frames = Buffer.concat([encodeJson({ op: 'hello', v: 1 }), encodeFrame(FRAME.strings, Buffer.alloc(8)), encodeJson({ op: 'end' })]);
    for (let cut = 0; cut <= frames.length; cut++) {
      const d = new FrameDecoder();
      const got = [...d.push(frames.subarray(0, cut)), ...d.push(frames.subarray(cut))];
      expect(got.map((f) => f.type)).toEqual([FRAME.json, FRAME.strings, FRAME.json]);
    }
    expect(() => new FrameDecoder().push(Buffer.from('HTTP/1.1 400'))).toThrow(GpuTelemetryError);
    expect(() => new FrameDecoder().push(Buffer.from('G'))).not.toThrow(); // maybe the start of a frame
    expect(() => new FrameDecoder().push(Buffer.from('X'))).toThrow(/not a gpu-telemetry frame/);
    const big = encodeFrame(FRAME.columns, Buffer.alloc(0));
    big.writeUInt32LE(MAX_REPLY_BYTES + 1, 8);
    expect(() => new FrameDecoder().push(big)).toThrow(/over the protocol/);
    const v2 = encodeJson({});
    v2[4] = 2;
    expect(() => new FrameDecoder().push(v2)).toThrow(/protocol version 2/);
    expect(() => encodeJson({ pad: 'x'.repeat(MAX_REQUEST_BYTES) })).toThrow(/over the protocol/);
  });

  it('columns and strings', () => {
    const rows = new Float64Array([1.5, -2, 3e300, 0]);
    const payload = Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from(rows.buffer)]);
    const c = decodeColumns(payload);
    expect(c.column).toBe('ranges');
    expect([...c.data]).toEqual([...rows]);
    expect(() => decodeColumns(Buffer.alloc(13))).toThrow(/not whole rows/);
    expect(() => decodeColumns(Buffer.from([9, 0, 0, 0, 0, 0, 0, 0]))).toThrow(/unknown column/);
    const strings = ['', 'flash_attn', 'é😀'];
    const parts: Buffer[] = [Buffer.alloc(8)];
    parts[0].writeUInt32LE(7, 0);
    parts[0].writeUInt32LE(strings.length, 4);
    for (const s of strings) {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      parts.push(len, b);
    }
    expect(decodeStrings(Buffer.concat(parts))).toEqual({ first: 7, strings });
    expect(() => decodeStrings(Buffer.concat(parts).subarray(0, 20))).toThrow(/ends inside a string/);
  });

  it('any byte stream: frames or PROTOCOL_ERROR, never anything else', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
        const d = new FrameDecoder();
        try {
          for (const c of chunks) d.push(Buffer.from(c));
        } catch (e) {
          expect(e).toBeInstanceOf(GpuTelemetryError);
          expect((e as GpuTelemetryError).code).toBe('PROTOCOL_ERROR');
        }
      }),
      { numRuns: 500, seed: 15 },
    );
  });
});
