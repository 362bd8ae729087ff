#!/usr/bin/env node
/**
 * A Node service that exports its own GPU metrics and lets an operator capture its kernels, the
 * way the README describes: openGpuTelemetry + createTelemetryServer with the capture endpoint,
 * and a serving loop that marks each step (an NVTX range, plus gpu.capture.step()).
 *
 *   GPU_TELEMETRY_CAPTURE_TOKEN=$(openssl rand -hex 16) \
 *     node examples/serving-loop.mjs [--simulate h100-sxm-8] [--port 9400] [--interval-ms 1000] \
 *       [--step-ms 20] [--capture-dir DIR]
 *
 * Then: curl localhost:9400/metrics, and arm a capture of the next 50 steps with
 *   curl -X POST -H "authorization: Bearer $TOKEN" -d '{"steps":50}' localhost:9400/capture
 *
 * Here the "work" of a step is a short busy wait: on a GPU machine it would be the model's step
 * (CUDA work that CUPTI sees); under --simulate the simulator's CUPTI plays the kernels.
 * The soak script and the capture-fault tests run this file.
 */
import { parseArgs } from 'node:util';
import { createTelemetryServer, GpuTelemetryError, nvtx, openGpuTelemetry } from 'gpu-telemetry';

const { values } = parseArgs({
  options: {
    simulate: { type: 'string' },
    port: { type: 'string', default: '9400' },
    'interval-ms': { type: 'string', default: '1000' },
    'step-ms': { type: 'string', default: '20' },
    'capture-dir': { type: 'string' },
  },
});
const number = (name, min, max) => {
  const v = Number(values[name]);
  if (!Number.isInteger(v) || v < min || v > max) {
    console.error(`--${name} must be a whole number from ${min} to ${max}, not "${values[name]}"`);
    process.exit(2);
  }
  return v;
};
const port = number('port', 0, 65535);
const intervalMs = number('interval-ms', 10, 3_600_000);
const stepMs = number('step-ms', 1, 60_000);
const token = process.env.GPU_TELEMETRY_CAPTURE_TOKEN;

let gpu;
try {
  gpu = await openGpuTelemetry({ intervalMs, ...(values.simulate ? { simulate: values.simulate } : {}) });
} catch (e) {
  if (!(e instanceof GpuTelemetryError)) throw e;
  console.error(`no GPU telemetry: ${e.code}: ${e.message}`);
  process.exit(1);
}

const server = createTelemetryServer(gpu, {
  // The capture endpoint stays off without a token (16 characters at least).
  ...(token ? { capture: { token, ...(values['capture-dir'] ? { dir: values['capture-dir'] } : {}) } } : {}),
});
const address = await server.listen(port, '127.0.0.1');
console.log(
  `serving http://127.0.0.1:${address.port}/metrics · ${gpu.devices.length} GPU(s)` +
    ` · capture endpoint ${token ? 'on (POST /capture)' : 'off (set GPU_TELEMETRY_CAPTURE_TOKEN)'}`,
);

// The serving loop. One step per tick; a capture armed through the endpoint counts these.
let steps = 0;
const loop = setInterval(() => {
  nvtx.range('decode_step', () => {
    const until = performance.now() + 0.2;
    while (performance.now() < until); // stands in for the step's work
  });
  gpu.capture.step();
  steps++;
}, stepMs);

const stop = async (signal) => {
  clearInterval(loop);
  console.log(`${signal}: stopping after ${steps} steps`);
  await server.close();
  await gpu.close(); // a live capture ends with reason "closed"
  process.exit(0);
};
process.once('SIGTERM', () => void stop('SIGTERM'));
process.once('SIGINT', () => void stop('SIGINT'));
