// `hetis serve --cluster FILE` with workers started by hand (`hetis worker`): the planner picks
// the primary among the file's devices, the server connects with the cluster token, serves the
// single-process greedy output, and a worker left by one server is reused by the next. A worker
// started with another token refuses the server with a clear message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import OpenAI from 'openai';
import { loadModel } from '../src/model/load.js';
import { Tokenizer } from '../src/model/tokenizer.js';
import { GREEDY } from '../src/model/sampler.js';
import { LocalForward } from '../src/runtime/forward.js';
import { generate } from '../src/runtime/generate.js';
import { getKernels } from '../src/runtime/kernel-select.js';
import { repoRoot } from './helpers/shared.js';
import { tempDir } from './helpers/files.js';

const loaded = loadModel('models/hetis-kjv.gguf');
const tokenizer = new Tokenizer(loaded.vocab!);
const forward = new LocalForward(loaded.model, getKernels('auto'));

/** Starts `hetis <args>`; resolves with the process and the first line it prints on stdout. */
function start(args: string[], procs: ChildProcess[]): Promise<{ proc: ChildProcess; line: string; stderr: () => string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hetis ${args[0]} printed nothing in 60 s:\n${err}`)), 60_000);
    createInterface({ input: proc.stdout! }).once('line', (line) => { clearTimeout(timer); resolve({ proc, line, stderr: () => err }); });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`hetis ${args[0]} exited with ${code}:\n${err}`)); });
  });
}

async function stopAll(procs: ChildProcess[]): Promise<void> {
  await Promise.all(procs.map((p) => new Promise<void>((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) { resolve(); return; }
    const t = setTimeout(() => { try { process.kill(p.pid!, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    p.once('exit', () => { clearTimeout(t); resolve(); });
    process.kill(p.pid!, 'SIGTERM');
  })));
}

function clusterFile(dir: string, addresses: string[]): string {
  const path = join(dir, 'lab.yaml');
  const cpu = (name: string, tflops: number, gb: number) => `{ name: ${name}, kind: cpu, peak_tflops: ${tflops}, memory_gb: ${gb}, bandwidth_gb_s: 30 }`;
  writeFileSync(path, [
    'name: lab',
    'hosts:',
    '  - name: box',
    '    link: { bandwidth_gb_s: 2, latency_us: 50 }',
    '    devices:',
    `      - spec: ${cpu('fast-cpu', 0.2, 0.5)}`,
    `        address: ${addresses[0]}`,
    `      - spec: ${cpu('slow-cpu', 0.02, 0.25)}`,
    '        count: 2',
    `        address: [${addresses[1]}, ${addresses[2]}]`,
    '',
  ].join('\n'));
  return path;
}

test('hetis serve --cluster FILE: hand-started workers, planned, served, reused', { timeout: 180_000 }, async () => {
  const procs: ChildProcess[] = [];
  try {
    const dir = tempDir('cluster-file');
    const workers = await Promise.all([0, 1, 2].map(() => start(['worker', '--listen', '127.0.0.1:0', '--token', 'sesame'], procs)));
    const file = clusterFile(dir, workers.map((w) => w.line));
    for (let round = 0; round < 2; round++) {
      const server = await start(['serve', '--port', '0', '--cluster', file, '--token', 'sesame'], procs);
      const client = new OpenAI({ baseURL: `${server.line}/v1`, apiKey: 'unused', maxRetries: 0 });
      const c = await client.completions.create({ model: 'hetis-kjv', prompt: 'In the beginning', max_tokens: 16, temperature: 0 });
      const want = generate(forward, tokenizer, 'In the beginning', { maxTokens: 16, sampling: GREEDY, seed: 0 }).text;
      assert.equal(c.choices[0]!.text, want);
      const view = await (await fetch(`${server.line}/v1/cluster`)).json() as { devices: { id: string; role: string; pid: number }[] };
      assert.deepEqual(view.devices.map((d) => d.role), ['primary+attention', 'attention', 'attention']);
      assert.equal(view.devices[0]!.id, 'primaries');
      assert.deepEqual(view.devices.map((d) => d.pid).sort(), workers.map((w) => w.proc.pid!).sort());
      assert.match(server.stderr(), /plan: primaries: dense layers/);
      await stopAll([server.proc]);
      await new Promise((r) => setTimeout(r, 300)); // the workers notice and drop their assignment
    }
    assert.ok(workers.every((w) => w.proc.exitCode === null), 'hand-started workers outlive the servers');
    // An attention worker dies under a running server; requests go on; a new worker at the same
    // address rejoins.
    const server = await start(['serve', '--port', '0', '--cluster', file, '--token', 'sesame'], procs);
    const client = new OpenAI({ baseURL: `${server.line}/v1`, apiKey: 'unused', maxRetries: 0 });
    const ask = async (): Promise<string> => (await client.completions.create({ model: 'hetis-kjv', prompt: 'And the LORD', max_tokens: 12, temperature: 0 })).choices[0]!.text;
    const before = await ask();
    const dying = workers[1]!;
    process.kill(dying.proc.pid!, 'SIGKILL');
    await new Promise<void>((r) => dying.proc.once('exit', () => r()));
    assert.equal(await ask(), before, 'served on the surviving devices');
    const reborn = await start(['worker', '--listen', dying.line, '--token', 'sesame'], procs);
    const view = async (): Promise<{ id: string; pid: number; alive: boolean }[]> => ((await (await fetch(`${server.line}/v1/cluster`)).json()) as { devices: { id: string; pid: number; alive: boolean }[] }).devices;
    for (let i = 0; i < 100 && !(await view()).some((d) => d.pid === reborn.proc.pid && d.alive); i++) {
      await ask(); // steps let the server notice; the reconnect retries every 2 s
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok((await view()).some((d) => d.pid === reborn.proc.pid && d.alive), `the restarted worker rejoined:\n${server.stderr()}`);
    assert.equal(await ask(), before);
    await stopAll([server.proc]);
    // A worker with another token: the server says so and exits.
    const other = await start(['worker', '--listen', '127.0.0.1:0', '--token', 'other'], procs);
    const bad = clusterFile(dir, [other.line, workers[1]!.line, workers[2]!.line]);
    await assert.rejects(start(['serve', '--port', '0', '--cluster', bad, '--token', 'sesame'], procs), /rejected the cluster token/);
  } finally {
    await stopAll(procs);
  }
});
