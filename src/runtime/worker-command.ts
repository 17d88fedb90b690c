// Owns: how this installation starts a worker process: node running worker-main from the compiled
// .js, or from the .ts source through tsx. Must not: start anything.

import { fileURLToPath } from 'node:url';

/** Node's arguments that run worker-main (the JSON of its options follows them). */
export function workerCommand(): string[] {
  const here = fileURLToPath(import.meta.url);
  const entry = here.replace(/worker-command\.(ts|js)$/, (_, ext: string) => `worker-main.${ext}`);
  // tsx resolved here, not from the working directory (which may be anywhere).
  return here.endsWith('.ts') ? ['--import', import.meta.resolve('tsx'), entry] : [entry];
}
