/**
 * The client half of the injection library's control protocol (version 1). The server half, with
 * the full description of the frames and messages, is native/inject/protocol.h; the constants here
 * are compared with it by test/inject-protocol.test.ts.
 */
import { GpuTelemetryError } from '../errors.js';

export const MAGIC = Buffer.from('GTIJ', 'latin1');
export const PROTOCOL_VERSION = 1;
export const HEADER_BYTES = 12;
/** Largest request payload the server accepts. */
export const MAX_REQUEST_BYTES = 16 * 1024;
/** Largest payload the server sends in one frame. */
export const MAX_REPLY_BYTES = 1024 * 1024;

export const FRAME = { json: 1, columns: 2, strings: 3 } as const;
/** Column ids of a column frame, in the server's order (its Column enum). */
export const COLUMNS = ['kernels', 'memcpys', 'memsets', 'apiCalls', 'ranges', 'steps'] as const;
export type ColumnName = (typeof COLUMNS)[number];

export interface Frame {
  type: number;
  payload: Buffer;
}

export function protocolError(message: string): GpuTelemetryError {
  return new GpuTelemetryError('PROTOCOL_ERROR', message);
}

export function encodeFrame(type: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header[4] = PROTOCOL_VERSION;
  header[5] = type;
  header.writeUInt32LE(payload.length, 8);
  return Buffer.concat([header, payload]);
}

export function encodeJson(message: Record<string, unknown>): Buffer {
  const payload = Buffer.from(JSON.stringify(message), 'utf8');
  if (payload.length > MAX_REQUEST_BYTES) throw protocolError(`a request of ${payload.length} bytes is over the protocol's ${MAX_REQUEST_BYTES}`);
  return encodeFrame(FRAME.json, payload);
}

/** Splits a byte stream into frames; throws PROTOCOL_ERROR on anything that is not one. */
export class FrameDecoder {
  private buffered: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxPayload: number = MAX_REPLY_BYTES) {}

  push(chunk: Buffer): Frame[] {
    this.buffered.push(chunk);
    this.size += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.size < HEADER_BYTES) {
        this.checkMagic();
        return frames;
      }
      const all = this.buffered.length === 1 ? this.buffered[0] : Buffer.concat(this.buffered, this.size);
      this.buffered = [all];
      this.checkMagic();
      const version = all[4];
      if (version !== PROTOCOL_VERSION) throw protocolError(`the injection library answered in protocol version ${version}; this package speaks ${PROTOCOL_VERSION}`);
      const type = all[5];
      if (type !== FRAME.json && type !== FRAME.columns && type !== FRAME.strings) throw protocolError(`unknown frame type ${type}`);
      const length = all.readUInt32LE(8);
      if (length > this.maxPayload) throw protocolError(`a frame of ${length} bytes is over the protocol's ${this.maxPayload}`);
      if (this.size < HEADER_BYTES + length) return frames;
      frames.push({ type, payload: all.subarray(HEADER_BYTES, HEADER_BYTES + length) });
      const rest = all.subarray(HEADER_BYTES + length);
      this.buffered = rest.length > 0 ? [rest] : [];
      this.size = rest.length;
    }
  }

  private checkMagic(): void {
    const first = this.buffered[0];
    if (first === undefined) return;
    const head = first.length >= 4 || this.buffered.length === 1 ? first : Buffer.concat(this.buffered, this.size);
    for (let i = 0; i < 4 && i < head.length; i++) {
      if (head[i] !== MAGIC[i]) throw protocolError('the control socket answered with something that is not a gpu-telemetry frame');
    }
  }
}

/** A JSON frame's object; PROTOCOL_ERROR when it is not one. */
export function decodeJson(payload: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch (e) {
    throw protocolError(`the injection library sent malformed JSON: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw protocolError('the injection library sent a JSON value that is not an object');
  return value as Record<string, unknown>;
}

/** A column frame: which column, and its rows as doubles (copied: the payload is not 8-aligned). */
export function decodeColumns(payload: Buffer): { column: ColumnName; data: Float64Array } {
  if (payload.length < 8 || (payload.length - 8) % 8 !== 0) throw protocolError(`a column frame of ${payload.length} bytes is not whole rows`);
  const column = COLUMNS[payload[0]];
  if (column === undefined) throw protocolError(`unknown column ${payload[0]}`);
  const bytes = payload.length - 8;
  const data = new Float64Array(bytes / 8);
  Buffer.from(data.buffer).set(payload.subarray(8));
  return { column, data };
}

/** A strings frame: the index of its first string in the capture's table, and the strings. */
export function decodeStrings(payload: Buffer): { first: number; strings: string[] } {
  if (payload.length < 8) throw protocolError('a strings frame is shorter than its header');
  const first = payload.readUInt32LE(0);
  const count = payload.readUInt32LE(4);
  const strings: string[] = [];
  let at = 8;
  for (let i = 0; i < count; i++) {
    if (at + 4 > payload.length) throw protocolError('a strings frame ends inside a string');
    const length = payload.readUInt32LE(at);
    at += 4;
    if (at + length > payload.length) throw protocolError('a strings frame ends inside a string');
    strings.push(payload.toString('utf8', at, at + length));
    at += length;
  }
  if (at !== payload.length) throw protocolError('a strings frame has bytes after its last string');
  return { first, strings };
}
