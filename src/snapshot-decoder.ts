/**
 * Turning the native sample block (typed arrays the addon copies into) into the typed snapshot a
 * user reads. New device objects are handed out only when the sampler published a new sample or
 * the sample turned stale (otherwise snapshot() reuses them: one native header read and one small
 * object per call), and each part of a device is decoded when it is first read (SnapshotDecoder).
 */
import { inspect } from 'node:util';
import {
  decodeClockEventReasons,
  FIELD_NAMES,
  FIELD_SOURCES,
  FIELD_STATUSES,
  type ClockEventReason,
  type FieldName,
  type FieldSource,
  type FieldStatus,
} from './fields.js';
import type { NativeConstants, NativeLayout } from './native.js';
import { FleetDecoder, MigViews, type MigInstanceSample, type MigNames, type ProcessSample, type ProcessUtilizationState } from './snapshot-fleet.js';
import { MIG_AFFECTED, MIG_REASON, NVLINK_TOTALS, reasonFor } from './snapshot-reasons.js';
import type { DeviceInfo, DeviceSample, DeviceState, FieldSources, FieldStatuses, FieldValues, NvlinkSample } from './snapshot.js';

const DEVICE_STATES: Record<number, DeviceState> = { 0: 'ok', 1: 'gpu_lost', 2: 'error' };

// Device meta slots (native DeviceMeta).
const M_STATE = 0;
const M_PROCESS_COUNT = 1;
const M_PROCESS_TRUNCATED = 2;
const M_LINK_COUNT = 3;
const M_MIG_MODE = 5;
const M_NVLINK_FAILED_LINK = 6;

if (!FIELD_NAMES.every((n) => /^[A-Za-z_$][\w$]*$/.test(n))) throw new Error('field names must be identifiers');
/** Builds `{ [FIELD_NAMES[i]]: a[i] }` as one object literal (generated once for the field list). */
const BUILD_RECORD = new Function('a', `return {${FIELD_NAMES.map((n, i) => `${n}: a[${i}]`).join(', ')}};`) as (
  a: readonly unknown[],
) => Record<string, unknown>;
const STATUS_OK = FIELD_STATUSES.indexOf('ok');
/**
 * Builds the values record of one device straight from a sample block: `{ smClockHz: <the value
 * if its status is ok and it is a number, else null>, … }`, one object literal, no array between.
 */
const BUILD_VALUES = new Function(
  'v',
  's',
  'b',
  `let x; return {${FIELD_NAMES.map((n, i) => `${n}: s[b + ${i}] === ${STATUS_OK} && (x = v[b + ${i}]) === x ? x : null`).join(', ')}};`,
) as (values: Float64Array, statuses: Uint8Array, base: number) => FieldValues;

const EMPTY: readonly never[] = Object.freeze([]);
const I_CLOCK_EVENT_REASONS = FIELD_NAMES.indexOf('clockEventReasons');

/**
 * One block the native side copies a sample into (its layout comes from the addon), with views.
 * A block belongs to one sample for as long as a device object of that sample has a part left to
 * decode from it; then it is reused for a later sample.
 */
class SampleBlock {
  /** While it holds a published sample: how many of that sample's device objects have parts left to decode. */
  undecoded = 0;
  /** Which sample it holds (the decoder's count), to evict the oldest. */
  order = 0;
  /** The device object sets bound to its sample (parts left are decoded when it is evicted). */
  bound: DeviceSet[] = [];
  readonly buffer: ArrayBuffer;
  readonly values: Float64Array;
  readonly links: Float64Array;
  readonly processes: Float64Array;
  readonly deviceMeta: Float64Array;
  readonly codes: Int32Array;
  readonly statuses: Uint8Array;
  readonly sources: Uint8Array;
  readonly mig: MigViews;

  constructor(layout: NativeLayout, c: NativeConstants) {
    const n = layout.devices;
    this.buffer = new ArrayBuffer(layout.byteLength);
    this.values = new Float64Array(this.buffer, layout.valuesOffset, n * c.fieldCount);
    this.links = new Float64Array(this.buffer, layout.linksOffset, n * c.maxLinks * c.linkStride);
    this.processes = new Float64Array(this.buffer, layout.processesOffset, n * c.maxProcesses * c.processStride);
    this.deviceMeta = new Float64Array(this.buffer, layout.deviceMetaOffset, n * c.deviceMetaStride);
    this.codes = new Int32Array(this.buffer, layout.codesOffset, n * c.fieldCount);
    this.statuses = new Uint8Array(this.buffer, layout.statusOffset, n * c.fieldCount);
    this.sources = new Uint8Array(this.buffer, layout.sourceOffset, n * c.fieldCount);
    this.mig = new MigViews(this.buffer, layout, c);
  }
}

/** The status, source and reasons of a device, which only change together. */
interface StatusPart {
  readonly status: FieldStatuses;
  readonly source: FieldSources;
  readonly reasons: { readonly [K in FieldName]?: string };
}

/** The MIG instances of a device, with why there are none and whether some were left out. */
interface MigPart {
  readonly instances: readonly MigInstanceSample[];
  readonly reason: string | null;
  readonly truncated: boolean;
}

/** The parts of a device object, each decoded on its first read (LAZY_PARTS counts them). */
const LAZY_PARTS = 8; // meta, fields, statusPart, clockEventReasons, nvlinks, processes, processUtilization, mig

/** What stands behind one device object: the sample it belongs to and the parts decoded so far. */
/** The sample a set of device objects is bound to (one store per sample, not one per device). */
class SetFrame {
  block: SampleBlock | null = null;
  stale = false;
}

/** The state, processesTruncated and migMode of a device (read from the sample's device meta). */
interface MetaPart {
  readonly state: DeviceState;
  readonly processesTruncated: boolean;
  readonly migMode: boolean | null;
}

/**
 * What stands behind one device object: the sample it belongs to (its set's frame) and the parts
 * decoded so far. The frame's block is read while `left` > 0.
 */
class LazyDevice {
  left = LAZY_PARTS;
  meta: MetaPart | null = null;
  fields: FieldValues | null = null;
  statusPart: StatusPart | null = null;
  clockEventReasons: readonly ClockEventReason[] | null | undefined = undefined;
  nvlinks: readonly NvlinkSample[] | null = null;
  processes: readonly ProcessSample[] | null = null;
  processUtilization: ProcessUtilizationState | null = null;
  mig: MigPart | null = null;
  constructor(
    readonly decoder: SnapshotDecoder,
    readonly frame: SetFrame,
    readonly d: number,
  ) {}
}

/** Gives an object a private field: the device object's LazyDevice, invisible to every reflection API. */
class ReturnsItsArgument {
  constructor(o: object) {
    return o;
  }
}
class Hidden extends ReturnsItsArgument {
  #lazy: LazyDevice;
  private constructor(o: object, lazy: LazyDevice) {
    super(o);
    this.#lazy = lazy;
  }
  static attach(o: object, lazy: LazyDevice): void {
    new Hidden(o, lazy);
  }
  static of(o: object): LazyDevice {
    return (o as Hidden).#lazy;
  }
}

/**
 * The device object's accessors: the same functions for every object, so V8 keeps one shape for
 * them all (fast property access); each reads the object's LazyDevice.
 */
const DEVICE_ACCESSORS: PropertyDescriptorMap = {
  state: { enumerable: true, get: function (this: object) { const l = Hidden.of(this); return (l.meta ?? l.decoder.metaOf(l)).state; } },
  fields: { enumerable: true, get: function (this: object) { const l = Hidden.of(this); return l.fields ?? l.decoder.fieldsOf(l); } },
  status: { enumerable: true, get: function (this: object) { const l = Hidden.of(this); return (l.statusPart ?? l.decoder.statusOf(l)).status; } },
  source: { enumerable: true, get: function (this: object) { const l = Hidden.of(this); return (l.statusPart ?? l.decoder.statusOf(l)).source; } },
  reasons: { enumerable: true, get: function (this: object) { const l = Hidden.of(this); return (l.statusPart ?? l.decoder.statusOf(l)).reasons; } },
  clockEventReasons: {
    enumerable: true,
    get: function (this: object) {
      const l = Hidden.of(this);
      return l.clockEventReasons !== undefined ? l.clockEventReasons : l.decoder.clockEventReasonsOf(l);
    },
  },
  nvlinks: { enumerable: true, get: function (this: object) { const l = Hidden.of(this); return l.nvlinks ?? l.decoder.nvlinksOf(l); } },
  processes: { enumerable: true, get: function (this: object) { const l = Hidden.of(this); return l.processes ?? l.decoder.processesOf(l); } },
  processesTruncated: {
    enumerable: true,
    get: function (this: object) { const l = Hidden.of(this); return (l.meta ?? l.decoder.metaOf(l)).processesTruncated; },
  },
  processUtilization: {
    enumerable: true,
    get: function (this: object) { const l = Hidden.of(this); return l.processUtilization ?? l.decoder.processUtilizationOf(l); },
  },
  migMode: { enumerable: true, get: function (this: object) { const l = Hidden.of(this); return (l.meta ?? l.decoder.metaOf(l)).migMode; } },
  migInstances: { enumerable: true, get: function (this: object) { const l = Hidden.of(this); return (l.mig ?? l.decoder.migOf(l)).instances; } },
  migInstancesReason: { enumerable: true, get: function (this: object) { const l = Hidden.of(this); return (l.mig ?? l.decoder.migOf(l)).reason; } },
  migInstancesTruncated: { enumerable: true, get: function (this: object) { const l = Hidden.of(this); return (l.mig ?? l.decoder.migOf(l)).truncated; } },
  // console.log / util.inspect show the values, as for a plain object (not "[Getter]").
  [inspect.custom]: { enumerable: false, value: function (this: DeviceSample) { return plainDevice(this); } },
};

/** The device object as a plain object (what util.inspect shows). */
function plainDevice(d: DeviceSample): DeviceSample {
  return {
    index: d.index,
    uuid: d.uuid,
    name: d.name,
    state: d.state,
    fields: d.fields,
    status: d.status,
    source: d.source,
    reasons: d.reasons,
    clockEventReasons: d.clockEventReasons,
    nvlinks: d.nvlinks,
    processes: d.processes,
    processesTruncated: d.processesTruncated,
    processUtilization: d.processUtilization,
    migMode: d.migMode,
    migInstances: d.migInstances,
    migInstancesReason: d.migInstancesReason,
    migInstancesTruncated: d.migInstancesTruncated,
  };
}

/** What the parts of one device were last built from, and those parts (reused while unchanged). */
class DeviceCache {
  readonly statuses: Uint8Array;
  readonly sources: Uint8Array;
  readonly codes: Int32Array;
  mig = NaN;
  failedLink = NaN;
  stale = false;
  statusPart: StatusPart | null = null;
  nvlinks: NvlinkSample[] | null = null;
  nvlinksShared = false;
  /** The process slots the list was built from (count, then the raw slots). */
  processSlots: Float64Array | null = null;
  processes: readonly ProcessSample[] | null = null;

  constructor(fieldCount: number) {
    this.statuses = new Uint8Array(fieldCount);
    this.sources = new Uint8Array(fieldCount);
    this.codes = new Int32Array(fieldCount);
  }
}

/** Device objects made ahead of time, waiting for a sample. */
interface DeviceSet {
  readonly objects: readonly DeviceSample[];
  readonly lazies: LazyDevice[];
  readonly frame: SetFrame;
}

/**
 * Turns native samples into the frozen device objects snapshot() returns, doing no more than the
 * reader asks for:
 * - A device object's parts (fields; status, source and reasons; clock-event reasons; NVLink links;
 *   processes) are decoded on their first read, from the block of the sample the object belongs
 *   to. They are own enumerable accessor properties of a frozen object, so Object.keys, JSON,
 *   spread, structuredClone and util.inspect see the same object as ever.
 * - Defining accessors is slow in V8 (microseconds per object); the objects for the next sample
 *   are made after snapshot() returns (in a promise reaction) and only bound to it when it
 *   arrives.
 * - The blocks are a pool of at most MAX_BLOCKS. A block is free again once every part of its
 *   sample was read; when none is free, the oldest sample's remaining parts are decoded (after the
 *   caller's code, like the above) so its block can take the next sample: memory stays bounded
 *   whatever the readers leave unread, and no ArrayBuffer is made per sample.
 * - What did not change since it was last built is the same frozen object again: status, source
 *   and reasons while no status, source or code changed; the link and process lists while no entry
 *   changed; the clock-event reason names per mask.
 *
 * To add a part: a field in LazyDevice, a method `xxxOf(l)` that decodes it from l.frame.block,
 * memoises it and calls partDone(l), an accessor in DEVICE_ACCESSORS, plainDevice, and LAZY_PARTS.
 */
export class SnapshotDecoder {
  private readonly fieldCount: number;
  private readonly n: number;
  /** Where the next sample is copied: never a block that a device object still decodes from. */
  private landing: SampleBlock | null;
  /** The block of the latest sample (null before the first). */
  private current: SampleBlock | null = null;
  /** Every block made (at most MAX_BLOCKS), and how many samples have arrived. */
  private readonly blocks: SampleBlock[] = [];
  private samples = 0;
  private spare: DeviceSet | null = null;
  private refillQueued = false;
  private readonly scratchStatuses: FieldStatus[] = [];
  private readonly scratchSources: FieldSource[] = [];
  private readonly caches: DeviceCache[] = [];
  private readonly clockReasons = new Map<number, readonly ClockEventReason[]>();
  // Reasons repeat sample after sample (same field, status, source and code): built once.
  private readonly reasonCache = new Map<string, string>();

  private readonly fleet: FleetDecoder;

  constructor(
    private readonly layout: NativeLayout,
    private readonly constants: NativeConstants,
    private readonly deviceInfo: readonly DeviceInfo[],
    private readonly fieldNotes: (string | null)[][] = [],
    migNames: (device: number) => MigNames = () => ({ generation: 0, uuids: [], profiles: [] }),
    processUtilSymbol = '',
  ) {
    this.fleet = new FleetDecoder(constants, migNames, processUtilSymbol);
    this.fieldCount = constants.fieldCount;
    this.n = deviceInfo.length;
    this.landing = new SampleBlock(layout, constants);
    this.blocks.push(this.landing);
    for (let d = 0; d < this.n; d++) this.caches.push(new DeviceCache(this.fieldCount));
    this.spare = this.newDeviceSet();
  }

  /**
   * The buffer to copy the next sample into; a zero-length one when none is ready (the native side
   * then fills only the header): then call ensureLanding() and read again.
   */
  get buffer(): ArrayBuffer {
    return this.landing ? this.landing.buffer : NO_BUFFER;
  }

  get hasLanding(): boolean {
    return this.landing !== null;
  }

  /** A block for the next sample: a free one, a new one while the pool is not full, else the oldest sample's (its remaining parts decoded first). */
  ensureLanding(): void {
    if (this.landing !== null) return;
    let oldest: SampleBlock | null = null;
    for (const b of this.blocks) {
      if (b === this.current) continue;
      if (b.undecoded === 0) {
        this.landing = b;
        return;
      }
      if (oldest === null || b.order < oldest.order) oldest = b;
    }
    if (this.blocks.length < MAX_BLOCKS || oldest === null) {
      this.landing = new SampleBlock(this.layout, this.constants);
      this.blocks.push(this.landing);
      return;
    }
    for (const set of oldest.bound) {
      if (set.frame.block !== oldest) continue;
      for (const l of set.lazies) if (l.left > 0) this.decodeRest(l);
    }
    oldest.bound.length = 0;
    this.landing = oldest; // (partDone may have made it the landing block already)
  }

  /** Decodes whatever parts of a device object are still undecoded (its block is wanted back). */
  private decodeRest(l: LazyDevice): void {
    if (l.meta === null) this.metaOf(l);
    if (l.fields === null) this.fieldsOf(l);
    if (l.statusPart === null) this.statusOf(l);
    if (l.clockEventReasons === undefined) this.clockEventReasonsOf(l);
    if (l.nvlinks === null) this.nvlinksOf(l);
    if (l.processes === null) this.processesOf(l);
    if (l.processUtilization === null) this.processUtilizationOf(l);
    if (l.mig === null) this.migOf(l);
  }

  /** The buffer returned by `buffer` holds a new sample: it becomes the current one. */
  newSample(): void {
    const prev = this.current;
    const block = this.landing!;
    block.undecoded = 0;
    block.bound.length = 0;
    block.order = ++this.samples;
    this.current = block;
    this.landing = prev !== null && prev.undecoded === 0 ? prev : null;
  }

  /**
   * Device objects for the current sample (`stale` overlays the stale status), frozen: bound to it,
   * not decoded.
   */
  decodeDevices(stale: boolean): readonly DeviceSample[] {
    const block = this.current;
    if (!block) return EMPTY;
    const set = this.spare ?? this.newDeviceSet();
    this.spare = null;
    // Binding is two stores for the whole set: each device reads its part of the block when asked.
    set.frame.block = block;
    set.frame.stale = stale;
    block.bound.push(set);
    block.undecoded += this.n;
    this.scheduleRefill();
    return set.objects;
  }

  private newDeviceSet(): DeviceSet {
    const objects: DeviceSample[] = [];
    const lazies: LazyDevice[] = [];
    const frame = new SetFrame();
    for (let d = 0; d < this.n; d++) {
      const info = this.deviceInfo[d];
      const l = new LazyDevice(this, frame, d);
      const o = { index: info.index, uuid: info.uuid, name: info.name };
      Hidden.attach(o, l);
      Object.defineProperties(o, DEVICE_ACCESSORS);
      objects.push(Object.freeze(o) as unknown as DeviceSample);
      lazies.push(l);
    }
    return { objects: Object.freeze(objects), lazies, frame };
  }

  /**
   * Once the caller's synchronous code is done: device objects and a block ready for the next
   * sample. A microtask, not setImmediate: that one makes two calls into Node's C++ (ref, unref),
   * which cost more with cold caches than the rest of snapshot() (bench/ANALYSIS.md).
   */
  private scheduleRefill(): void {
    if (this.refillQueued || (this.spare !== null && this.landing !== null)) return;
    this.refillQueued = true;
    // A promise reaction is queued by V8 itself; Node's queueMicrotask goes through its C++ too.
    void RESOLVED.then(this.refill);
  }

  private readonly refill = (): void => {
    this.refillQueued = false;
    this.spare ??= this.newDeviceSet();
    this.ensureLanding();
  };

  private partDone(l: LazyDevice): void {
    if (--l.left > 0) return;
    const block = l.frame.block!;
    if (--block.undecoded > 0) return;
    block.bound.length = 0; // every part of its sample read: nothing to keep for an eviction
    if (block !== this.current && this.landing === null) this.landing = block;
  }

  /** @internal State (stale overlays ok), processesTruncated, migMode. */
  metaOf(l: LazyDevice): MetaPart {
    const meta = l.frame.block!.deviceMeta;
    const base = l.d * this.constants.deviceMetaStride;
    const rawState = DEVICE_STATES[meta[base + M_STATE]] ?? 'error';
    const mig = meta[base + M_MIG_MODE];
    l.meta = {
      state: l.frame.stale && rawState === 'ok' ? 'stale' : rawState,
      processesTruncated: meta[base + M_PROCESS_TRUNCATED] === 1,
      migMode: mig === 1 ? true : mig === 0 ? false : null,
    };
    this.partDone(l);
    return l.meta;
  }

  /** @internal Values: a number only for a real reading (a stale sample keeps its readings). */
  fieldsOf(l: LazyDevice): FieldValues {
    const block = l.frame.block!;
    l.fields = Object.freeze(BUILD_VALUES(block.values, block.statuses, l.d * this.fieldCount));
    this.partDone(l);
    return l.fields;
  }

  /** @internal Status, source and reasons: the previous ones while no status, source or code changed. */
  statusOf(l: LazyDevice): StatusPart {
    const block = l.frame.block!;
    const d = l.d;
    const stale = l.frame.stale;
    const base = d * this.fieldCount;
    const cache = this.caches[d];
    const metaBase = d * this.constants.deviceMetaStride;
    const mig = block.deviceMeta[metaBase + M_MIG_MODE];
    const failedLink = block.deviceMeta[metaBase + M_NVLINK_FAILED_LINK];
    const st = block.statuses;
    const src = block.sources;
    const codes = block.codes;
    let same = cache.statusPart !== null && cache.stale === stale && Object.is(cache.mig, mig) && Object.is(cache.failedLink, failedLink);
    for (let i = 0; i < this.fieldCount && same; i++) {
      same = st[base + i] === cache.statuses[i] && src[base + i] === cache.sources[i] && codes[base + i] === cache.codes[i];
    }
    if (!same) {
      const statuses = this.scratchStatuses;
      const sources = this.scratchSources;
      const reasons: Record<string, string> = {};
      for (let i = 0; i < this.fieldCount; i++) {
        let s: FieldStatus = FIELD_STATUSES[st[base + i]] ?? 'error';
        const source: FieldSource = FIELD_SOURCES[src[base + i]] ?? 'none';
        if (stale && (s === 'ok' || s === 'pending')) s = 'stale';
        statuses[i] = s;
        sources[i] = source;
        if (s !== 'ok') reasons[FIELD_NAMES[i]] = this.reason(d, i, s, source, codes[base + i], mig === 1, failedLink);
      }
      cache.statuses.set(st.subarray(base, base + this.fieldCount));
      cache.sources.set(src.subarray(base, base + this.fieldCount));
      cache.codes.set(codes.subarray(base, base + this.fieldCount));
      cache.mig = mig;
      cache.failedLink = failedLink;
      cache.stale = stale;
      cache.statusPart = {
        status: Object.freeze(BUILD_RECORD(statuses)) as FieldStatuses,
        source: Object.freeze(BUILD_RECORD(sources)) as FieldSources,
        reasons: Object.freeze(reasons),
      };
    }
    l.statusPart = cache.statusPart;
    this.partDone(l);
    return l.statusPart!;
  }

  private reason(d: number, i: number, st: FieldStatus, src: FieldSource, code: number, mig: boolean, failedLink: number): string {
    if (code === -2) {
      const note = this.fieldNotes[d]?.[i];
      if (note) return note;
    }
    const key = `${i}|${st}|${src}|${code}|${mig ? 1 : 0}|${failedLink}`;
    let text = this.reasonCache.get(key);
    if (text === undefined) {
      text = reasonFor(FIELD_NAMES[i], st, src, code);
      if (mig && (st === 'not_supported' || st === 'no_permission') && src === 'nvml' && MIG_AFFECTED.has(FIELD_NAMES[i])) {
        text = `${MIG_REASON} (${text})`;
      }
      if (failedLink >= 0 && NVLINK_TOTALS.has(FIELD_NAMES[i]) && st !== 'ok' && st !== 'pending' && st !== 'stale') {
        text = `NVLink link ${failedLink}: ${text}`;
      }
      if (this.reasonCache.size > 10_000) this.reasonCache.clear();
      this.reasonCache.set(key, text);
    }
    return text;
  }

  /** @internal The clockEventReasons mask decoded to names: one frozen list per mask seen. */
  clockEventReasonsOf(l: LazyDevice): readonly ClockEventReason[] | null {
    const block = l.frame.block!;
    const i = l.d * this.fieldCount + I_CLOCK_EVENT_REASONS;
    const mask = block.values[i];
    let names: readonly ClockEventReason[] | null = null;
    if (block.statuses[i] === STATUS_OK && mask === mask) {
      names = this.clockReasons.get(mask) ?? null;
      if (names === null) {
        names = Object.freeze(decodeClockEventReasons(mask));
        if (this.clockReasons.size >= 1024) this.clockReasons.clear();
        this.clockReasons.set(mask, names);
      }
    }
    l.clockEventReasons = names;
    this.partDone(l);
    return names;
  }

  /** @internal Links that have any reading; the previous list again (entries frozen) when none changed. */
  nvlinksOf(l: LazyDevice): readonly NvlinkSample[] {
    l.nvlinks = this.nvlinkList(l.frame.block!, l.d);
    this.partDone(l);
    return l.nvlinks;
  }

  private nvlinkList(block: SampleBlock, d: number): readonly NvlinkSample[] {
    const c = this.constants;
    const cache = this.caches[d];
    if (!(block.deviceMeta[d * c.deviceMetaStride + M_LINK_COUNT] > 0)) return EMPTY;
    const links = block.links;
    const linkBase = d * c.maxLinks * c.linkStride;
    const prev = cache.nvlinks;
    let same = prev !== null;
    let k = 0;
    for (let l = 0; l < c.maxLinks && same; l++) {
      const o = linkBase + l * c.linkStride;
      const up = links[o];
      const tx = links[o + 1];
      const rx = links[o + 2];
      if (up !== up && tx !== tx && rx !== rx) continue;
      const p = prev![k++];
      same =
        p !== undefined &&
        p.link === l &&
        p.up === (up !== up ? null : up === 1) &&
        p.txBytesPerSecond === (tx !== tx ? null : tx) &&
        p.rxBytesPerSecond === (rx !== rx ? null : rx);
    }
    if (same && k === prev!.length) {
      if (!cache.nvlinksShared) {
        for (const link of prev!) Object.freeze(link); // shared by two samples from now on
        cache.nvlinksShared = true;
      }
      return prev!;
    }
    const out: NvlinkSample[] = [];
    for (let l = 0; l < c.maxLinks; l++) {
      const o = linkBase + l * c.linkStride;
      const up = links[o];
      const tx = links[o + 1];
      const rx = links[o + 2];
      if (up !== up && tx !== tx && rx !== rx) continue;
      out.push({ link: l, up: up !== up ? null : up === 1, txBytesPerSecond: tx !== tx ? null : tx, rxBytesPerSecond: rx !== rx ? null : rx });
    }
    cache.nvlinks = out;
    cache.nvlinksShared = false;
    return Object.freeze(out);
  }

  /** @internal The processes listed; the previous list again when no slot changed. */
  processesOf(l: LazyDevice): readonly ProcessSample[] {
    l.processes = this.processList(l.frame.block!, l.d);
    this.partDone(l);
    return l.processes;
  }

  private processList(block: SampleBlock, d: number): readonly ProcessSample[] {
    const c = this.constants;
    const cache = this.caches[d];
    const count = block.deviceMeta[d * c.deviceMetaStride + M_PROCESS_COUNT];
    const n = count > 0 ? count * c.processStride : 0;
    const base = d * c.maxProcesses * c.processStride;
    const slots = block.processes;
    const prev = cache.processSlots;
    if (prev !== null && cache.processes !== null && prev[0] === n) {
      let same = true;
      for (let i = 0; i < n && same; i++) {
        const a = slots[base + i];
        const b = prev[i + 1];
        same = a === b || (a !== a && b !== b);
      }
      if (same) return cache.processes;
    }
    const list = this.fleet.processes(slots, block.deviceMeta, d, count); // entries frozen
    cache.processes = list.length ? Object.freeze(list) : EMPTY;
    cache.processSlots ??= new Float64Array(c.maxProcesses * c.processStride + 1);
    cache.processSlots[0] = n;
    cache.processSlots.set(slots.subarray(base, base + n), 1);
    return cache.processes;
  }

  /** @internal Whether per-process utilisation is read on the device, and why not. */
  processUtilizationOf(l: LazyDevice): ProcessUtilizationState {
    l.processUtilization = this.fleet.processUtilization(l.frame.block!.deviceMeta, l.d, l.frame.stale);
    this.partDone(l);
    return l.processUtilization;
  }

  /** @internal The MIG instances (they take their processes from the device's list). */
  migOf(l: LazyDevice): MigPart {
    const processes = l.processes ?? this.processesOf(l);
    const block = l.frame.block!;
    const mig = this.fleet.migInstances(block.mig, block.deviceMeta, l.d, processes, l.frame.stale);
    l.mig = { instances: mig.instances.length ? Object.freeze(mig.instances) : EMPTY, reason: mig.reason, truncated: mig.truncated };
    this.partDone(l);
    return l.mig;
  }
}

const NO_BUFFER = new ArrayBuffer(0);
/**
 * Sample blocks kept (each ~2.7 KiB per GPU): the current sample's and the next one's. A previous
 * sample's unread parts are decoded when the next block is wanted, so the decoder holds on to one
 * sample's objects only: more blocks would keep more samples' objects alive across scavenges,
 * where they are promoted and then die in the old generation (serve's RSS, bench/ANALYSIS.md).
 */
const MAX_BLOCKS = 2;
const RESOLVED = Promise.resolve();
