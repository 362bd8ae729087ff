/**
 * arm64: the addon and the simulator library load (the prebuilds/linux-arm64 ones under the runner)
 * and sample the gb10 (unified memory, DGX Spark), gh200 (Grace Hopper) and h100-sxm-8 scenarios.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { DIST, EXPECTED_ARCH, ROOT, importPackage, mappedFiles, waitFor } from './harness.mjs';

const { openGpuTelemetry } = await importPackage();
const { elfArch } = await import(path.join(DIST, 'paths.js'));
const { resolveScenario } = await import(path.join(DIST, 'simulator.js'));
const prebuildDir = path.join(ROOT, 'prebuilds', `linux-${EXPECTED_ARCH}`);

/** A sample in which every device has at least one ok field (the first one may be all "pending"). */
async function firstSample(gpu) {
  return waitFor(() => {
    const s = gpu.snapshot();
    return s.devices.length > 0 && s.devices.every((d) => d.status.smClockHz === 'ok') ? s : undefined;
  });
}

test(`runs as ${EXPECTED_ARCH}`, () => {
  assert.equal(process.arch, EXPECTED_ARCH);
  assert.equal(elfArch(process.execPath), EXPECTED_ARCH);
});

test('gb10: one unified-memory GPU, memory from meminfo, link fields not_supported with the reason', async () => {
  const gpu = await openGpuTelemetry({ simulate: 'gb10', intervalMs: 100 });
  try {
    assert.equal(gpu.devices.length, 1);
    const info = gpu.devices[0];
    assert.match(info.name, /GB10/);
    assert.equal(info.simulated, true);
    assert.equal(info.unifiedMemory, true);
    const d = (await firstSample(gpu)).devices[0];
    for (const f of ['memoryTotalBytes', 'memoryUsedBytes', 'memoryFreeBytes']) {
      assert.equal(d.status[f], 'ok', `${f}: ${d.status[f]} ${d.reasons[f] ?? ''}`);
      assert.equal(d.source[f], 'meminfo', f);
      assert.equal(typeof d.fields[f], 'number', f);
    }
    assert.ok(d.fields.memoryTotalBytes > d.fields.memoryFreeBytes);
    assert.equal(d.status.pcieLinkGeneration, 'not_supported');
    assert.match(d.reasons.pcieLinkGeneration, /NVLink-C2C/);
    assert.equal(d.fields.pcieLinkGeneration, null);
    assert.ok(d.fields.smClockHz > 0);
  } finally {
    await gpu.close();
  }
});

test('gh200: ATS addressing with its own 96 GB of HBM3: memory from NVML, not from meminfo', async () => {
  const gpu = await openGpuTelemetry({ simulate: 'gh200', intervalMs: 100 });
  try {
    const info = gpu.devices[0];
    assert.match(info.name, /GH200/);
    assert.equal(info.unifiedMemory, false);
    const d = (await firstSample(gpu)).devices[0];
    for (const f of ['memoryTotalBytes', 'memoryUsedBytes', 'memoryFreeBytes', 'memoryReservedBytes']) {
      assert.equal(d.status[f], 'ok', `${f}: ${d.status[f]} ${d.reasons[f] ?? ''}`);
      assert.equal(d.source[f], 'nvml', f);
    }
    assert.ok(d.fields.memoryTotalBytes > 90e9 && d.fields.memoryTotalBytes < 110e9);
    assert.ok(d.fields.memoryUsedBytes >= d.fields.gpuProcessMemoryBytes);
  } finally {
    await gpu.close();
  }
});

test('h100-sxm-8: eight GPUs, distinct UUIDs, clocks, power and energy read through the simulated NVML', async () => {
  const gpu = await openGpuTelemetry({ simulate: 'h100-sxm-8', intervalMs: 100 });
  try {
    assert.equal(gpu.devices.length, 8);
    assert.equal(new Set(gpu.devices.map((d) => d.uuid)).size, 8);
    const first = await firstSample(gpu);
    for (const d of first.devices) {
      assert.match(d.name, /H100/);
      for (const f of ['smClockHz', 'powerWatts', 'energyJoules', 'temperatureGpuCelsius', 'memoryUsedBytes']) {
        assert.equal(d.status[f], 'ok', `GPU ${d.index} ${f}: ${d.status[f]} ${d.reasons[f] ?? ''}`);
        assert.ok(d.fields[f] > 0, `GPU ${d.index} ${f} = ${d.fields[f]}`);
      }
      assert.ok(d.nvlinks.length > 0);
    }
    // A later sample: the sequence advances and the energy counter does not go backwards.
    const later = await waitFor(() => {
      const s = gpu.snapshot();
      return s.seq > first.seq ? s : undefined;
    });
    for (let i = 0; i < 8; i++) assert.ok(later.devices[i].fields.energyJoules >= first.devices[i].fields.energyJoules);
  } finally {
    await gpu.close();
  }
});

test(`the native files in use are ${EXPECTED_ARCH} builds (the prebuilds when PREBUILDS_ONLY is set)`, () => {
  const addon = mappedFiles().filter((f) => f.endsWith('.node'));
  assert.equal(addon.length, 1, `one addon mapped: ${addon.join(', ')}`);
  assert.equal(elfArch(addon[0]), EXPECTED_ARCH);
  for (const name of ['gb10', 'fault-legacy-driver']) {
    const lib = resolveScenario(name).libraryPath;
    assert.equal(elfArch(lib), EXPECTED_ARCH, lib);
    if (process.env.PREBUILDS_ONLY) assert.equal(path.dirname(lib), prebuildDir);
  }
  if (process.env.PREBUILDS_ONLY) assert.equal(addon[0], path.join(prebuildDir, 'gpu-telemetry.node'));
});
