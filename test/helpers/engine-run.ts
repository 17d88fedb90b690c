// Driving an engine to the end in tests: every request submitted at once, steps back to back on
// a step-count clock, the greedy tokens of each request collected from the listener.
import { Engine, type EngineConfig } from '../../src/engine/engine.js';
import type { Executor } from '../../src/engine/types.js';

/** Tokens per request (request i has id String(i)); `during` runs before each step. */
export async function runToEnd(config: EngineConfig, exec: Executor, reqs: number[][], maxTokens: number, during?: (engine: Engine, step: number) => void): Promise<number[][]> {
  const out = reqs.map(() => [] as number[]);
  const engine = new Engine(config, exec, { onToken: (id, tok) => out[Number(id)]!.push(tok) });
  reqs.forEach((p, i) => engine.submit({ id: String(i), arrival: 0, promptTokens: p, promptLength: p.length, maxTokens }));
  for (let s = 0; engine.hasWork(); s++) {
    during?.(engine, s);
    await engine.step(s);
  }
  await engine.releaseFreed();
  return out;
}
