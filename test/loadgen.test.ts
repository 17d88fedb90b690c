// The serving benchmark's load generator (server/loadgen.ts) and `hetis bench`, against a real
// server on the built-in model; no assertion on how fast anything is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { loadModel } from '../src/model/load.js';
import { Tokenizer } from '../src/model/tokenizer.js';
import { inProcessBackend } from '../src/server/backend.js';
import { apiBase, createSseParser, makePrompts, runLoad, sweep, type LoadSummary } from '../src/server/loadgen.js';
import { startServer, type RunningServer, type ServerOptions } from '../src/server/server.js';
import { HetisError } from '../src/util/errors.js';
import { repoRoot } from './helpers/shared.js';

const { model, vocab } = loadModel(resolve(repoRoot, 'models/hetis-kjv.gguf'));
const tokenizer = new Tokenizer(vocab!);

async function withServer(fn: (server: RunningServer) => Promise<void>, opts: ServerOptions = {}): Promise<void> {
  const server = await startServer(inProcessBackend(model, tokenizer), opts);
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

async function generatedTokens(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^hetis_generation_tokens_total (\d+)/m.exec(text);
  assert.ok(m, 'metrics has hetis_generation_tokens_total');
  return Number(m[1]);
}

/** A port nothing listens on (it was free a moment ago). */
async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function assertOrdered(s: LoadSummary): void {
  for (const p of [s.ttftS, s.tpotS, s.e2eS]) {
    assert.ok(p.p50 > 0, `p50 ${p.p50} > 0`);
    assert.ok(p.p50 <= p.p95 && p.p95 <= p.p99, `ordered ${p.p50} <= ${p.p95} <= ${p.p99}`);
  }
}

test('the SSE parser gives the same events however the text is split', { timeout: 5_000 }, () => {
  const stream = 'data: {"a":1}\n\n: comment\r\ndata: {"b":"x\\ny"}\r\n\r\nevent: e\ndata: one\ndata: two\n\ndata: [DONE]\n\n';
  const whole: string[] = [];
  const p = createSseParser((d) => whole.push(d));
  p.push(stream);
  p.end();
  assert.deepEqual(whole, ['{"a":1}', '{"b":"x\\ny"}', 'one\ntwo', '[DONE]']);
  for (let cut = 1; cut < stream.length; cut++) {
    const got: string[] = [];
    const q = createSseParser((d) => got.push(d));
    q.push(stream.slice(0, cut));
    q.push(stream.slice(cut));
    q.end();
    assert.deepEqual(got, whole, `split at ${cut}`);
  }
  const byChar: string[] = [];
  const r = createSseParser((d) => byChar.push(d));
  for (const ch of stream) r.push(ch);
  r.end();
  assert.deepEqual(byChar, whole);
});

test('prompts: generated ones are seeded and about the asked length; URLs get /v1/', { timeout: 5_000 }, () => {
  const a = makePrompts({ kind: 'generated', tokens: 32 }, 5, 7);
  assert.deepEqual(a, makePrompts({ kind: 'generated', tokens: 32 }, 5, 7));
  assert.notDeepEqual(a, makePrompts({ kind: 'generated', tokens: 32 }, 5, 8));
  for (const p of a) {
    const n = tokenizer.encode(p).length;
    assert.ok(Math.abs(n - 32) <= 4, `'${p}' is ${n} tokens, about 32`);
  }
  assert.deepEqual(makePrompts({ kind: 'list', prompts: ['x', 'y'] }, 3, 0), ['x', 'y', 'x']);
  assert.equal(makePrompts({ kind: 'builtin' }, 1, 0).length, 1);
  assert.equal(apiBase('http://h:1').href, 'http://h:1/v1/');
  assert.equal(apiBase('http://h:1/v1/').href, 'http://h:1/v1/');
  assert.throws(() => apiBase('h:1:x'), HetisError);
});

test('a short run completes every request; tokens match the server; percentiles ordered', { timeout: 15_000 }, async () => {
  await withServer(async (server) => {
    const before = await generatedTokens(server.url);
    const s = await runLoad({ url: server.url, rate: 20, count: 10, maxTokens: 8, prompts: { kind: 'generated', tokens: 16 }, seed: 1 });
    assert.equal(s.model, model.spec.name);
    assert.equal(s.rate, 20);
    assert.equal(s.sent, 10);
    assert.equal(s.completed, 10, JSON.stringify(s.failures));
    assert.equal(s.failed, 0);
    assert.equal(s.outputTokens, (await generatedTokens(server.url)) - before);
    for (const r of s.requests) {
      assert.ok(r.ok && r.completionTokens >= 1 && r.completionTokens <= 8);
      assert.ok(r.finishReason === 'length' || r.finishReason === 'stop');
      assert.ok(r.ttftS !== undefined && r.ttftS > 0 && r.ttftS <= r.e2eS);
      assert.ok(r.promptTokens !== undefined && Math.abs(r.promptTokens - 16) <= 3);
    }
    assert.ok(s.requests.some((r) => r.tpotS !== undefined), 'some request has 2+ tokens');
    assertOrdered(s);
    assert.ok(s.durationS > 0 && s.throughputReqS > 0 && s.throughputTokS > 0);
    assert.ok(Math.abs(s.throughputTokS * s.durationS - s.outputTokens) < 1e-6);
  });
});

test('a sweep returns one summary per rate; a rejected request is a counted failure', { timeout: 15_000 }, async () => {
  await withServer(async (server) => {
    const rows = await sweep([10, 40], { url: `${server.url}/v1`, count: 4, maxTokens: 4, prompts: { kind: 'builtin' } });
    assert.deepEqual(rows.map((r) => [r.rate, r.completed, r.failed]), [[10, 4, 0], [40, 4, 0]]);
    const bad = await runLoad({ url: server.url, model: 'no-such-model', rate: 50, count: 3, maxTokens: 4, prompts: { kind: 'builtin' } });
    assert.equal(bad.completed, 0);
    assert.equal(bad.failed, 3);
    assert.equal(bad.failures.length, 1);
    assert.equal(bad.failures[0]!.reason, 'HTTP 404 model_not_found');
    assert.equal(bad.failures[0]!.count, 3);
    assert.match(bad.failures[0]!.example, /no-such-model/);
    assert.ok(Number.isNaN(bad.ttftS.p50));
    await assert.rejects(sweep([5], { url: server.url, model: 'no-such-model', count: 1, maxTokens: 4, prompts: { kind: 'builtin' } }), /warm-up request failed: HTTP 404 model_not_found/);
  });
});

test('no server, a refused key and bad options are clear errors', { timeout: 10_000 }, async () => {
  const port = await freePort();
  const opts = { rate: 1, count: 1, maxTokens: 4, prompts: { kind: 'builtin' } as const };
  await assert.rejects(runLoad({ ...opts, url: `http://127.0.0.1:${port}` }), (e: unknown) => e instanceof HetisError && e.message.startsWith(`no server answering at http://127.0.0.1:${port}`));
  await assert.rejects(runLoad({ ...opts, url: 'http://127.0.0.1:1', rate: 0 }), /rate must be a positive number/);
  await assert.rejects(runLoad({ ...opts, url: 'http://127.0.0.1:1', maxTokens: 0 }), /--max-tokens/);
  await withServer(async (server) => {
    await assert.rejects(runLoad({ ...opts, url: server.url }), /refused the API key/);
    const s = await runLoad({ ...opts, url: server.url, apiKey: 'sekrit' });
    assert.equal(s.completed, 1);
  }, { apiKey: 'sekrit' });
});

test('a request that outlives its timeout is cut and counted; no socket stays open', { timeout: 10_000 }, async () => {
  // A server that lists a model, then answers the prompt 'finish' in full and starts every other stream and never ends it.
  const stuck = http.createServer((req, res) => {
    if (req.url === '/v1/models') { res.setHeader('content-type', 'application/json'); res.end('{"object":"list","data":[{"id":"m"}]}'); return; }
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"index":0,"text":"And","finish_reason":null}]}\n\n');
      if ((JSON.parse(body) as { prompt: string }).prompt !== 'finish') return;
      res.write('data: {"choices":[{"index":0,"text":" God","finish_reason":"length"}]}\n\n');
      res.end('data: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4}}\n\ndata: [DONE]\n\n');
    });
  });
  await new Promise<void>((r) => stuck.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(stuck.address() as AddressInfo).port}`;
    const s = await runLoad({ url, rate: 100, count: 3, maxTokens: 4, prompts: { kind: 'list', prompts: ['hang', 'finish', 'finish'] }, timeoutS: 0.3 });
    assert.deepEqual([s.completed, s.failed, s.outputTokens], [2, 1, 4]);
    assert.deepEqual(s.failures.map((f) => [f.reason, f.count]), [['timeout', 1]]);
    await new Promise((r) => setTimeout(r, 50));
    const open = await new Promise<number>((r, j) => stuck.getConnections((e, n) => (e ? j(e) : r(n))));
    assert.equal(open, 0);
  } finally {
    stuck.closeAllConnections();
    await new Promise<void>((r) => stuck.close(() => r()));
  }
});

interface CliResult { code: number | null; stdout: string; stderr: string }

/** `hetis bench ...` as a child process (asynchronous: the server lives in this process). */
function runBench(args: string[]): Promise<CliResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), 'bench', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const done = new Promise<CliResult>((r) => child.on('close', (code) => r({ code, stdout, stderr })));
  const timer = setTimeout(() => { if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL'); }, 15_000);
  return done.finally(() => clearTimeout(timer));
}

test('hetis bench --json prints one line per rate; no server and bad flags are one-line errors', { timeout: 20_000 }, async () => {
  await withServer(async (server) => {
    const port = await freePort();
    const [ok, none, bad] = await Promise.all([
      runBench(['--url', server.url, '--rates', '10,20', '--count', '4', '--max-tokens', '4', '--prompt-tokens', '8', '--json']),
      runBench(['--url', `http://127.0.0.1:${port}`, '--count', '1']),
      runBench(['--url', server.url, '--rates', '1,x']),
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const lines = ok.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 2);
    assert.deepEqual(lines.map((l) => l['rate']), [10, 20]);
    for (const l of lines) {
      for (const k of ['throughput_tok_s', 'throughput_req_s', 'ttft_p50_s', 'ttft_p95_s', 'tpot_p50_s', 'tpot_p95_s', 'e2e_p50_s', 'e2e_p95_s']) {
        assert.equal(typeof l[k], 'number', k);
      }
      assert.equal(l['completed'], 4);
      assert.equal(l['failed'], 0);
    }
    assert.equal(none.code, 1);
    assert.equal(none.stderr.trim(), `hetis: no server answering at http://127.0.0.1:${port} (ECONNREFUSED)`);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr.trim(), /^hetis: --rates must be positive numbers .* got '1,x'$/);
  });
});
