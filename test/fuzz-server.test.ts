// Fuzzing the HTTP server: 10,000 generated and mutated requests (bodies, paths, methods,
// headers) against a running server on the built-in model, 16 at a time over keep-alive
// connections. Every answer must be a 2xx (JSON, or an SSE stream ending in [DONE]) or a 4xx in
// OpenAI's error format; never a 5xx, never a dropped connection; and afterwards the server still
// gives the same greedy text as before and is healthy. Seeded: the same requests every run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { loadModel } from '../src/model/load.js';
import { Tokenizer } from '../src/model/tokenizer.js';
import { createRng, type Rng } from '../src/util/rng.js';
import { inProcessBackend } from '../src/server/backend.js';
import { startServer } from '../src/server/server.js';
import { repoRoot } from './helpers/shared.js';

const { model, vocab } = loadModel(resolve(repoRoot, 'models/hetis-kjv.gguf'));
const tokenizer = new Tokenizer(vocab!);
const MODEL = model.spec.name;
const SEED = 20_240_617;
const MAX_BODY = 32 << 10;
const BODIES = { fastCheck: 3000, mutated: 6000, raw: 1000 };
const CONCURRENCY = 16;

/** One request to send. */
interface Probe {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

// ---- generation -----------------------------------------------------------------------------

const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r.next() * xs.length)]!;
const int = (r: Rng, lo: number, hi: number): number => lo + Math.floor(r.next() * (hi - lo + 1));

const PROMPTS = ['In the beginning', 'And God said', 'The LORD is', '', ' ', 'é\u{1F600}', 'x'];
const nested = (depth: number): unknown => JSON.parse('['.repeat(depth) + ']'.repeat(depth));

/** Values of every type and of awkward sizes, put where a field goes. */
function oddValue(r: Rng): unknown {
  switch (int(r, 0, 24)) {
    case 0: return null;
    case 1: return pick(r, [true, false]);
    case 2: return pick(r, [0, -1, -0, 1, 2, 7, 255, 256, 257, 4096, 1.5, 0.999999, 1e-7, 5e-324]);
    case 3: return pick(r, [1e308, -1e308, 2 ** 53 + 1, -(2 ** 53) - 1, 2 ** 31, -(2 ** 31) - 1, 1e21]);
    case 4: return pick(r, ['NaN', 'Infinity', '-Infinity', '-0', '1e999', '0x10', '1', 'true', 'null', '']);
    case 5: return 'x'.repeat(pick(r, [1, 255, 256, 257, 4000]));
    case 6: return [];
    case 7: return {};
    case 8: return nested(int(r, 2, 50));
    case 9: return nested(pick(r, [500, 1000]));
    case 10: return Array.from({ length: int(r, 1, 20) }, () => int(r, -5, 5000));
    case 11: return Array.from({ length: pick(r, [255, 256, 300, 3000]) }, () => 1);
    case 12: return { role: 'user', content: 'hi' };
    case 13: return [{ role: pick(r, ['user', 'system', 'tool', 'assistant', 'x']), content: pick(r, ['a', null, 5, [], [{ type: 'text', text: 'b' }]]) }];
    case 14: return pick(r, ['\ud800', 'a\udc00b', '\u0000', '\u202e', '\ufeff', '\u{10FFFF}']);
    case 15: return pick(r, [MODEL, MODEL.toUpperCase(), `${MODEL} `, 'gpt-4']);
    case 16: return { include_usage: pick(r, [true, false, 'yes', 1, null]) };
    case 17: return [pick(r, ['a', 'b', '\n', 'the']), pick(r, ['c', 1, null])];
    case 18: return pick(r, [1, 2, 3, 4]);
    case 19: return pick(r, [0, 0.5, 1, 1.9, 2, 2.1]);
    case 20: return { type: pick(r, ['text', 'json_object', 'x']) };
    case 21: return Array.from({ length: int(r, 1, 5) }, () => oddValue(r));
    case 22: return Object.fromEntries(Array.from({ length: int(r, 1, 4) }, (_, i) => [`k${i}`, oddValue(r)]));
    case 23: return String.fromCharCode(...Array.from({ length: int(r, 1, 30) }, () => int(r, 0, 0xffff)));
    default: return int(r, -3, 300);
  }
}

/** A valid body (tiny max_tokens, so the valid ones are quick). */
function validBody(r: Rng): { path: string; body: Record<string, unknown> } {
  const common: Record<string, unknown> = { model: MODEL, max_tokens: int(r, 1, 3) };
  if (r.next() < 0.5) common['temperature'] = pick(r, [0, 0.7, 1, 2]);
  if (r.next() < 0.3) common['stream'] = true;
  if (r.next() < 0.2) common['stream_options'] = { include_usage: true };
  if (r.next() < 0.2) common['n'] = int(r, 1, 3);
  if (r.next() < 0.3) common['seed'] = int(r, -1000, 1000);
  if (r.next() < 0.2) common['stop'] = pick(r, ['\n', ['the', 'and'], 'LORD']);
  if (r.next() < 0.2) common['top_p'] = pick(r, [0, 0.5, 1]);
  if (r.next() < 0.1) common['top_k'] = pick(r, [-1, 0, 1, 40]);
  if (r.next() < 0.1) common['user'] = 'someone';
  if (r.next() < 0.5) {
    const prompt = r.next() < 0.8 ? pick(r, PROMPTS) : tokenizer.encode(pick(r, PROMPTS), { bos: true });
    return { path: '/v1/completions', body: { ...common, prompt } };
  }
  const messages = Array.from({ length: int(r, 1, 3) }, () => ({ role: pick(r, ['system', 'user', 'assistant', 'developer']), content: pick(r, PROMPTS) }));
  return { path: '/v1/chat/completions', body: { ...common, messages } };
}

const FIELDS = ['model', 'prompt', 'messages', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k', 'n', 'stream',
  'stream_options', 'stop', 'seed', 'logprobs', 'echo', 'best_of', 'logit_bias', 'tools', 'response_format', 'user', '__proto__', 'constructor'];

/** Changes a valid object: deletes, retypes, adds fields, deep inside too. */
function mutateObject(r: Rng, o: Record<string, unknown>): unknown {
  const ops = int(r, 1, 3);
  for (let i = 0; i < ops; i++) {
    const keys = Object.keys(o);
    switch (int(r, 0, 6)) {
      case 0: if (keys.length > 0) delete o[pick(r, keys)]; break;
      case 1: case 2: if (keys.length > 0) o[pick(r, keys)] = oddValue(r); break;
      case 3: o[pick(r, FIELDS)] = oddValue(r); break;
      case 4: { // inside messages / prompt
        const m = o['messages'];
        if (Array.isArray(m) && m.length > 0) {
          const msg = m[int(r, 0, m.length - 1)] as unknown;
          if (typeof msg === 'object' && msg !== null) (msg as Record<string, unknown>)[pick(r, ['role', 'content', 'name', 'tool_calls'])] = oddValue(r);
        } else if (Array.isArray(o['prompt'])) (o['prompt'] as unknown[])[0] = oddValue(r);
        break;
      }
      case 5: { // many messages
        const m = o['messages'];
        if (Array.isArray(m)) o['messages'] = Array.from({ length: pick(r, [255, 256, 257, 2000]) }, () => m[0]);
        break;
      }
      default: return pick(r, [oddValue(r), [o], nested(pick(r, [10, 1000])), JSON.stringify(o)]);
    }
  }
  return o;
}

const BAD_UTF8 = [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc3]];

/** Changes the bytes: truncation, random bytes, invalid UTF-8, a size at the limit. */
function mutateBytes(r: Rng, b: Buffer): Buffer {
  const at = int(r, 0, b.length);
  switch (int(r, 0, 6)) {
    case 0: return b.subarray(0, at);
    case 1: return Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: int(r, 1, 8) }, () => int(r, 0, 255))), b.subarray(at)]);
    case 2: { const c = Buffer.from(b); if (c.length > 0) c[Math.min(at, c.length - 1)] = int(r, 0, 255); return c; }
    case 3: { // invalid UTF-8 inside a string value when there is one
      const quote = b.indexOf('"', int(r, 0, Math.max(0, b.length - 1)));
      const i = quote >= 0 ? quote + 1 : at;
      return Buffer.concat([b.subarray(0, i), Buffer.from(pick(r, BAD_UTF8)), b.subarray(i)]);
    }
    case 4: return Buffer.from(Array.from({ length: int(r, 0, 200) }, () => int(r, 0, 255)));
    case 5: return Buffer.concat([b, Buffer.from(' '.repeat(int(r, 1, 3))), b]);
    default: return b;
  }
}

/** A valid body padded (inside its prompt) to exactly `size` bytes. */
function sized(size: number): Buffer {
  const shell = JSON.stringify({ model: MODEL, max_tokens: 1, prompt: '' });
  return Buffer.from(JSON.stringify({ model: MODEL, max_tokens: 1, prompt: 'a'.repeat(Math.max(0, size - shell.length)) }));
}

const PATHS = ['/v1/completions', '/v1/chat/completions', '/v1/models', `/v1/models/${MODEL}`, '/v1/models/%E0%A4%A', '/v1/models/%', '/v1/cluster',
  '/health', '/metrics', '/', '//', '/v1', '/v1/', '/v1/completions/', '/v1/completions?x=1', '/V1/COMPLETIONS', '/v1/../health',
  '/v1/completions%00', `/${'a'.repeat(3000)}`, '/v1/chat/completions#frag', '/%2e%2e/etc/passwd'];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'BREW', 'CONNECTX'];
const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json; charset=latin1', 'text/plain',
  'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', 'application/jsonx', 'application/json;;;'];

function headersFor(r: Rng, rare: boolean): Record<string, string> {
  const h: Record<string, string> = { 'content-type': rare ? pick(r, CONTENT_TYPES) : 'application/json' };
  if (h['content-type'] === '') delete h['content-type'];
  if (rare && r.next() < 0.5) h[pick(r, ['authorization', 'x-request-id', 'accept', 'accept-encoding', 'x-forwarded-for', 'cookie'])] =
    pick(r, ['Bearer x', 'Bearer', 'Basic Zm9vOmJhcg==', 'gzip', '*/*', 'a'.repeat(4000), 'text/event-stream', '1.2.3.4']);
  return h;
}

/** The mutator's probes: mostly mutated valid bodies on their own path, some raw or odd requests. */
function mutatedProbes(r: Rng, count: number, raw: number): Probe[] {
  const out: Probe[] = [];
  for (let i = 0; i < count; i++) {
    const { path, body } = validBody(r);
    const value = r.next() < 0.85 ? mutateObject(r, body) : body;
    let bytes: Buffer = Buffer.from(JSON.stringify(value) ?? 'undefined');
    if (r.next() < 0.25) bytes = mutateBytes(r, bytes);
    const rare = r.next() < 0.1;
    out.push({ method: rare && r.next() < 0.5 ? pick(r, METHODS) : 'POST', path: rare && r.next() < 0.5 ? pick(r, PATHS) : path, headers: headersFor(r, rare), body: bytes });
  }
  for (let i = 0; i < raw; i++) {
    const kind = int(r, 0, 4);
    const depth = pick(r, [1000, 10_000, 16_000]); // deeper than JSON.stringify goes: written as text
    const body = kind === 0 ? sized(MAX_BODY + pick(r, [-1, 0, 1, 1000]))
      : kind === 1 ? Buffer.from(Array.from({ length: int(r, 0, 2000) }, () => int(r, 0, 255)))
        : kind === 2 ? undefined
          : kind === 3 ? Buffer.from(`{"model": "${MODEL}", "${pick(r, ['messages', 'prompt', 'stop', 'n'])}": ${'['.repeat(depth)}${']'.repeat(depth)}}`)
            : Buffer.from(JSON.stringify(validBody(r).body));
    const method = pick(r, METHODS);
    out.push({ method, path: pick(r, PATHS), headers: headersFor(r, true), body: method === 'GET' || method === 'HEAD' ? undefined : body });
  }
  return out;
}

/** fast-check's probes: records whose fields are drawn from valid and invalid values. */
function fastCheckProbes(count: number): Probe[] {
  const valueOf = (valid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> => fc.oneof(
    { arbitrary: valid, weight: 6 }, { arbitrary: fc.constant(null), weight: 1 }, { arbitrary: fc.anything({ maxDepth: 3 }), weight: 2 },
    { arbitrary: fc.double(), weight: 1 }, { arbitrary: fc.string({ unit: 'binary' }), weight: 1 });
  const message = fc.record({ role: valueOf(fc.constantFrom('system', 'user', 'assistant', 'developer')), content: valueOf(fc.string({ maxLength: 40 })) }, { requiredKeys: [] });
  const common = {
    model: valueOf(fc.constant(MODEL)),
    max_tokens: valueOf(fc.integer({ min: 1, max: 3 })),
    temperature: valueOf(fc.double({ min: 0, max: 2, noNaN: true })),
    top_p: valueOf(fc.double({ min: 0, max: 1, noNaN: true })),
    top_k: valueOf(fc.integer({ min: -1, max: 50 })),
    n: valueOf(fc.integer({ min: 1, max: 2 })),
    seed: valueOf(fc.integer()),
    stream: valueOf(fc.boolean()),
    stream_options: valueOf(fc.record({ include_usage: fc.boolean() })),
    stop: valueOf(fc.oneof(fc.string({ minLength: 1, maxLength: 5 }), fc.array(fc.string({ minLength: 1, maxLength: 5 }), { maxLength: 5 }))),
  };
  const completion = fc.record({ ...common, prompt: valueOf(fc.oneof(fc.string({ maxLength: 40 }), fc.array(fc.integer({ min: 0, max: 4095 }), { minLength: 1, maxLength: 20 }))) },
    { requiredKeys: ['model', 'prompt'] });
  const chat = fc.record({ ...common, messages: valueOf(fc.array(message, { minLength: 1, maxLength: 4 })) }, { requiredKeys: ['model', 'messages'] });
  const probe = fc.oneof(
    completion.map((b) => ({ path: '/v1/completions', body: JSON.stringify(b) })),
    chat.map((b) => ({ path: '/v1/chat/completions', body: JSON.stringify(b) })),
    fc.json({ maxDepth: 4 }).map((j) => ({ path: '/v1/completions', body: j })),
    fc.string({ unit: 'binary', maxLength: 200 }).map((s) => ({ path: '/v1/chat/completions', body: s })),
  );
  return fc.sample(probe, { seed: SEED, numRuns: count }).map((p) => ({
    method: 'POST', path: p.path, headers: { 'content-type': 'application/json' }, body: Buffer.from(p.body),
  }));
}

// ---- sending and checking -------------------------------------------------------------------

function send(base: string, agent: Agent, p: Probe): Promise<Answer> {
  return new Promise((resolvePromise, reject) => {
    const headers = { ...p.headers, ...(p.body !== undefined ? { 'content-length': String(p.body.length) } : {}) };
    const req = request(`${base}${p.path}`, { method: p.method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    // After a 413 the server closes without reading the rest: writing it may fail, the answer came.
    req.on('error', reject);
    req.end(p.body);
  });
}

/** What is wrong with an answer, if anything. */
function problem(p: Probe, a: Answer): string | undefined {
  if (a.status >= 500) return `a ${a.status}: ${a.body.toString('utf8').slice(0, 300)}`;
  if (a.status < 200 || (a.status >= 300 && a.status < 400)) return `status ${a.status}`;
  if (p.method === 'HEAD') return undefined; // no body
  const type = String(a.headers['content-type'] ?? '');
  const text = a.body.toString('utf8');
  if (a.status < 300) {
    if (type.startsWith('text/event-stream')) {
      const events = text.split('\n\n').filter((e) => e !== '');
      if (events.at(-1) !== 'data: [DONE]') return `a stream that does not end in [DONE]: ${text.slice(-300)}`;
      for (const e of events.slice(0, -1)) {
        if (!e.startsWith('data: ')) return `not an event: ${e.slice(0, 100)}`;
        const v = JSON.parse(e.slice(6)) as Record<string, unknown>;
        if ('error' in v) return `an error event: ${e.slice(0, 300)}`;
      }
      return undefined;
    }
    if (type.startsWith('text/plain')) return p.path.startsWith('/metrics') ? undefined : `text/plain on ${p.path}`;
    try { JSON.parse(text); } catch { return `2xx with a body that is not JSON: ${text.slice(0, 100)}`; }
    return undefined;
  }
  if (!type.startsWith('application/json')) return `a ${a.status} that is not JSON (${type}): ${text.slice(0, 100)}`;
  let body: { error?: Record<string, unknown> };
  try { body = JSON.parse(text) as typeof body; } catch { return `a ${a.status} body that is not JSON: ${text.slice(0, 100)}`; }
  const e = body.error;
  if (e === undefined || typeof e['message'] !== 'string' || typeof e['type'] !== 'string' || typeof e['code'] !== 'string' || !('param' in e)) {
    return `a ${a.status} not in OpenAI's error format: ${text.slice(0, 200)}`;
  }
  if (/\n\s+at /.test(String(e['message']))) return 'a stack trace in an error message';
  return undefined;
}

async function greedy(base: string): Promise<string> {
  const r = await fetch(`${base}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt: 'In the beginning', max_tokens: 24, temperature: 0 }),
  });
  assert.equal(r.status, 200);
  return ((await r.json()) as { choices: { text: string }[] }).choices[0]!.text;
}

test('fuzz: 10,000 generated and mutated requests get a 2xx or an OpenAI-format 4xx; the server keeps serving', { timeout: 180_000 }, async (t) => {
  const r = createRng(SEED);
  const probes = [...fastCheckProbes(BODIES.fastCheck), ...mutatedProbes(r, BODIES.mutated, BODIES.raw)];
  assert.equal(probes.length, 10_000);
  const faults: string[] = [];
  const server = await startServer(inProcessBackend(model, tokenizer), {
    maxBodyBytes: MAX_BODY, defaultMaxTokens: 3,
    log: (l) => { if (/\n\s+at /.test(l)) faults.push(l); },
  });
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const t0 = performance.now();
  try {
    const before = await greedy(server.url);
    const problems: string[] = [];
    const tally = new Map<string, number>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < probes.length) {
        const p = probes[next++]!;
        let a: Answer;
        try {
          a = await send(server.url, agent, p);
        } catch (e) {
          problems.push(`${p.method} ${p.path.slice(0, 60)}: no answer (${String(e)}) to ${p.body?.subarray(0, 200).toString('utf8')}`);
          continue;
        }
        const what = problem(p, a);
        if (what !== undefined) problems.push(`${p.method} ${p.path.slice(0, 60)}: ${what} for ${p.body?.subarray(0, 200).toString('utf8')}`);
        let code = String(a.status);
        try { code += ` ${String((JSON.parse(a.body.toString('utf8')) as { error: { code: string } }).error.code)}`; } catch { /* not an error body */ }
        tally.set(code, (tally.get(code) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const seconds = (performance.now() - t0) / 1000;
    t.diagnostic(`${probes.length} requests in ${seconds.toFixed(1)} s: ${[...tally].sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k}: ${v}`).join(', ')}`);
    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} problems`);
    assert.deepEqual(faults, []);
    // The fuzzing reached the engine and most of the checks.
    const ok = [...tally].filter(([k]) => k.startsWith('2')).reduce((s, [, v]) => s + v, 0);
    assert.ok(ok >= 1000, `only ${ok} requests succeeded`);
    assert.ok(tally.size >= 10, `only ${tally.size} kinds of answer`);

    assert.equal(await greedy(server.url), before);
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(server.engine.counts(), { running: 0, waiting: 0 });
    for (const d of server.engine.deviceView()) assert.deepEqual([d.heads, d.usedBlocks], [0, 0]);
  } finally {
    agent.destroy();
    await server.close();
  }
});
