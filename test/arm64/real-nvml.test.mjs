/**
 * arm64: Debian's real arm64 NVML (libnvidia-ml1:arm64) without a driver, loaded by the addon's own
 * loader: dlopen("libnvidia-ml.so.1") → the aarch64 multiarch library → nvmlInit_v2 → 9 → a typed
 * DRIVER_NOT_LOADED error. (Under --native, the same with this machine's multiarch library.)
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { EXPECTED_ARCH, importPackage } from './harness.mjs';

const { openGpuTelemetry, GpuTelemetryError } = await importPackage();
const TRIPLET = { arm64: 'aarch64-linux-gnu', x64: 'x86_64-linux-gnu' };
const OTHER = EXPECTED_ARCH === 'arm64' ? 'x64' : 'arm64';
const NVML = `/usr/lib/${TRIPLET[EXPECTED_ARCH]}/libnvidia-ml.so.1`;
const FOREIGN_NVML = `/usr/lib/${TRIPLET[OTHER]}/libnvidia-ml.so.1`;
const PKG = `libnvidia-ml1${EXPECTED_ARCH === 'arm64' ? ':arm64' : ''}`;

test(`the real ${EXPECTED_ARCH} NVML: DRIVER_NOT_LOADED, NVML's own code and message, the ${TRIPLET[EXPECTED_ARCH]} library`, { skip: !fs.existsSync(NVML) && `${NVML} is not installed (apt-get install ${PKG})` }, async () => {
  const err = await openGpuTelemetry().then(() => null, (e) => e);
  assert.ok(err instanceof GpuTelemetryError, `expected a GpuTelemetryError, got ${err}`);
  assert.equal(err.code, 'DRIVER_NOT_LOADED');
  assert.equal(err.vendorCode, 9);
  assert.equal(err.vendorMessage, 'Driver Not Loaded');
  assert.match(err.message, /nvmlInit_v2 failed with NVML_ERROR_DRIVER_NOT_LOADED \(9, "Driver Not Loaded"\)/);
  assert.deepEqual(err.tried, ['libnvidia-ml.so.1']);
  // The file the dynamic loader mapped for the soname: this architecture's, never the other one.
  assert.ok(err.libraryPath.includes(`/${TRIPLET[EXPECTED_ARCH]}/`) && err.libraryPath.endsWith('libnvidia-ml.so.1'), err.libraryPath);

  // The explicit path means the same.
  await assert.rejects(openGpuTelemetry({ libraries: { nvml: NVML } }), (e) => e.code === 'DRIVER_NOT_LOADED' && e.vendorCode === 9);
});

test(`the ${OTHER} NVML is refused by the loader as LIBRARY_NOT_FOUND, not a crash`, { skip: !fs.existsSync(FOREIGN_NVML) && `no ${OTHER} NVML here` }, async () => {
  await assert.rejects(openGpuTelemetry({ libraries: { nvml: FOREIGN_NVML } }), (e) => {
    assert.equal(e.code, 'LIBRARY_NOT_FOUND');
    assert.deepEqual(e.tried, [FOREIGN_NVML]);
    return true;
  });
});
