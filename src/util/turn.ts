// Owns: yielding one turn of the event loop. Must not: wait for anything else.

/** One turn of the event loop (what an engine does between two steps it issues). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
