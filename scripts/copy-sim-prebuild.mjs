// After prebuildify: put the simulator libraries beside the addon in prebuilds/<platform>-<arch>/,
// where src/paths.ts looks for them in an installed package.
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const dest = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
fs.mkdirSync(dest, { recursive: true });
for (const file of ['gpu_telemetry_sim.so', 'gpu_telemetry_sim_legacy.so']) {
  const src = path.join(root, 'build', 'Release', file);
  if (!fs.existsSync(src)) {
    console.error(`missing ${src}: run "npm run build:native" first`);
    process.exit(1);
  }
  fs.copyFileSync(src, path.join(dest, file));
  console.log(`copied ${file} -> ${path.relative(root, dest)}/`);
}
