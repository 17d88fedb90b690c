// Soak: the real server on a local cluster under mixed load (completions and chat, streaming or
// not, greedy and sampled, stop strings, n=2, bad requests, clients that hang up mid-stream)
// while attention workers are killed at random and restarted. Prints one JSON line every
// interval and a final one: requests accepted, completed, failed (by reason), cancelled by the
// client, rejected (4xx), lost (accepted but never finished: must be 0), greedy outputs that
// differ from the fault-free single-process output (must be 0), worker kills and rejoins.
//
//   npx tsx bench/soak.ts [--minutes 10] [--rate 4] [--kill-every 20] [--seed 1]

import { resolve, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/model/load.js';
import { Tokenizer } from '../src/model/tokenizer.js';
import { GREEDY } from '../src/model/sampler.js';
import { LocalForward } from '../src/runtime/forward.js';
import { generate } from '../src/runtime/generate.js';
import { getKernels } from '../src/runtime/kernel-select.js';
import { localClusterBackend } from '../src/server/cluster-backend.js';
import { startServer } from '../src/server/server.js';
import { createRng } from '../src/util/rng.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '4' },
    'kill-every': { type: 'string', default: '20' },
    interval: { type: 'string', default: '30' },
    seed: { type: 'string', default: '1' },
  },
});
const SECONDS = Number(values.minutes) * 60;
const RATE = Number(values.rate);
const KILL_EVERY = Number(values['kill-every']);
const INTERVAL = Number(values.interval);
const rng = createRng(Number(values.seed));
const emit = (o: object): void => { process.stdout.write(`${JSON.stringify(o)}\n`); };
const started = performance.now();
const elapsedNow = (): number => (performance.now() - started) / 1000;

const MODEL = join(root, 'models/hetis-kjv.gguf');
const loaded = loadModel(MODEL);
const tokenizer = new Tokenizer(loaded.vocab!);
const forward = new LocalForward(loaded.model, getKernels('auto'));
const PROMPTS = ['And God said', 'In the beginning', 'Then the king', 'Behold, the LORD', 'And it came to pass', 'Now the people', 'And Moses spake', 'Blessed are they'];
const expected = new Map<string, string>();
const greedyText = (p: string, n: number): string => {
  const key = `${p}\u0000${n}`;
  let t = expected.get(key);
  if (t === undefined) { t = generate(forward, tokenizer, p, { maxTokens: n, sampling: GREEDY, seed: 0 }).text; expected.set(key, t); }
  return t;
};

const counts = { sent: 0, accepted: 0, completed: 0, failed: 0, cancelled: 0, rejected: 0, mismatched: 0, kills: 0, rejoins: 0 };
const failures: Record<string, number> = {};
const rejections: Record<string, number> = {};
const open = new Set<number>();

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)]!;

/** Reads an SSE body; returns the text and whether a finish_reason arrived, or throws on an error event. */
async function readStream(res: Response, chat: boolean, hangUpAfter: number | undefined, ac: AbortController): Promise<{ text: string; finished: boolean; cancelled: boolean }> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '', text = '', finished = false, events = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const line = buf.slice(0, i).replace(/^data: /, '');
      buf = buf.slice(i + 2);
      if (line === '[DONE]') return { text, finished, cancelled: false };
      const ev = JSON.parse(line) as { error?: { message: string }; choices?: { index: number; text?: string; delta?: { content?: string }; finish_reason: string | null }[] };
      if (ev.error) throw new Error(`stream error: ${ev.error.message}`);
      for (const c of ev.choices ?? []) {
        if (c.index === 0) text += chat ? c.delta?.content ?? '' : c.text ?? '';
        if (c.finish_reason) finished = true;
      }
      if (hangUpAfter !== undefined && ++events >= hangUpAfter) { ac.abort(); return { text, finished, cancelled: true }; }
    }
  }
  return { text, finished, cancelled: false };
}

async function one(url: string, id: number): Promise<void> {
  counts.sent++;
  const r = rng.next();
  const chat = rng.next() < 0.3;
  const stream = rng.next() < 0.6;
  const greedy = rng.next() < 0.6;
  const prompt = pick(PROMPTS);
  const maxTokens = 1 + Math.floor(rng.next() * 48);
  let body: unknown = chat
    ? { model: 'hetis-kjv', messages: [{ role: 'user', content: prompt }], max_tokens: maxTokens, temperature: greedy ? 0 : 0.8, seed: id, stream }
    : { model: 'hetis-kjv', prompt, max_tokens: maxTokens, temperature: greedy ? 0 : 0.8, seed: id, stream, ...(rng.next() < 0.15 ? { n: 2 } : {}), ...(rng.next() < 0.15 ? { stop: [' the'] } : {}) };
  let raw: string | undefined;
  if (r < 0.05) raw = '{"model": "hetis-kjv", "prompt": '; // malformed JSON
  else if (r < 0.10) body = { model: 'hetis-kjv', prompt, max_tokens: -3 };
  else if (r < 0.12) body = { model: 'no-such-model', prompt };
  const hangUp = stream && rng.next() < 0.05 ? 1 + Math.floor(rng.next() * 5) : undefined;
  const ac = new AbortController();
  open.add(id);
  try {
    const res = await fetch(`${url}/v1/${chat ? 'chat/completions' : 'completions'}`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: raw ?? JSON.stringify(body), signal: ac.signal,
    });
    if (res.status >= 400 && res.status < 500) {
      const e = await res.json() as { error?: { code?: string; type?: string } };
      rejections[`${res.status} ${e.error?.code ?? e.error?.type ?? ''}`] = (rejections[`${res.status} ${e.error?.code ?? e.error?.type ?? ''}`] ?? 0) + 1;
      counts.rejected++;
      return;
    }
    if (res.status !== 200) { counts.accepted++; counts.failed++; failures[`http ${res.status}`] = (failures[`http ${res.status}`] ?? 0) + 1; await res.text(); return; }
    counts.accepted++;
    let text: string, finished: boolean;
    if (stream) {
      const s = await readStream(res, chat, hangUp, ac);
      if (s.cancelled) { counts.cancelled++; return; }
      ({ text, finished } = s);
    } else {
      const j = await res.json() as { choices: { text?: string; message?: { content: string }; finish_reason: string }[] };
      text = chat ? j.choices[0]!.message!.content : j.choices[0]!.text!;
      finished = j.choices.every((c) => typeof c.finish_reason === 'string');
    }
    if (!finished) { failures['no finish_reason'] = (failures['no finish_reason'] ?? 0) + 1; counts.failed++; return; }
    counts.completed++;
    const plain = !chat && greedy && (body as { stop?: unknown }).stop === undefined;
    if (plain && text !== greedyText(prompt, maxTokens)) counts.mismatched++;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    counts.failed++;
    failures[msg.slice(0, 80)] = (failures[msg.slice(0, 80)] ?? 0) + 1;
  } finally {
    open.delete(id);
  }
}

async function main(): Promise<void> {
  // The fault-free outputs, computed before the clock starts (not in the server's event loop).
  process.stderr.write('[soak] computing the single-process greedy outputs\n');
  for (const p of PROMPTS) for (let n = 1; n <= 48; n++) greedyText(p, n);
  const backend = await localClusterBackend({
    name: 'hetis-kjv', spec: loaded.model.spec, tokenizer, modelPath: MODEL, onRejoin: () => { counts.rejoins++; },
    log: (line) => process.stderr.write(`[soak ${elapsedNow().toFixed(1)}s] ${line}\n`),
    layout: { primary: { id: 'primary', tp: 1, stages: 1, kvCapacityBytes: 1 << 20 }, attention: [{ id: 'attn-1', kvCapacityBytes: 8 << 20 }, { id: 'attn-2', kvCapacityBytes: 4 << 20, slowdown: 2 }], blockSize: 16 },
  });
  const server = await startServer(backend, { port: 0 });
  const t0 = performance.now();
  const elapsed = (): number => (performance.now() - t0) / 1000;
  const pending: Promise<void>[] = [];
  let next = 0, id = 0, nextKill = KILL_EVERY, nextReport = INTERVAL;
  const report = (final: boolean): void => emit({
    bench: 'soak', final, elapsed_s: +elapsed().toFixed(1), rate: RATE, ...counts,
    in_flight: open.size, lost: final ? open.size : undefined, failures, rejections,
    preemptions: server.engine.records.reduce((a, r) => a + r.preemptions, 0),
  });
  while (elapsed() < SECONDS) {
    const now = elapsed();
    if (now >= next) { pending.push(one(server.url, id++)); next += -Math.log(1 - rng.next()) / RATE; }
    if (now >= nextKill) {
      nextKill += KILL_EVERY;
      const victim = pick(backend.devices().filter((d) => d.role === 'attention'));
      try { process.kill(victim.pid!, 'SIGKILL'); counts.kills++; } catch { /* already gone */ }
    }
    if (now >= nextReport) { nextReport += INTERVAL; report(false); }
    await new Promise((r) => setTimeout(r, Math.max(0, Math.min(next, nextKill, nextReport) - elapsed()) * 1000));
  }
  // Drain: every accepted request must end within a minute.
  let drainTimer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(pending), new Promise((r) => { drainTimer = setTimeout(r, 60_000); })]);
  clearTimeout(drainTimer);
  report(true);
  await server.close();
}

main().catch((e: unknown) => { process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`); process.exit(1); });
