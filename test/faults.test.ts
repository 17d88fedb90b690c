// Worker failures while serving: an attention worker killed during 16 concurrent greedy
// generations (all complete, equal to the fault-free outputs), restarted and rejoining (heads
// return to it), killed again while heads are migrating to it; the primary killed (clients get
// errors quickly, /health turns unhealthy, no hang).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { loadModel } from '../src/model/load.js';
import { Tokenizer } from '../src/model/tokenizer.js';
import { GREEDY } from '../src/model/sampler.js';
import { LocalForward } from '../src/runtime/forward.js';
import { generate } from '../src/runtime/generate.js';
import { getKernels } from '../src/runtime/kernel-select.js';
import { localClusterBackend, type ClusterBackend } from '../src/server/cluster-backend.js';
import { startServer, type RunningServer } from '../src/server/server.js';
import { SERVING_TUNING } from '../src/runtime/local-devices.js';
import { resolve } from 'node:path';
import { repoRoot } from './helpers/shared.js';

const MODEL = resolve(repoRoot, 'models/hetis-kjv.gguf');
const loaded = loadModel(MODEL);
const tokenizer = new Tokenizer(loaded.vocab!);
const forward = new LocalForward(loaded.model, getKernels('auto'));
const greedy = (p: string, n: number): string => generate(forward, tokenizer, p, { maxTokens: n, sampling: GREEDY, seed: 0 }).text;
const PROMPTS = Array.from({ length: 16 }, (_, i) => `${['And', 'Then', 'Behold', 'Now'][i % 4]} the ${['LORD', 'king', 'people', 'prophet'][(i >> 2) % 4]} said unto`);
const MAX = 40;

async function start(small = false): Promise<{ server: RunningServer; backend: ClusterBackend; client: OpenAI; rejoined: string[] }> {
  const rejoined: string[] = [];
  const backend = await localClusterBackend({
    name: 'hetis-kjv', spec: loaded.model.spec, tokenizer, modelPath: MODEL, onRejoin: (d) => { rejoined.push(d); },
    // Small: room for about four requests, and reservations of 4 tokens so that more are admitted than fit.
    ...(small ? { tuning: { ...SERVING_TUNING, expectedOutput: 4 } } : {}), log: (l) => { if (process.env['FAULT_LOG']) process.stderr.write(`${l}\n`); },
    layout: small
      ? { primary: { id: 'primary', tp: 1, stages: 1, kvCapacityBytes: 256 << 10 }, attention: [{ id: 'attn-1', kvCapacityBytes: 512 << 10 }, { id: 'attn-2', kvCapacityBytes: 512 << 10 }], blockSize: 16 }
      : { primary: { id: 'primary', tp: 1, stages: 1, kvCapacityBytes: 1 << 20 }, attention: [{ id: 'attn-1', kvCapacityBytes: 32 << 20 }, { id: 'attn-2', kvCapacityBytes: 32 << 20 }], blockSize: 16 },
  });
  const server = await startServer(backend, { port: 0 });
  return { server, backend, client: new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 60_000 }), rejoined };
}

/** Streams every prompt; `onProgress` sees the number of tokens each stream has received. */
async function streamAll(client: OpenAI, prompts: string[], onProgress: (counts: number[]) => void): Promise<string[]> {
  const counts = prompts.map(() => 0);
  return Promise.all(prompts.map(async (p, i) => {
    let text = '';
    for await (const c of await client.completions.create({ model: 'hetis-kjv', prompt: p, max_tokens: MAX, temperature: 0, stream: true })) {
      text += c.choices[0]?.text ?? '';
      counts[i]!++;
      onProgress(counts);
    }
    return text;
  }));
}

const pidOf = (b: ClusterBackend, id: string): number => b.devices().find((d) => d.id === id)!.pid!;
const waitFor = async (cond: () => boolean, ms: number, what: string): Promise<void> => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

test('attention worker killed mid-generation, restarted, killed again during migrations: nothing lost, same output', { timeout: 180_000 }, async () => {
  const want = PROMPTS.map((p) => greedy(p, MAX));
  const { server, backend, client, rejoined } = await start();
  try {
    // 1. Kill attn-1 once every stream is under way and attn-1 holds heads.
    let killed = false;
    const victim = pidOf(backend, 'attn-1');
    const got = await streamAll(client, PROMPTS, (counts) => {
      if (killed || counts.some((c) => c < 3)) return;
      const view = server.engine.deviceView().find((d) => d.id === 'attn-1')!;
      if (view.heads === 0) return;
      killed = true;
      process.kill(victim, 'SIGKILL');
    });
    assert.ok(killed, 'attn-1 was killed while holding heads');
    assert.deepEqual(got, want);

    // 2. It comes back (a new process) and receives heads again.
    await waitFor(() => rejoined.includes('attn-1'), 30_000, 'attn-1 to rejoin');
    const again = pidOf(backend, 'attn-1');
    assert.notEqual(again, victim);
    let heldAgain = false;
    let migrating = false;
    const got2 = await streamAll(client, PROMPTS, (counts) => {
      const view = server.engine.deviceView().find((d) => d.id === 'attn-1')!;
      if (view.heads > 0) heldAgain = true;
      // 3. Once under way: move heads onto attn-1 and kill it before the copy can finish.
      if (migrating || counts.some((c) => c < 5)) return;
      let moved = 0;
      for (const id of server.engine.runningIds()) {
        for (const h of server.engine.blockTable(id)) if (h.device !== 'attn-1' && server.engine.moveHead(id, h.head, 'attn-1')) moved++;
      }
      if (moved === 0) return;
      migrating = true;
      process.kill(again, 'SIGKILL');
    });
    assert.ok(heldAgain, 'the restarted attn-1 held heads again');
    assert.ok(migrating, 'attn-1 was killed with migrations to it pending');
    assert.deepEqual(got2, want);
  } finally {
    await server.close();
  }
});

test('primary killed: every client gets an error quickly, /health turns unhealthy, no hang', { timeout: 120_000 }, async () => {
  const { server, backend, client } = await start();
  try {
    let killed = 0;
    const t0 = Date.now();
    const results = await Promise.allSettled(PROMPTS.slice(0, 8).map(async (p) => {
      let n = 0;
      for await (const _ of await client.completions.create({ model: 'hetis-kjv', prompt: p, max_tokens: 200, temperature: 0, stream: true })) {
        if (++n === 3 && killed === 0) { killed = Date.now(); process.kill(pidOf(backend, 'primary'), 'SIGKILL'); }
      }
    }));
    assert.ok(killed > 0);
    assert.ok(results.every((r) => r.status === 'rejected'), 'every stream ends with an error');
    assert.ok(Date.now() - killed < 10_000, `errors within 10 s (took ${Date.now() - killed} ms)`);
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 503);
    void t0;
  } finally {
    await server.close();
  }
});

test('KV so small that requests are preempted: every request completes with the fault-free output', { timeout: 120_000 }, async () => {
  const want = PROMPTS.map((p) => greedy(p, MAX));
  const { server, client } = await start(true);
  try {
    const got = await streamAll(client, PROMPTS, () => {});
    assert.deepEqual(got, want);
    const preemptions = server.engine.records.reduce((a, r) => a + r.preemptions, 0);
    assert.ok(preemptions > 0, 'requests were preempted and recomputed');
    assert.ok(server.engine.records.every((r) => r.finishReason === 'length'));
  } finally {
    await server.close();
  }
});
