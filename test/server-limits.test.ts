// The server's limits, through raw sockets and node:http: bad input of every kind gets a 4xx in
// OpenAI's error format and the server keeps serving; slow clients are cut off; a stream whose
// client stops reading is ended; a full queue answers 429; connections are capped; a client
// that leaves frees its KV at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { loadModel } from '../src/model/load.js';
import { Tokenizer } from '../src/model/tokenizer.js';
import { localEngineConfig, SERVING_TUNING } from '../src/runtime/local-devices.js';
import { inProcessBackend, type ServeBackend } from '../src/server/backend.js';
import { startServer, type RunningServer, type ServerOptions } from '../src/server/server.js';
import { repoRoot } from './helpers/shared.js';

const { model, vocab } = loadModel(resolve(repoRoot, 'models/hetis-kjv.gguf'));
const tokenizer = new Tokenizer(vocab!);
const MODEL = model.spec.name;
const PROMPT = 'In the beginning';
const JSON_TYPE = { 'content-type': 'application/json' };

async function withServer(fn: (server: RunningServer) => Promise<void>, opts: ServerOptions = {}, backend: ServeBackend = inProcessBackend(model, tokenizer)): Promise<void> {
  const server = await startServer(backend, opts);
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

/** A backend whose steps each take `ms` longer (so requests stay in the engine during a test). */
function slowBackend(ms: number, maxRunning = SERVING_TUNING.maxRunning): ServeBackend {
  const backend = inProcessBackend(model, tokenizer, { tuning: { ...SERVING_TUNING, maxRunning } });
  const inner = backend.executor;
  backend.executor = { execute: async (step) => { await sleep(ms); return inner.execute(step); } };
  return backend;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** One request over a fresh connection; `body` is sent as is. */
function send(url: string, method: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<Reply> {
  return new Promise((resolvePromise, reject) => {
    const req = request(`${url}${path}`, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const post = (url: string, path: string, body: unknown, headers: Record<string, string> = JSON_TYPE): Promise<Reply> =>
  send(url, 'POST', path, headers, typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));

/** Asserts an OpenAI error body with this status and code; returns its message. */
function assertError(r: Reply, status: number, code: string, what: string): string {
  assert.equal(r.status, status, `${what}: ${r.text}`);
  assert.match(String(r.headers['content-type']), /^application\/json/, what);
  const body = JSON.parse(r.text) as { error: Record<string, unknown> };
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type'], what);
  assert.equal(body.error['code'], code, what);
  assert.equal(typeof body.error['message'], 'string', what);
  assert.ok(!/\n\s+at /.test(String(body.error['message'])), `${what}: no stack trace`);
  return String(body.error['message']);
}

async function greedy(url: string): Promise<string> {
  const r = await post(url, '/v1/completions', { model: MODEL, prompt: PROMPT, max_tokens: 8, temperature: 0 });
  assert.equal(r.status, 200, r.text);
  return (JSON.parse(r.text) as { choices: { text: string }[] }).choices[0]!.text;
}

/** Waits until `cond` holds (polling), failing after `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Opens a raw connection. */
function open(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((r, reject) => {
    const s = connect(Number(port), hostname, () => r(s));
    s.on('error', reject);
  });
}

/** Everything the server sends on `s` until it closes the connection (or `ms` pass). */
function readUntilClose(s: Socket, ms: number): Promise<{ text: string; closed: boolean }> {
  return new Promise((r) => {
    let text = '';
    const timer = setTimeout(() => r({ text, closed: false }), ms);
    s.on('data', (c: Buffer) => { text += c.toString('utf8'); });
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); r({ text, closed: true }); });
  });
}

/** Status and JSON error code of a raw HTTP response. */
function parseRaw(text: string): { status: number; code: string | undefined } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  let code: string | undefined;
  try { code = (JSON.parse(body) as { error: { code: string } }).error.code; } catch { code = undefined; }
  return { status, code };
}

test('bad input of every kind: a 4xx in OpenAI format, and the server keeps serving', { timeout: 30_000 }, async () => {
  await withServer(async (server) => {
    const before = await greedy(server.url);
    const ctx = model.spec.contextLength;
    const ok = { model: MODEL, prompt: PROMPT, max_tokens: 2 };
    const chat = { model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 };
    const cases: [string, Promise<Reply>, number, string][] = [
      ['malformed JSON', post(server.url, '/v1/completions', '{"model": "x", '), 400, 'invalid_json'],
      ['empty body', post(server.url, '/v1/completions', ''), 400, 'invalid_json'],
      ['invalid UTF-8', post(server.url, '/v1/completions', Buffer.from([...Buffer.from('{"model": "'), 0xc3, 0x28, ...Buffer.from('", "prompt": "x"}')])), 400, 'invalid_json'],
      ['a lone surrogate', post(server.url, '/v1/completions', '{"model": "hetis-kjv", "prompt": "a\\ud800b"}'), 400, 'invalid_request'],
      ['not an object', post(server.url, '/v1/completions', '[1, 2]'), 400, 'invalid_request'],
      ['wrong types', post(server.url, '/v1/completions', { model: 7, prompt: { a: 1 }, stream: 'yes', n: '2' }), 400, 'invalid_request'],
      ['unknown model', post(server.url, '/v1/completions', { ...ok, model: 'gpt-4' }), 404, 'model_not_found'],
      ['a huge model name', post(server.url, '/v1/completions', { ...ok, model: 'm'.repeat(100_000) }), 404, 'model_not_found'],
      ['prompt over the context', post(server.url, '/v1/completions', { ...ok, prompt: 'And '.repeat(ctx) }), 400, 'context_length_exceeded'],
      ['a prompt far over the context', post(server.url, '/v1/completions', { ...ok, prompt: 'x'.repeat(900_000) }), 400, 'context_length_exceeded'],
      ['token ids over the context', post(server.url, '/v1/completions', { ...ok, prompt: Array.from({ length: ctx }, () => 5) }), 400, 'context_length_exceeded'],
      ['token id out of range', post(server.url, '/v1/completions', { ...ok, prompt: [1, 1e9] }), 400, 'invalid_request'],
      ['max_tokens 0', post(server.url, '/v1/completions', { ...ok, max_tokens: 0 }), 400, 'invalid_request'],
      ['max_tokens over the context', post(server.url, '/v1/completions', { ...ok, max_tokens: ctx + 1 }), 400, 'invalid_request'],
      ['max_tokens 1e300', post(server.url, '/v1/completions', { ...ok, max_tokens: 1e300 }), 400, 'invalid_request'],
      ['max_tokens a string', post(server.url, '/v1/completions', { ...ok, max_tokens: '5' }), 400, 'invalid_request'],
      ['temperature "NaN"', post(server.url, '/v1/completions', { ...ok, temperature: 'NaN' }), 400, 'invalid_request'],
      ['temperature -1', post(server.url, '/v1/completions', { ...ok, temperature: -1 }), 400, 'invalid_request'],
      ['temperature 3', post(server.url, '/v1/completions', { ...ok, temperature: 3 }), 400, 'invalid_request'],
      ['top_p 1.5', post(server.url, '/v1/completions', { ...ok, top_p: 1.5 }), 400, 'invalid_request'],
      ['top_k -2', post(server.url, '/v1/completions', { ...ok, top_k: -2 }), 400, 'invalid_request'],
      ['seed 1.5', post(server.url, '/v1/completions', { ...ok, seed: 1.5 }), 400, 'invalid_request'],
      ['n 9', post(server.url, '/v1/completions', { ...ok, n: 9 }), 400, 'invalid_request'],
      ['5 stop strings', post(server.url, '/v1/completions', { ...ok, stop: ['a', 'b', 'c', 'd', 'e'] }), 400, 'invalid_request'],
      ['a stop string of 257 characters', post(server.url, '/v1/completions', { ...ok, stop: ['s'.repeat(257)] }), 400, 'invalid_request'],
      ['an unsupported parameter', post(server.url, '/v1/completions', { ...ok, logit_bias: { 5: 100 } }), 400, 'invalid_request'],
      ['257 messages', post(server.url, '/v1/chat/completions', { ...chat, messages: Array.from({ length: 257 }, () => ({ role: 'user', content: 'a' })) }), 400, 'invalid_request'],
      ['257 content parts', post(server.url, '/v1/chat/completions', { ...chat, messages: [{ role: 'user', content: Array.from({ length: 257 }, () => ({ type: 'text', text: 'a' })) }] }), 400, 'invalid_request'],
      ['deeply nested messages', post(server.url, '/v1/chat/completions', `{"model": "${MODEL}", "messages": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`), 400, 'invalid_request'],
      ['tool calls', post(server.url, '/v1/chat/completions', { ...chat, messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'x' }] }] }), 400, 'invalid_request'],
      ['text/plain', post(server.url, '/v1/completions', ok, { 'content-type': 'text/plain' }), 415, 'unsupported_media_type'],
      ['no Content-Type', post(server.url, '/v1/completions', ok, {}), 415, 'unsupported_media_type'],
      ['a form', post(server.url, '/v1/completions', 'model=x', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type'],
      ['charset latin1', post(server.url, '/v1/completions', ok, { 'content-type': 'application/json; charset=latin1' }), 415, 'unsupported_media_type'],
      ['unknown path', send(server.url, 'GET', '/v2/anything', {}), 404, 'not_found'],
      ['wrong method', send(server.url, 'PUT', '/v1/completions', JSON_TYPE, '{}'), 405, 'method_not_allowed'],
      ['bad percent-encoding', send(server.url, 'GET', '/v1/models/%E0%A4%A', {}), 400, 'invalid_request'],
    ];
    for (const [what, reply, status, code] of cases) {
      const r = await reply;
      const message = assertError(r, status, code, what);
      assert.ok(message.length < 2000, `${what}: a short message (${message.length} characters)`);
      assert.match(String(r.headers['x-request-id']), /^[0-9a-f]{32}$/, what);
    }
    // charset utf-8 is fine, and so is a small valid body after all that.
    assert.equal((await post(server.url, '/v1/completions', ok, { 'content-type': 'Application/JSON; charset="UTF-8"' })).status, 200);
    assert.equal(await greedy(server.url), before);
    assert.equal((await send(server.url, 'GET', '/health', {})).status, 200);
  });
});

test('a body over the limit gets 413 and the rest is not read', { timeout: 20_000 }, async () => {
  await withServer(async (server) => {
    // Declared too large: answered from the headers, the connection closed.
    const s = await open(server.url);
    const reply = readUntilClose(s, 5000);
    s.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${100 << 20}\r\n\r\n`);
    let written = 0;
    const chunk = Buffer.alloc(64 << 10, 0x20);
    // Write as long as the socket takes it; the server must stop taking it long before 100 MiB.
    for (let i = 0; i < 1600 && !s.destroyed; i++) {
      if (!s.write(chunk)) await Promise.race([new Promise((r) => s.once('drain', r)), sleep(200)]);
      if (s.writableLength > 0) break; // the server stopped reading
      written += chunk.length;
    }
    const r = await reply;
    assert.equal(parseRaw(r.text).status, 413, r.text.slice(0, 200));
    assert.equal(parseRaw(r.text).code, 'payload_too_large');
    assert.equal(r.closed, true);
    assert.ok(written < 32 << 20, `the server read ${written} bytes of a body it refused`);
    s.destroy();

    // Chunked, no length: cut off once over the limit.
    const c = await open(server.url);
    const chunked = readUntilClose(c, 5000);
    c.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    const piece = 'x'.repeat(60_000);
    for (let i = 0; i < 40 && !c.destroyed; i++) { c.write(`${piece.length.toString(16)}\r\n${piece}\r\n`); await sleep(5); }
    const rc = await chunked;
    assert.equal(parseRaw(rc.text).status, 413, rc.text.slice(0, 200));
    assert.equal(rc.closed, true);
    assert.equal((await send(server.url, 'GET', '/health', {})).status, 200);
  }, { maxBodyBytes: 1 << 20 });
});

test('slow clients: headers and bodies that do not arrive in time get 408 and the connection closes', { timeout: 20_000 }, async () => {
  const logged: string[] = [];
  await withServer(async (server) => {
    // Headers never finished (slowloris).
    const h = await open(server.url);
    const hr = readUntilClose(h, 8000);
    h.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => { if (!h.destroyed) h.write('X-Slow: 1\r\n'); }, 100);
    const headersReply = await hr;
    clearInterval(drip);
    assert.equal(headersReply.closed, true);
    assert.deepEqual(parseRaw(headersReply.text), { status: 408, code: 'request_timeout' });

    // Headers in, the body never finished.
    const b = await open(server.url);
    const br = readUntilClose(b, 8000);
    b.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model": ');
    const bodyReply = await br;
    assert.equal(bodyReply.closed, true);
    assert.deepEqual(parseRaw(bodyReply.text), { status: 408, code: 'request_timeout' });

    // Malformed requests and huge headers get JSON errors too.
    const m = await open(server.url);
    const mr = readUntilClose(m, 5000);
    m.write('NOT HTTP AT ALL\r\n\r\n');
    assert.deepEqual(parseRaw((await mr).text), { status: 400, code: 'invalid_request' });
    const big = await open(server.url);
    const bigr = readUntilClose(big, 5000);
    big.write(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 << 10)}\r\n\r\n`);
    assert.deepEqual(parseRaw((await bigr).text), { status: 431, code: 'headers_too_large' });

    // A client that leaves mid-body is no server fault.
    const gone = await open(server.url);
    gone.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"mo');
    await sleep(50);
    gone.destroy();
    await sleep(200);
    assert.equal((await send(server.url, 'GET', '/health', {})).status, 200);
    assert.ok(!logged.some((l) => /\n\s+at /.test(l)), logged.join('\n'));
  }, { headersTimeoutMs: 500, bodyTimeoutMs: 500, log: (l) => logged.push(l) });
});

/**
 * A backend that needs no model: a context of `contextLength` tokens, and every step samples the
 * vocabulary's longest token at once, so a stream can outgrow the kernel's socket buffers.
 */
function fastBackend(contextLength: number): ServeBackend {
  const spec = { ...model.spec, contextLength };
  const eos = [tokenizer.eosId, tokenizer.bosId];
  let token = 0;
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    if (!eos.includes(id) && tokenizer.piece(id).length > tokenizer.piece(token).length) token = id;
  }
  return {
    modelName: MODEL, spec, tokenizer,
    engineConfig: localEngineConfig(spec, [{ id: 'local', primary: true, kvCapacityBytes: 1 << 30 }], eos),
    executor: { execute: (plan) => Promise.resolve({ seconds: 0, sampled: Object.fromEntries(plan.chunks.filter((c) => c.sample).map((c) => [c.request, token])) }) },
    devices: () => [{ id: 'local', role: 'primary+attention' }],
    close: () => Promise.resolve(),
  };
}

test('a streaming client that stops reading is cut off and its engine work freed', { timeout: 40_000 }, async () => {
  // 8 choices of 16k tokens: far more than loopback's socket buffers (a few MiB) hold. Cut by
  // the buffer cap, then (with a cap it cannot reach) by the stall timer.
  for (const [maxStreamBufferBytes, why] of [[1 << 20, 'bytes buffered'], [1 << 30, 'read nothing for']] as const) {
    const logged: string[] = [];
    await withServer(async (server) => {
      const s = await open(server.url);
      const body = JSON.stringify({ model: MODEL, prompt: 'And', max_tokens: 16_000, n: 8, stream: true });
      s.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      s.pause(); // read nothing: the server's writes back up
      s.on('error', () => {});
      await until(() => logged.some((l) => l.includes('stream cut')), 25_000, 'the stream to be cut');
      assert.ok(logged.some((l) => l.includes(why)), logged.join('\n'));
      await until(() => server.engine.counts().running + server.engine.counts().waiting === 0, 5000, 'the engine to empty');
      const ended = server.engine.records.slice(-8);
      assert.deepEqual(ended.map((r) => r.finishReason), Array.from({ length: 8 }, () => 'abort'));
      assert.ok(ended.every((r) => r.outputLength < 16_000));
      for (const d of server.engine.deviceView()) assert.deepEqual([d.heads, d.usedBlocks], [0, 0]);
      s.destroy();
      const r = await post(server.url, '/v1/completions', { model: MODEL, prompt: PROMPT, max_tokens: 4 });
      assert.equal(r.status, 200, r.text);
    }, { streamStallMs: 200, maxStreamBufferBytes, log: (l) => logged.push(l) }, fastBackend(16_384));
  }
});

test('a full queue answers 429 with Retry-After; the server stays healthy', { timeout: 30_000 }, async () => {
  // One running and one queued request fill the engine.
  await withServer(async (server) => {
    const streams = [0, 1].map(() => {
      const ac = new AbortController();
      const done = fetch(`${server.url}/v1/completions`, {
        method: 'POST', headers: JSON_TYPE, signal: ac.signal,
        body: JSON.stringify({ model: MODEL, prompt: PROMPT, max_tokens: 200, stream: true }),
      }).then(async (res) => { for await (const _ of res.body!) { /* read */ } }).catch(() => undefined);
      return { ac, done };
    });
    await until(() => server.engine.counts().running + server.engine.counts().waiting === 2, 5000, 'two requests in the engine');
    const r = await post(server.url, '/v1/completions', { model: MODEL, prompt: PROMPT, max_tokens: 2 });
    assertError(r, 429, 'rate_limit_exceeded', 'queue full');
    assert.equal(r.headers['retry-after'], '1');
    assert.equal((JSON.parse(r.text) as { error: { type: string } }).error.type, 'requests');
    assertError(await post(server.url, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'x' }] }), 429, 'rate_limit_exceeded', 'chat');
    assert.equal((await send(server.url, 'GET', '/health', {})).status, 200);
    // Room again once they leave.
    for (const s of streams) s.ac.abort();
    await Promise.all(streams.map((s) => s.done));
    await until(() => server.engine.counts().running + server.engine.counts().waiting === 0, 5000, 'the engine to empty');
    assert.ok((await greedy(server.url)).length > 0);
    // n counts: two choices never fit in a queue of one beyond one running.
    assertError(await post(server.url, '/v1/completions', { model: MODEL, prompt: PROMPT, max_tokens: 2, n: 3 }), 429, 'rate_limit_exceeded', 'n=3');
  }, { maxQueued: 1 }, slowBackend(20, 1));
});

test('connections over maxConnections are closed at once; the others are served', { timeout: 20_000 }, async () => {
  await withServer(async (server) => {
    const a = await open(server.url);
    const b = await open(server.url);
    await sleep(50);
    const c = await open(server.url);
    const cr = await readUntilClose(c, 3000);
    assert.deepEqual(cr, { text: '', closed: true });
    const ar = readUntilClose(a, 3000);
    a.end('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(parseRaw((await ar).text).status, 200);
    b.destroy();
    await sleep(50);
    assert.equal((await send(server.url, 'GET', '/health', {})).status, 200);
  }, { maxConnections: 2 });
});

test('a client that disconnects mid-stream frees its KV and heads at once', { timeout: 20_000 }, async () => {
  await withServer(async (server) => {
    const body = JSON.stringify({ model: MODEL, prompt: PROMPT, max_tokens: 200, n: 2, temperature: 0, stream: true });
    await new Promise<void>((resolvePromise, reject) => {
      const req = request(`${server.url}/v1/completions`, { method: 'POST', headers: JSON_TYPE, agent: false }, (res) => {
        let chunks = 0;
        res.on('data', () => {
          if (++chunks === 3) { req.destroy(); resolvePromise(); }
        });
        res.on('error', () => {});
      });
      req.on('error', (e) => { if (!req.destroyed) reject(e); });
      req.end(body);
    });
    assert.ok(server.engine.counts().running + server.engine.counts().waiting > 0 || server.engine.records.some((r) => r.finishReason === 'abort'));
    await until(() => server.engine.counts().running === 0 && server.engine.counts().waiting === 0, 2000, 'the engine to empty');
    const aborted = server.engine.records.slice(-2);
    assert.deepEqual(aborted.map((r) => r.finishReason), ['abort', 'abort']);
    assert.ok(aborted.every((r) => r.outputLength < 200));
    // Freed at once, not at some later step.
    for (const d of server.engine.deviceView()) {
      assert.equal(d.heads, 0, `${d.id} heads`);
      assert.equal(d.usedBlocks, 0, `${d.id} blocks`);
      assert.equal(d.headTokens, 0, `${d.id} head-tokens`);
    }
  }, {}, slowBackend(20));
});

test('security: loopback by default, the key on every /v1 route, generic 500s, a request id on every answer', { timeout: 20_000 }, async () => {
  const backend = inProcessBackend(model, tokenizer);
  const inner = backend.executor;
  let fail = false;
  backend.executor = { execute: (step) => (fail ? Promise.reject(new Error('/secret/path at line 3')) : inner.execute(step)) };
  await withServer(async (server) => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const auth = { ...JSON_TYPE, authorization: 'Bearer k3y' };
    for (const [method, path] of [['GET', '/v1/models'], ['GET', `/v1/models/${MODEL}`], ['GET', '/v1/cluster'], ['POST', '/v1/completions'], ['POST', '/v1/chat/completions']] as const) {
      for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'Bearer k3y-and-more' }, { authorization: 'Basic k3y' }, { authorization: 'k3y' }]) {
        assertError(await send(server.url, method, path, { ...JSON_TYPE, ...headers }, method === 'POST' ? '{}' : undefined), 401, 'invalid_api_key', `${method} ${path} ${JSON.stringify(headers)}`);
      }
    }
    assert.equal((await send(server.url, 'GET', '/v1/models', { authorization: 'bearer   k3y ' })).status, 200);
    assert.equal((await send(server.url, 'GET', '/health', {})).status, 200);
    const ok = await post(server.url, '/v1/completions', { model: MODEL, prompt: PROMPT, max_tokens: 2 }, auth);
    assert.equal(ok.status, 200);
    const id = (JSON.parse(ok.text) as { id: string }).id;
    assert.equal(id, `cmpl-${String(ok.headers['x-request-id'])}`);
    fail = true;
    const bad = await post(server.url, '/v1/completions', { model: MODEL, prompt: PROMPT, max_tokens: 2 }, auth);
    const message = assertError(bad, 500, 'request_failed', 'failed step');
    assert.ok(!message.includes('secret'), message);
  }, { apiKey: 'k3y' }, backend);
});
