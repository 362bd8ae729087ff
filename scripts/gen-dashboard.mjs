// Generates dashboards/gpu-telemetry.json (Grafana) from one readable description.
// Run: node scripts/gen-dashboard.mjs   (test/dashboard.test.ts checks the output is current)
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const ds = { type: 'prometheus', uid: '${datasource}' };
// Whole GPUs: series without a MIG instance (gpu_instance="" also matches series that have no such label).
const sel = 'instance=~"$instance",gpu=~"$gpu",gpu_instance=""';
// MIG instances: the same metric names, with gpu_instance / gpu_instance_profile.
const mig = 'instance=~"$instance",gpu=~"$gpu",gpu_instance!=""';
const any = 'instance=~"$instance",gpu=~"$gpu"';
let nextId = 1;
let y = 0;
const panels = [];

function row(title) {
  panels.push({ type: 'row', title, id: nextId++, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
  y += 1;
}

function panel(type, title, targets, { w = 8, h = 8, unit, min, max, description, options = {}, fieldConfig = {} } = {}) {
  const used = panels.filter((p) => p.gridPos.y === y && p.type !== 'row').reduce((s, p) => s + p.gridPos.w, 0);
  if (used + w > 24) y += h;
  const x = panels.filter((p) => p.gridPos.y === y && p.type !== 'row').reduce((s, p) => s + p.gridPos.w, 0);
  panels.push({
    type,
    title,
    id: nextId++,
    datasource: ds,
    ...(description ? { description } : {}),
    gridPos: { h, w, x, y },
    targets: targets.map(([expr, legend], i) => ({ datasource: ds, expr, legendFormat: legend, refId: String.fromCharCode(65 + i) })),
    fieldConfig: { defaults: { ...(unit ? { unit } : {}), ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}), ...fieldConfig }, overrides: [] },
    options,
  });
}
function endRow(h = 8) {
  y += h;
}

row('Fleet');
panel('stat', 'GPUs up', [[`sum(gpu_telemetry_device_up{instance=~"$instance"})`, 'up'], [`count(gpu_telemetry_device_up{instance=~"$instance"})`, 'known']], { w: 4, h: 4 });
panel('stat', 'Exporters reading GPUs', [[`sum(gpu_telemetry_up{instance=~"$instance"})`, 'up'], [`count(gpu_telemetry_up{instance=~"$instance"})`, 'total']], { w: 4, h: 4 });
panel('stat', 'XID errors (1 h)', [[`sum(increase(gpu_xid_errors_total{instance=~"$instance"}[1h]))`, 'XIDs']], { w: 4, h: 4 });
panel('stat', 'Stale exporters', [[`sum(gpu_telemetry_sample_stale{instance=~"$instance"})`, 'stale']], { w: 4, h: 4 });
panel('stat', 'Mean tensor-pipe activity', [[`avg(gpu_tensor_pipe_active_ratio{${sel}})`, 'tensor']], { w: 4, h: 4, unit: 'percentunit' });
panel('stat', 'Fleet power', [[`sum(gpu_power_watts{${sel}})`, 'W']], { w: 4, h: 4, unit: 'watt' });
endRow(4);

row('Activity: is the GPU doing tensor work?');
panel('timeseries', 'GPU utilization (coarse: any kernel running)', [[`gpu_utilization_ratio{${sel}}`, 'GPU {{gpu}} {{instance}}']], { unit: 'percentunit', min: 0, max: 1 });
panel('timeseries', 'Tensor-pipe active', [[`gpu_tensor_pipe_active_ratio{${sel}}`, 'GPU {{gpu}} {{instance}}']], { unit: 'percentunit', min: 0, max: 1, description: 'Fraction of cycles the tensor cores were busy (DCGM or NVML GPM).' });
panel('timeseries', 'SM active / occupancy', [[`gpu_sm_active_ratio{${sel}}`, 'active GPU {{gpu}}'], [`gpu_sm_occupancy_ratio{${sel}}`, 'occupancy GPU {{gpu}}']], { unit: 'percentunit', min: 0, max: 1 });
panel('timeseries', 'DRAM active', [[`gpu_dram_active_ratio{${sel}}`, 'GPU {{gpu}} {{instance}}']], { unit: 'percentunit', min: 0, max: 1 });
panel('timeseries', 'FP pipes', [[`gpu_fp16_pipe_active_ratio{${sel}}`, 'fp16 GPU {{gpu}}'], [`gpu_fp32_pipe_active_ratio{${sel}}`, 'fp32 GPU {{gpu}}'], [`gpu_fp64_pipe_active_ratio{${sel}}`, 'fp64 GPU {{gpu}}']], { unit: 'percentunit', min: 0, max: 1 });
panel('timeseries', 'Graphics engine active', [[`gpu_graphics_engine_active_ratio{${sel}}`, 'GPU {{gpu}} {{instance}}']], { unit: 'percentunit', min: 0, max: 1 });
endRow();

row('Memory');
panel('timeseries', 'Memory used / total', [[`gpu_memory_used_bytes{${sel}}`, 'used GPU {{gpu}}'], [`gpu_memory_total_bytes{${sel}}`, 'total GPU {{gpu}}']], { unit: 'bytes', min: 0 });
panel('timeseries', 'GPU processes\' memory', [[`gpu_process_memory_bytes{${sel}}`, 'GPU {{gpu}} {{instance}}']], { unit: 'bytes', min: 0, description: 'What the GPU itself holds; on unified-memory GPUs (GB10) this is the number to watch beside system memory.' });
panel('table', 'Fields readable per GPU', [[`gpu_telemetry_fields{${sel}}`, '{{gpu}} {{state}}']], { options: { showHeader: true }, description: 'Fields with a reading (readable) and without (unreadable); the unreadable ones are listed under Exporter health.' });
endRow();

row('MIG instances (GPUs in MIG mode)');
panel('timeseries', 'MIG memory used / total', [[`gpu_memory_used_bytes{${mig}}`, 'used GPU {{gpu}} GI {{gpu_instance}} {{gpu_instance_profile}}'], [`gpu_memory_total_bytes{${mig}}`, 'total GPU {{gpu}} GI {{gpu_instance}}']], { unit: 'bytes', min: 0 });
panel('timeseries', 'MIG tensor-pipe active', [[`gpu_tensor_pipe_active_ratio{${mig}}`, 'GPU {{gpu}} GI {{gpu_instance}} {{gpu_instance_profile}}']], { unit: 'percentunit', min: 0, max: 1, description: 'Per GPU instance, from NVML GPM (nvmlGpmMigSampleGet, Hopper and later).' });
panel('table', 'MIG devices', [[`gpu_telemetry_mig_device_info{${any}}`, '{{gpu}} {{gpu_instance}} {{gpu_instance_profile}} {{mig_uuid}}']], { options: { showHeader: true } });
endRow();

row('Processes (serve --processes)');
panel('timeseries', 'Per-process SM utilisation', [[`gpu_process_sm_utilization_ratio{${any}}`, 'GPU {{gpu}} pid {{pid}} {{namespace}}/{{pod}}']], { unit: 'percentunit', min: 0, max: 1, description: "Each process's share of the GPU's SM time (opt-in: serve --processes; not reported in MIG mode)." });
panel('timeseries', 'Per-process memory', [[`gpu_process_used_memory_bytes{${any}}`, 'GPU {{gpu}} pid {{pid}} {{namespace}}/{{pod}}']], { unit: 'bytes', min: 0 });
endRow();

row('Clocks and throttling');
panel('timeseries', 'SM clock vs max', [[`gpu_sm_clock_hertz{${sel}}`, 'GPU {{gpu}}'], [`gpu_sm_clock_max_hertz{${sel}}`, 'max GPU {{gpu}}']], { unit: 'hertz' });
panel('state-timeline', 'Clock-event (throttle) reasons', [[`gpu_clock_event_reason_active{${sel}} == 1`, 'GPU {{gpu}} {{reason}}']], { w: 16 });
endRow();

row('Power and thermals');
panel('timeseries', 'Power vs limit', [[`gpu_power_watts{${sel}}`, 'GPU {{gpu}}'], [`gpu_power_limit_watts{${sel}}`, 'limit GPU {{gpu}}']], { unit: 'watt', min: 0 });
panel('timeseries', 'Temperature', [[`gpu_temperature_celsius{${sel}}`, 'die GPU {{gpu}}'], [`gpu_memory_temperature_celsius{${sel}}`, 'memory GPU {{gpu}}']], { unit: 'celsius' });
panel('timeseries', 'Energy rate', [[`rate(gpu_energy_joules_total{${sel}}[5m])`, 'GPU {{gpu}}']], { unit: 'watt', description: 'From the energy counter: the true average power over 5 m.' });
endRow();

row('Interconnect: NVLink and PCIe');
panel('timeseries', 'NVLink TX / RX', [[`gpu_nvlink_transmit_bytes_per_second{${sel}}`, 'tx GPU {{gpu}}'], [`gpu_nvlink_receive_bytes_per_second{${sel}}`, 'rx GPU {{gpu}}']], { unit: 'Bps' });
panel('timeseries', 'PCIe TX / RX', [[`gpu_pcie_transmit_bytes_per_second{${sel}}`, 'tx GPU {{gpu}}'], [`gpu_pcie_receive_bytes_per_second{${sel}}`, 'rx GPU {{gpu}}']], { unit: 'Bps' });
panel('timeseries', 'Links up / PCIe link', [[`gpu_nvlink_active_links{${sel}}`, 'NVLinks GPU {{gpu}}'], [`gpu_pcie_link_generation{${sel}}`, 'PCIe gen GPU {{gpu}}'], [`gpu_pcie_link_width{${sel}}`, 'PCIe width GPU {{gpu}}']]);
endRow();

row('Errors: XID, ECC, row remapping');
panel('timeseries', 'XID errors', [[`increase(gpu_xid_errors_total{${sel}}[5m])`, 'GPU {{gpu}}'], [`gpu_last_xid{${sel}}`, 'last XID GPU {{gpu}}']]);
panel('timeseries', 'ECC errors (volatile)', [[`increase(gpu_ecc_volatile_corrected_errors_total{${sel}}[1h])`, 'corrected GPU {{gpu}}'], [`increase(gpu_ecc_volatile_uncorrected_errors_total{${sel}}[1h])`, 'uncorrected GPU {{gpu}}']]);
panel('timeseries', 'Row remapping / page retirement', [[`gpu_remapped_rows_pending{${sel}}`, 'remap pending GPU {{gpu}}'], [`gpu_remapped_rows_failure{${sel}}`, 'remap failure GPU {{gpu}}'], [`gpu_retired_pages_pending{${sel}}`, 'retirement pending GPU {{gpu}}']]);
endRow();

row('Exporter health');
panel('timeseries', 'Sample age', [[`gpu_telemetry_sample_age_seconds{instance=~"$instance"}`, '{{instance}}']], { unit: 's' });
panel('timeseries', 'Devices up', [[`gpu_telemetry_device_up{${sel}}`, 'GPU {{gpu}} {{instance}}']], { min: 0, max: 1 });
panel('table', 'Fields not readable', [[`gpu_telemetry_field_unavailable{${any}}`, '{{gpu}} {{gpu_instance}} {{field}} {{status}} ({{source}})']]);
panel('table', 'Build and driver', [[`gpu_telemetry_build_info{instance=~"$instance"}`, '{{instance}}']], { w: 24 });
endRow();

const dashboard = {
  title: 'GPU telemetry',
  uid: 'gpu-telemetry',
  description: 'gpu-telemetry default metric names (gpu_*). Health series say why a value series is missing.',
  tags: ['gpu', 'nvidia', 'gpu-telemetry'],
  timezone: 'browser',
  schemaVersion: 39,
  version: 1,
  refresh: '30s',
  time: { from: 'now-6h', to: 'now' },
  templating: {
    list: [
      { name: 'datasource', type: 'datasource', query: 'prometheus', label: 'Data source' },
      { name: 'instance', type: 'query', datasource: ds, query: 'label_values(gpu_telemetry_build_info, instance)', includeAll: true, multi: true, refresh: 2, current: { text: 'All', value: '$__all' } },
      { name: 'gpu', type: 'query', datasource: ds, query: 'label_values(gpu_telemetry_device_up{instance=~"$instance"}, gpu)', includeAll: true, multi: true, refresh: 2, current: { text: 'All', value: '$__all' } },
    ],
  },
  annotations: { list: [] },
  panels,
};
fs.mkdirSync(path.join(root, 'dashboards'), { recursive: true });
fs.writeFileSync(path.join(root, 'dashboards', 'gpu-telemetry.json'), `${JSON.stringify(dashboard, null, 2)}\n`);
console.log(`wrote dashboards/gpu-telemetry.json (${panels.length} panels)`);
