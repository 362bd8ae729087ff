/**
 * The process-wide state of kernel captures: the one live capture (CUPTI has one subscriber per
 * process, so one capture at a time, whoever armed it) and the counters the exporters publish as
 * gpu_telemetry_capture_* series (captureStats).
 */
import { loadNative } from '../native.js';
import type { CaptureHandle } from './capture-handle.js';

/**
 * What the captures of this process have done since it started (process-wide, like CUPTI's one
 * subscriber): what the exporters publish as gpu_telemetry_capture_* series.
 */
export interface CaptureStats {
  /** A capture is live now (starting, waiting for its start step, capturing or stopping). */
  active: boolean;
  /** Bytes the live capture holds now (native buffers and records; 0 when none is live). */
  activeBytes: number;
  /**
   * Activity buffers lent to CUPTI and not yet returned, across every capture (count and bytes).
   * Normally 0 between captures: a CUPTI that keeps its buffers after a capture has ended keeps
   * this memory (it may still write into it, so it cannot be freed) until it hands them back.
   */
  buffersWithCupti: number;
  bytesWithCupti: number;
  /** Captures armed successfully: CUPTI set up (a refused arm() or a start that failed is not counted). */
  armed: number;
  /**
   * Armed captures that have ended, by outcome: the stop reason of a finished one (steps,
   * max_bytes, max_records, timeout, cancelled, closed, error) or `failed` (no trace).
   */
  ended: Record<string, number>;
  /** Finished captures whose trace is truncated (a cap hit, fewer steps than asked, or drops). */
  truncated: number;
  /** Records kept in finished traces. */
  records: number;
  /**
   * Records lost: CUPTI's own drops (no buffer to write into), ours (caps), and the records CUPTI
   * handed back incomplete (still in flight when the capture ended).
   */
  droppedByCupti: number;
  droppedByUs: number;
  droppedIncomplete: number;
}

/** The live capture of this process (armed by any GpuTelemetry, or remotely), or null. */
export const liveCapture: { handle: CaptureHandle | null } = { handle: null };

/** Counters of the captures armed in this process (a remote capture's are its target's). */
export const totals = {
  armed: 0,
  ended: new Map<string, number>(),
  truncated: 0,
  records: 0,
  droppedByCupti: 0,
  droppedByUs: 0,
  droppedIncomplete: 0,
};

export function countEnded(outcome: string): void {
  totals.ended.set(outcome, (totals.ended.get(outcome) ?? 0) + 1);
}

/** Process-wide capture counters (see CaptureStats); never touches CUPTI beyond the live capture's progress. */
export function captureStats(): CaptureStats {
  let activeBytes = 0;
  if (liveCapture.handle !== null) {
    try {
      activeBytes = liveCapture.handle.progress.bytes;
    } catch {
      activeBytes = 0;
    }
  }
  let lent = { buffers: 0, bytes: 0 };
  if (totals.armed > 0) {
    // Only once a capture has loaded the addon's capture side: stats alone never load anything.
    try {
      lent = loadNative().captureBuffersWithCupti?.() ?? lent;
    } catch {
      // no addon: nothing was ever lent
    }
  }
  return {
    active: liveCapture.handle !== null,
    activeBytes,
    buffersWithCupti: lent.buffers,
    bytesWithCupti: lent.bytes,
    armed: totals.armed,
    ended: Object.fromEntries(totals.ended),
    truncated: totals.truncated,
    records: totals.records,
    droppedByCupti: totals.droppedByCupti,
    droppedByUs: totals.droppedByUs,
    droppedIncomplete: totals.droppedIncomplete,
  };
}
