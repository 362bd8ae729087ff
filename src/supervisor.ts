/**
 * Keeps a GpuTelemetry open for a long-running exporter: when opening fails (no driver yet, a
 * driver being upgraded), it remembers why and tries again, so /metrics can keep answering with
 * gpu_telemetry_up 0 and the reason instead of the process exiting.
 */
import { GpuTelemetryError } from './errors.js';
import type { TelemetryProvider } from './exporters/source.js';
import type { GpuTelemetryOptions } from './options.js';
import { openGpuTelemetry, type GpuTelemetry } from './telemetry.js';

export interface SupervisorOptions {
  /** How often to try again after a failed open (ms, default 30,000). */
  reopenMs?: number;
  /** Called after every open attempt (for start-up and retry log lines). */
  onAttempt?: (result: { gpu: GpuTelemetry | null; error: GpuTelemetryError | null }) => void;
}

export class TelemetrySupervisor implements TelemetryProvider {
  private gpu: GpuTelemetry | null = null;
  private error: GpuTelemetryError | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private attempt: Promise<void> | null = null;

  constructor(
    private readonly options: GpuTelemetryOptions,
    private readonly supervise: SupervisorOptions = {},
  ) {}

  telemetry(): GpuTelemetry | null {
    return this.gpu;
  }

  lastError(): GpuTelemetryError | null {
    return this.error;
  }

  /** Tries to open once; resolves after the first attempt whatever its outcome. */
  start(): Promise<void> {
    this.attempt ??= this.tryOpen();
    return this.attempt;
  }

  private async tryOpen(): Promise<void> {
    if (this.stopped) return;
    try {
      const gpu = await openGpuTelemetry(this.options);
      if (this.stopped) {
        await gpu.close();
        return;
      }
      this.gpu = gpu;
      this.error = null;
    } catch (e) {
      this.error =
        e instanceof GpuTelemetryError ? e : new GpuTelemetryError('VENDOR_ERROR', (e as Error).message, { cause: e });
      // Configuration mistakes will not fix themselves: no point retrying those.
      const permanent = this.error.code === 'INVALID_OPTION' || this.error.code === 'INVALID_SCENARIO';
      if (!permanent && !this.stopped) {
        this.timer = setTimeout(() => {
          this.timer = null;
          void this.tryOpen();
        }, this.supervise.reopenMs ?? 30_000);
        this.timer.unref();
      }
    }
    this.supervise.onAttempt?.({ gpu: this.gpu, error: this.error });
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const gpu = this.gpu;
    this.gpu = null;
    if (gpu) await gpu.close();
  }
}
