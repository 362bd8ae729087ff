/**
 * A byte writer for the trace JSON: numbers are written as ASCII digits straight into Buffers
 * (no number→string→UTF-8 round trips), and the output comes out in ~1 MiB Buffer chunks.
 */

export const CHUNK_BYTES = 1 << 20;

const latin1 = (s: string): Uint8Array => Buffer.from(s, 'latin1');

export class ByteWriter {
  private buf: Buffer;
  private pos = 0;
  /** Finished chunks, for the caller to drain. */
  readonly done: Buffer[] = [];
  private readonly digits = new Uint8Array(24);

  constructor(private readonly chunkBytes = CHUNK_BYTES) {
    this.buf = Buffer.allocUnsafe(Math.max(chunkBytes, 4096));
  }

  /** Makes room for `n` more bytes (moving the current chunk to `done` when full). */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.cut();
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
  }

  /** Ends the current chunk if it has reached the chunk size. */
  maybeCut(): void {
    if (this.pos >= this.chunkBytes) this.cut();
  }

  /** Moves whatever is written to `done`. */
  cut(): void {
    if (this.pos === 0) return;
    this.done.push(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(Math.max(this.chunkBytes, 4096));
    this.pos = 0;
  }

  /** Raw bytes (pre-encoded constants and names). Callers ensure() first. */
  bytes(b: Uint8Array): void {
    const n = b.length;
    if (n < 32) {
      const buf = this.buf;
      let p = this.pos;
      for (let i = 0; i < n; i++) buf[p++] = b[i];
      this.pos = p;
    } else {
      this.buf.set(b, this.pos);
      this.pos += n;
    }
  }

  /** A non-negative safe integer or any other number (the latter through String()). */
  num(v: number): void {
    if (v >= 0 && v <= 9007199254740991 && Math.floor(v) === v) {
      this.uint(v);
    } else if (v < 0 && v >= -9007199254740991 && Math.floor(v) === v) {
      this.buf[this.pos++] = 45; // '-'
      this.uint(-v);
    } else {
      this.ascii(Number.isFinite(v) ? String(v) : '0');
    }
  }

  private uint(v: number): void {
    const buf = this.buf;
    if (v < 10) {
      buf[this.pos++] = 48 + v;
      return;
    }
    const d = this.digits;
    let n = 0;
    while (v >= 1) {
      const q = Math.floor(v / 10);
      d[n++] = 48 + (v - q * 10);
      v = q;
    }
    let p = this.pos;
    while (n > 0) buf[p++] = d[--n];
    this.pos = p;
  }

  /** ns as µs with up to 3 decimals ("1234.5" for 1234500 ns); exact for integral ns. */
  micros(ns: number): void {
    if (Math.floor(ns) !== ns || Math.abs(ns) > 9007199254740991) {
      this.ascii(String(ns / 1000));
      return;
    }
    if (ns < 0) {
      this.buf[this.pos++] = 45;
      ns = -ns;
    }
    const whole = Math.floor(ns / 1000);
    let frac = ns - whole * 1000;
    this.uint(whole);
    if (frac !== 0) {
      const buf = this.buf;
      buf[this.pos++] = 46; // '.'
      const d0 = Math.floor(frac / 100);
      frac -= d0 * 100;
      const d1 = Math.floor(frac / 10);
      const d2 = frac - d1 * 10;
      buf[this.pos++] = 48 + d0;
      if (d1 !== 0 || d2 !== 0) {
        buf[this.pos++] = 48 + d1;
        if (d2 !== 0) buf[this.pos++] = 48 + d2;
      }
    }
  }

  /** An ASCII string (digits, plain words); anything else goes through UTF-8. */
  ascii(s: string): void {
    this.ensure(s.length * 3);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }
}

/** Pre-encoded constant JSON fragments. */
export function frag(s: string): Uint8Array {
  return latin1(s);
}

/** A string as a JSON string literal, UTF-8 encoded. */
export function jsonString(s: string): Uint8Array {
  return Buffer.from(JSON.stringify(s), 'utf8');
}
