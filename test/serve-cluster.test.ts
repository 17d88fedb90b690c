// `hetis serve` for real: the CLI starts a local cluster (one primary and two attention worker
// processes) and the HTTP server; the real `openai` client streams and non-streams chat and
// completions, with stop strings and usage; 32 concurrent streaming requests each get the
// single-process greedy output; heads live on every device; SIGTERM stops every process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import OpenAI from 'openai';
import { loadModel } from '../src/model/load.js';
import { Tokenizer } from '../src/model/tokenizer.js';
import { GREEDY } from '../src/model/sampler.js';
import { LocalForward } from '../src/runtime/forward.js';
import { generate } from '../src/runtime/generate.js';
import { getKernels } from '../src/runtime/kernel-select.js';
import { repoRoot } from './helpers/shared.js';

const MODEL = 'models/hetis-kjv.gguf';
const loaded = loadModel(MODEL);
const tokenizer = new Tokenizer(loaded.vocab!);
const forward = new LocalForward(loaded.model, getKernels('auto'));
const greedy = (prompt: string, maxTokens: number, stop: string[] = []): string =>
  generate(forward, tokenizer, prompt, { maxTokens, sampling: GREEDY, seed: 0, stop }).text;

interface Served { url: string; pid: number; stop(): Promise<void> }

/** Starts `hetis serve` on a free port; resolves with its URL once it listens. */
function serve(args: string[]): Promise<Served> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--port', '0', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { void stop(); reject(new Error(`hetis serve did not start in 60 s:\n${err}`)); }, 60_000);
    createInterface({ input: child.stdout }).once('line', (url) => { clearTimeout(timer); resolve({ url, pid: child.pid!, stop }); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`hetis serve exited with ${code}:\n${err}`)); });
  });
}

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };

test('hetis serve: a local cluster behind the OpenAI API', { timeout: 240_000 }, async () => {
  const s = await serve(['--primary-kv', '1MiB', '--attention', '64MiB,32MiB:2']);
  let workerPids: number[] = [];
  try {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
    const model = 'hetis-kjv';
    const cluster = await (await fetch(`${s.url}/v1/cluster`)).json() as { devices: { id: string; role: string; pid: number }[] };
    assert.deepEqual(cluster.devices.map((d) => d.id), ['primary', 'attn-1', 'attn-2']);
    workerPids = cluster.devices.map((d) => d.pid);
    assert.equal(new Set([...workerPids, s.pid]).size, 4, 'one process per worker, none of them the server');

    // Completions: non-streaming greedy equals the single-process forward; streaming equals it too.
    const prompt = 'And God said';
    const want = greedy(prompt, 24);
    const c = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0 });
    assert.equal(c.choices[0]!.text, want);
    assert.equal(c.usage!.prompt_tokens, tokenizer.encode(prompt, { bos: true }).length);
    assert.equal(c.usage!.completion_tokens, 24);
    let streamed = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true } })) {
      streamed += chunk.choices[0]?.text ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(streamed, want);
    assert.equal(usage?.completion_tokens, 24);

    // A stop string: the text ends before it.
    const stopAt = want.split(' ').slice(0, 3).join(' ').trim().split(' ').pop()!;
    const st = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0, stop: [stopAt] });
    assert.equal(st.choices[0]!.finish_reason, 'stop');
    assert.equal(st.choices[0]!.text, greedy(prompt, 24, [stopAt]));

    // Chat, both ways.
    const messages = [{ role: 'user' as const, content: 'Who made the heaven and the earth?' }];
    const chat = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });
    const text = chat.choices[0]!.message.content ?? '';
    assert.ok(text.length > 0);
    let chatStreamed = '';
    for await (const chunk of await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0, stream: true })) {
      chatStreamed += chunk.choices[0]?.delta?.content ?? '';
    }
    assert.equal(chatStreamed, text);

    // 32 concurrent streams, each its own prompt: every one equals its single-process output.
    const prompts = Array.from({ length: 32 }, (_, i) => `${['And', 'Then', 'Behold', 'Now'][i % 4]} the ${['LORD', 'king', 'people', 'prophet', 'priest', 'angel', 'children', 'city'][i % 8]} ${['said', 'went', 'came'][i % 3]}`);
    const expected = prompts.map((p) => greedy(p, 20));
    let sawSpread = false;
    const watcher = (async () => {
      for (let i = 0; i < 200 && !sawSpread; i++) {
        const v = await (await fetch(`${s.url}/v1/cluster`)).json() as { devices: { heads: number }[] };
        if (v.devices.every((d) => d.heads > 0)) sawSpread = true;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const outs = await Promise.all(prompts.map(async (p) => {
      let out = '';
      for await (const chunk of await client.completions.create({ model, prompt: p, max_tokens: 20, temperature: 0, stream: true })) out += chunk.choices[0]?.text ?? '';
      return out;
    }));
    await watcher;
    assert.deepEqual(outs, expected);
    assert.ok(sawSpread, 'during the concurrent run every device held KV heads');
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /hetis_ttft_seconds_bucket/);
  } finally {
    await s.stop();
  }
  await new Promise((r) => setTimeout(r, 500));
  for (const pid of workerPids) assert.ok(!alive(pid), `worker ${pid} stopped with the server`);
});
