// Instruction count per scrape, under callgrind (repeatable whatever else the machine does):
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null node bench/scrape-instructions.mjs ours|ours-via-prom-client|straightforward N
// Run by bench/callgrind.sh: (Ir at N scrapes − Ir at 0 scrapes) / N.
import os from 'node:os';
import { Registry, Gauge, Counter } from 'prom-client';
import { openGpuTelemetry, registerGpuMetrics, DCGM_DEFAULT_METRICS } from '../dist/index.js';

const [kind = 'ours', nArg = '100'] = process.argv.slice(2);
const n = Number(nArg);
const gpu = await openGpuTelemetry({ simulate: 'h100-sxm-8', intervalMs: 3_600_000 });
let scrape;
if (kind === 'ours') {
  // What /metrics serves: the collector rendered directly (createTelemetryServer).
  const m = registerGpuMetrics(new Registry(), gpu, { names: 'dcgm' });
  scrape = async () => m.renderText();
} else if (kind === 'ours-via-prom-client') {
  const r = new Registry();
  registerGpuMetrics(r, gpu, { names: 'dcgm' });
  scrape = () => r.metrics();
} else {
  const r = new Registry();
  const labelNames = ['gpu', 'UUID', 'pci_bus_id', 'device', 'modelName', 'Hostname', 'DCGM_FI_DRIVER_VERSION'];
  const ms = DCGM_DEFAULT_METRICS.map((spec) => ({ spec, m: new (spec.type === 'counter' ? Counter : Gauge)({ name: spec.name, help: spec.help, labelNames, registers: [r] }) }));
  scrape = () => {
    const snap = gpu.snapshot();
    for (const { spec, m } of ms) {
      m.reset();
      for (const d of snap.devices) {
        const v = d.fields[spec.field];
        if (v === null || d.status[spec.field] !== 'ok') continue;
        const labels = { gpu: d.index, UUID: d.uuid, pci_bus_id: gpu.devices[d.index].pciBusId, device: `nvidia${d.index}`, modelName: d.name, Hostname: os.hostname(), DCGM_FI_DRIVER_VERSION: gpu.driver.driverVersion };
        if (spec.type === 'counter') m.inc(labels, v * spec.scale); else m.set(labels, v * spec.scale);
      }
    }
    return r.metrics();
  };
}
await scrape(); // both paths warmed once, so N=0 includes first-call costs
for (let i = 0; i < n; i++) await scrape();
await gpu.close();
