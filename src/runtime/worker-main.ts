// Owns: the entry point of a worker process started by a local cluster: reads its options from
// argv as JSON, starts the worker, prints one JSON line {"listening", "pid"} on stdout, and exits
// when told to shut down or when its parent goes away. Must not: parse user-facing flags (the
// `hetis worker` command does).

import { getKernels, type KernelPreference } from './kernel-select.js';
import { startWorker } from './worker-process.js';

interface Args {
  listen: string;
  token?: string;
  threads?: number;
  kernels?: KernelPreference;
  kvCapacityBytes?: number;
  timeoutMs?: number;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as Args;
  const kernels = getKernels(args.kernels ?? 'auto');
  kernels.setThreads(args.threads ?? 1);
  const w = await startWorker({
    listen: args.listen, kernels,
    ...(args.token !== undefined ? { token: args.token } : {}),
    ...(args.kvCapacityBytes !== undefined ? { kvCapacityBytes: args.kvCapacityBytes } : {}),
    ...(args.timeoutMs !== undefined ? { timeoutMs: args.timeoutMs } : {}),
    log: (line) => process.stderr.write(`hetis worker ${process.pid}: ${line}\n`),
  });
  process.stdout.write(`${JSON.stringify({ listening: w.address, pid: process.pid })}\n`);
  // The parent's end of stdin closes when it exits, even on SIGKILL: never outlive it.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
  await w.closed;
  process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`hetis worker: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
