// Owns: making the package's commands (package.json "bin") executable after the TypeScript build,
// so `npx hetis` runs from a fresh checkout (npm sets the mode only when it links a dependency).
// Must not: build anything.
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
for (const file of Object.values(pkg.bin ?? {})) {
  const path = join(root, file);
  if (!existsSync(path)) {
    console.error(`mark-bin: ${file} was not built`);
    process.exit(1);
  }
  chmodSync(path, 0o755);
}
