// The OpenAI-compatible server, exercised through the real `openai` client against the
// in-process backend and the built-in model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import OpenAI from 'openai';
import { loadModel } from '../src/model/load.js';
import { Tokenizer } from '../src/model/tokenizer.js';
import { readTokenizerBin } from '../src/model/tokenizer-bin.js';
import { GREEDY } from '../src/model/sampler.js';
import { LocalForward } from '../src/runtime/forward.js';
import { generate } from '../src/runtime/generate.js';
import { getKernels } from '../src/runtime/kernel-select.js';
import { inProcessBackend, type ServeBackend } from '../src/server/backend.js';
import { startServer, type RunningServer, type ServerOptions } from '../src/server/server.js';
import { missingShared, repoRoot, stories260K, tok512 } from './helpers/shared.js';

const { model, vocab } = loadModel(resolve(repoRoot, 'models/hetis-kjv.gguf'));
const tokenizer = new Tokenizer(vocab!);
const MODEL = model.spec.name;
const PROMPT = 'In the beginning';

async function withServer(
  fn: (client: OpenAI, server: RunningServer) => Promise<void>,
  opts: ServerOptions = {},
  backend: ServeBackend = inProcessBackend(model, tokenizer),
): Promise<void> {
  const server = await startServer(backend, opts);
  try {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: opts.apiKey ?? 'unused', maxRetries: 0 });
    await fn(client, server);
  } finally {
    await server.close();
  }
}

/** Text and finish reasons of a streamed completion, per choice index; the usage chunk if any. */
async function collectCompletion(stream: AsyncIterable<OpenAI.Completions.Completion>) {
  const text: string[] = [];
  const finish: (string | null)[] = [];
  let usage: OpenAI.Completions.CompletionUsage | undefined;
  let usageChunks = 0;
  for await (const chunk of stream) {
    if (chunk.usage) { usage = chunk.usage; usageChunks++; assert.deepEqual(chunk.choices, []); }
    for (const c of chunk.choices) {
      text[c.index] = (text[c.index] ?? '') + c.text;
      if (c.finish_reason) finish[c.index] = c.finish_reason;
    }
  }
  return { text, finish, usage, usageChunks };
}

async function collectChat(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
  const text: string[] = [];
  const finish: (string | null)[] = [];
  const roles: string[] = [];
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      if (c.delta.role) roles[c.index] = c.delta.role;
      text[c.index] = (text[c.index] ?? '') + (c.delta.content ?? '');
      if (c.finish_reason) finish[c.index] = c.finish_reason;
    }
  }
  return { text, finish, roles };
}

test('completions: whole and streamed give the same greedy text; usage counts tokens', { timeout: 20_000 }, async () => {
  await withServer(async (client) => {
    const whole = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 24, temperature: 0 });
    assert.match(whole.id, /^cmpl-/);
    assert.equal(whole.object, 'text_completion');
    assert.equal(whole.model, MODEL);
    assert.equal(whole.choices.length, 1);
    const choice = whole.choices[0]!;
    assert.equal(choice.index, 0);
    assert.equal(choice.logprobs, null);
    assert.ok(choice.text.length > 0);
    assert.equal(whole.usage?.prompt_tokens, tokenizer.encode(PROMPT, { bos: true }).length);
    if (choice.finish_reason === 'length') assert.equal(whole.usage?.completion_tokens, 24);
    assert.equal(whole.usage?.total_tokens, whole.usage!.prompt_tokens + whole.usage!.completion_tokens);

    const streamed = await collectCompletion(await client.completions.create({
      model: MODEL, prompt: PROMPT, max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true },
    }));
    assert.equal(streamed.text[0], choice.text);
    assert.equal(streamed.finish[0], choice.finish_reason);
    assert.equal(streamed.usageChunks, 1);
    assert.deepEqual(streamed.usage, whole.usage);

    // Without include_usage, no usage chunk.
    const plain = await collectCompletion(await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 4, temperature: 0, stream: true }));
    assert.equal(plain.usageChunks, 0);
  });
});

test('greedy serving equals generate() with a LocalForward on the same prompt', { timeout: 20_000 }, async () => {
  const forward = new LocalForward(model, getKernels());
  const prompts = ['And God said', 'The LORD is my shepherd', PROMPT];
  await withServer(async (client) => {
    for (const prompt of prompts) {
      const ref = generate(forward, tokenizer, prompt, { maxTokens: 40, sampling: GREEDY, seed: 0 });
      const got = await client.completions.create({ model: MODEL, prompt, max_tokens: 40, temperature: 0 });
      assert.equal(got.choices[0]!.text, ref.text, prompt);
      assert.equal(got.choices[0]!.finish_reason, ref.finishReason, prompt);
      assert.equal(got.usage?.completion_tokens, ref.tokens.length, prompt);
      assert.equal(got.usage?.prompt_tokens, ref.promptTokens.length, prompt);
    }
    // Token ids as the prompt (no BOS added): the same as the text's encoding.
    const ids = tokenizer.encode(PROMPT, { bos: true });
    const byIds = await client.completions.create({ model: MODEL, prompt: ids, max_tokens: 40, temperature: 0 });
    const ref = generate(forward, tokenizer, PROMPT, { maxTokens: 40, sampling: GREEDY, seed: 0 });
    assert.equal(byIds.choices[0]!.text, ref.text);
  });
});

test('chat: whole and streamed agree; the reply has the assistant role', { timeout: 20_000 }, async () => {
  await withServer(async (client) => {
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'Answer from the scriptures.' },
      { role: 'user', content: 'Who built the ark?' },
    ];
    const whole = await client.chat.completions.create({ model: MODEL, messages, max_completion_tokens: 24, temperature: 0 });
    assert.match(whole.id, /^chatcmpl-/);
    assert.equal(whole.object, 'chat.completion');
    const c = whole.choices[0]!;
    assert.equal(c.message.role, 'assistant');
    assert.ok(typeof c.message.content === 'string' && c.message.content.length > 0);
    assert.ok(!/^\s/.test(c.message.content), 'the reply starts without whitespace');
    assert.ok(c.finish_reason === 'stop' || c.finish_reason === 'length');
    const prompt = 'System: Answer from the scriptures.\nUser: Who built the ark?\nAssistant:';
    assert.equal(whole.usage?.prompt_tokens, tokenizer.encode(prompt, { bos: true }).length);

    const streamed = await collectChat(await client.chat.completions.create({ model: MODEL, messages, max_tokens: 24, temperature: 0, stream: true }));
    assert.equal(streamed.roles[0], 'assistant');
    assert.equal(streamed.text[0], c.message.content);
    assert.equal(streamed.finish[0], c.finish_reason);
  });
});

test('stop strings: the text ends before the stop string, finish_reason stop, nothing of it streamed', { timeout: 20_000 }, async () => {
  await withServer(async (client) => {
    const full = (await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 40, temperature: 0 })).choices[0]!.text;
    // A word from the middle of the greedy text, starting with its space.
    const words = full.split(' ');
    const stop = ` ${words[Math.floor(words.length / 2)]}`;
    const expected = full.slice(0, full.indexOf(stop));
    const whole = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 40, temperature: 0, stop: [stop, 'never appears'] });
    assert.equal(whole.choices[0]!.text, expected);
    assert.equal(whole.choices[0]!.finish_reason, 'stop');
    assert.ok(whole.usage!.completion_tokens < 40);

    const streamed = await collectCompletion(await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 40, temperature: 0, stop, stream: true }));
    assert.equal(streamed.text[0], expected);
    assert.equal(streamed.finish[0], 'stop');

    // Five stop strings are one too many.
    await assert.rejects(client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 4, stop: ['a', 'b', 'c', 'd', 'e'] }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && /stop/.test(e.message));
  });
});

test('n=2 gives two choices, each its own request; seeds reproduce sampled text', { timeout: 20_000 }, async () => {
  await withServer(async (client) => {
    const greedy = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 12, temperature: 0, n: 2 });
    assert.deepEqual(greedy.choices.map((c) => c.index), [0, 1]);
    assert.equal(greedy.choices[0]!.text, greedy.choices[1]!.text);
    assert.equal(greedy.usage?.prompt_tokens, tokenizer.encode(PROMPT, { bos: true }).length);
    assert.equal(greedy.usage?.completion_tokens, 24);

    const sampled = (seed: number) => client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 24, temperature: 0.8, seed, n: 2 });
    const a = await sampled(7);
    const b = await sampled(7);
    assert.deepEqual(a.choices.map((c) => c.text), b.choices.map((c) => c.text));
    // Choice i samples with seed + i: choice 1 of seed 7 is choice 0 of seed 8.
    const c = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 24, temperature: 0.8, seed: 8 });
    assert.equal(c.choices[0]!.text, a.choices[1]!.text);

    const streamed = await collectCompletion(await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 24, temperature: 0.8, seed: 7, n: 2, stream: true }));
    assert.deepEqual(streamed.text, a.choices.map((x) => x.text));
  });
});

test('16 concurrent streams give the same text as one at a time', { timeout: 30_000 }, async () => {
  const starts = ['And God said', 'The LORD is', 'Blessed are', 'In the beginning', 'Then Jesus', 'And it came to pass', 'Thus saith', 'My son'];
  const jobs = Array.from({ length: 16 }, (_, i) => ({ prompt: starts[i % starts.length]!, max_tokens: 8 + (i % 5) * 4, seed: i, temperature: i % 2 === 0 ? 0 : 0.7 }));
  await withServer(async (client) => {
    const alone: string[] = [];
    for (const j of jobs) alone.push((await client.completions.create({ model: MODEL, ...j })).choices[0]!.text);
    const together = await Promise.all(jobs.map(async (j) => (await collectCompletion(await client.completions.create({ model: MODEL, ...j, stream: true }))).text[0]));
    assert.deepEqual(together, alone);
  });
});

test('errors come back in OpenAI format as the client\'s error classes', { timeout: 20_000 }, async () => {
  await withServer(async (client, server) => {
    await assert.rejects(client.completions.create({ model: 'gpt-4', prompt: PROMPT }),
      (e: unknown) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found');
    await assert.rejects(client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: -1 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'max_tokens');
    // Every problem is reported at once.
    await assert.rejects(client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: -1, temperature: 'x' as unknown as number }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && /max_tokens/.test(e.message) && /temperature/.test(e.message));
    await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], top_p: 2 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'top_p');
    const long = 'And '.repeat(model.spec.contextLength);
    await assert.rejects(client.completions.create({ model: MODEL, prompt: long, max_tokens: 4 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded');
    await assert.rejects(client.completions.create({ model: MODEL, prompt: PROMPT, logprobs: 3 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'logprobs');

    // What the client cannot send: bad JSON, unknown routes, wrong methods.
    const bad = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": ' });
    assert.equal(bad.status, 400);
    const body = await bad.json() as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(body.error['type'], 'invalid_request_error');
    assert.equal(body.error['code'], 'invalid_json');
    assert.equal((await fetch(`${server.url}/v1/nothing`)).status, 404);
    const wrongMethod = await fetch(`${server.url}/v1/completions`);
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.get('allow'), 'POST');
    const notObject = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1]' });
    assert.equal(notObject.status, 400);
  });
});

test('an API key is required when configured; bodies over the limit get 413', { timeout: 20_000 }, async () => {
  await withServer(async (client, server) => {
    const ok = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 2 });
    assert.equal(ok.choices.length, 1);
    const wrong = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(wrong.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 2 }),
      (e: unknown) => e instanceof OpenAI.AuthenticationError && e.status === 401);
    await assert.rejects(wrong.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
    const none = await fetch(`${server.url}/v1/models`);
    assert.equal(none.status, 401);
    // Health and metrics stay open.
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
    const big = await fetch(`${server.url}/v1/completions`, {
      method: 'POST', headers: { authorization: 'Bearer sekret', 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: 'x'.repeat(5000) }),
    });
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as { error: { code: string } }).error.code, 'payload_too_large');
  }, { apiKey: 'sekret', maxBodyBytes: 4096 });
});

test('models, health, metrics and the cluster view', { timeout: 20_000 }, async () => {
  await withServer(async (client, server) => {
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), [MODEL]);
    assert.equal((await client.models.retrieve(MODEL)).id, MODEL);
    await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 8, temperature: 0 });

    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    for (const family of ['hetis_ttft_seconds', 'hetis_tpot_seconds', 'hetis_prompt_tokens_total', 'hetis_generation_tokens_total',
      'hetis_requests_total', 'hetis_requests_waiting', 'hetis_requests_running', 'hetis_kv_blocks_used', 'hetis_kv_blocks_free',
      'hetis_kv_heads', 'hetis_migrations_total']) {
      assert.match(metrics, new RegExp(`^# TYPE ${family} `, 'm'), family);
    }
    assert.match(metrics, /^hetis_ttft_seconds_count 1$/m);
    assert.match(metrics, /^hetis_generation_tokens_total 8$/m);
    assert.match(metrics, /^hetis_requests_total\{finish_reason="length"\} 1$/m);
    assert.match(metrics, /^hetis_kv_blocks_free\{device="local"\} \d+$/m);

    const cluster = await (await fetch(`${server.url}/v1/cluster`)).json() as {
      devices: Record<string, unknown>[]; steps: Record<string, unknown>[];
    };
    assert.equal(cluster.devices.length, 1);
    const d = cluster.devices[0]!;
    for (const key of ['id', 'role', 'pid', 'heads', 'kv_used_blocks', 'kv_free_blocks', 'alive']) assert.ok(key in d, key);
    assert.equal(d['id'], 'local');
    assert.equal(d['role'], 'primary+attention');
    assert.equal(d['pid'], process.pid);
    assert.equal(d['alive'], true);
    assert.ok(cluster.steps.length > 0 && cluster.steps.length <= 20);
    for (const key of ['index', 'seconds', 'predicted_seconds', 'prefill_tokens', 'decode_tokens', 'parts']) assert.ok(key in cluster.steps[0]!, key);
  });
});

test('a client that leaves mid-stream ends its request at once', { timeout: 20_000 }, async () => {
  // Slow steps down so the request could not finish on its own during the test.
  const backend = inProcessBackend(model, tokenizer);
  const inner = backend.executor;
  backend.executor = { execute: async (step) => { await new Promise((r) => setTimeout(r, 20)); return inner.execute(step); } };
  await withServer(async (client, server) => {
    const stream = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 200, temperature: 0, stream: true });
    let chunks = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]!.text !== '') chunks++;
      if (chunks === 2) break; // leaving the loop aborts the HTTP request
    }
    const deadline = Date.now() + 5000;
    while (server.engine.counts().running + server.engine.counts().waiting > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(server.engine.counts(), { running: 0, waiting: 0 });
    const record = server.engine.records.at(-1)!;
    assert.equal(record.finishReason, 'abort');
    assert.ok(record.outputLength < 200);
    // The server still serves.
    const after = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 2, temperature: 0 });
    assert.equal(after.choices.length, 1);
  }, {}, backend);
});

test('a failing step fails its requests with a 500 and no internal detail; serving goes on', { timeout: 20_000 }, async () => {
  const backend = inProcessBackend(model, tokenizer);
  const inner = backend.executor;
  let fail = true;
  backend.executor = { execute: (step) => (fail ? Promise.reject(new Error('secret internal detail')) : inner.execute(step)) };
  const logged: string[] = [];
  await withServer(async (client) => {
    await assert.rejects(client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 4 }),
      (e: unknown) => e instanceof OpenAI.InternalServerError && !e.message.includes('secret'));
    const stream = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 4, stream: true });
    await assert.rejects(collectCompletion(stream), (e: unknown) => e instanceof OpenAI.APIError && !e.message.includes('secret'));
    fail = false;
    const ok = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 4 });
    assert.equal(ok.choices.length, 1);
  }, { log: (l) => logged.push(l) }, backend);
  assert.ok(logged.some((l) => l.includes('secret internal detail')), 'the cause is logged server-side');
});

test('closing the server answers requests in flight with 503 and stops', { timeout: 20_000 }, async () => {
  const backend = inProcessBackend(model, tokenizer);
  const inner = backend.executor;
  backend.executor = { execute: async (step) => { await new Promise((r) => setTimeout(r, 20)); return inner.execute(step); } };
  let closed = false;
  backend.close = () => { closed = true; return Promise.resolve(); };
  const server = await startServer(backend);
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const whole = client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 200 }).then(() => undefined, (e: unknown) => e);
  const stream = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 200, stream: true });
  const streamed = collectCompletion(stream).then(() => undefined, (e: unknown) => e);
  await new Promise((r) => setTimeout(r, 100));
  await server.close();
  const e1 = await whole;
  assert.ok(e1 instanceof OpenAI.InternalServerError && e1.status === 503, String(e1));
  const e2 = await streamed;
  assert.ok(e2 instanceof OpenAI.APIError && /shutting down/.test(e2.message), String(e2));
  assert.equal(closed, true);
  assert.deepEqual(server.engine.counts(), { running: 0, waiting: 0 });
});

test('a llama2.c model with a separate tokenizer serves the same greedy text as generate()', { timeout: 20_000 }, async (t) => {
  const skip = missingShared(stories260K, tok512);
  if (skip !== undefined) { t.skip(skip); return; }
  const tiny = loadModel(stories260K).model;
  const tinyTok = new Tokenizer(readTokenizerBin(tok512));
  const ref = generate(new LocalForward(tiny, getKernels()), tinyTok, 'Once upon a time', { maxTokens: 48, sampling: GREEDY, seed: 0 });
  await withServer(async (client) => {
    const got = await client.completions.create({ model: 'stories', prompt: 'Once upon a time', max_tokens: 48, temperature: 0 });
    assert.equal(got.choices[0]!.text, ref.text);
    assert.equal(got.choices[0]!.finish_reason, ref.finishReason);
    const streamed = await collectCompletion(await client.completions.create({ model: 'stories', prompt: 'Once upon a time', max_tokens: 48, temperature: 0, stream: true }));
    assert.equal(streamed.text[0], ref.text);
  }, {}, inProcessBackend(tiny, tinyTok, { name: 'stories' }));
});
