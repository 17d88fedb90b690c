// Owns: the `hetis worker` command: options to startWorker, its log lines, and staying up until
// shut down or interrupted. Must not: contain worker logic (runtime/worker-process.ts does).

import { getKernels, type KernelPreference } from '../runtime/kernel-select.js';
import { startWorker } from '../runtime/worker-process.js';
import { parseBytes } from '../util/units.js';

export interface WorkerFlags {
  listen: string;
  token?: string;
  threads: number;
  kvCapacity?: string;
  kernels: KernelPreference;
}

export async function workerCommand(f: WorkerFlags): Promise<void> {
  const kernels = getKernels(f.kernels);
  kernels.setThreads(f.threads);
  const token = f.token ?? process.env['HETIS_TOKEN'];
  const w = await startWorker({
    listen: f.listen, kernels,
    ...(token !== undefined && token !== '' ? { token } : {}),
    ...(f.kvCapacity !== undefined ? { kvCapacityBytes: parseBytes(f.kvCapacity, '--kv-capacity') } : {}),
    log: (line) => process.stderr.write(`hetis worker: ${line}\n`),
  });
  if (token === undefined || token === '') process.stderr.write('hetis worker: no --token: any engine that reaches this address may use it\n');
  process.stdout.write(`${w.address}\n`);
  const stop = (): void => { void w.close(); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await w.closed;
}
