// The load client of the fidelity study (scripts/fidelity-run.ts starts it): its own process, as
// a real server's clients are, so its work (building and parsing HTTP requests) is not done on the
// engine's event loop. Reads one JSON job from stdin, sends its requests open-loop (each at its
// arrival time after the start, whatever the server's pace; greedy unless a request names a
// temperature, non-streaming, prompts as token ids), and writes one JSON line: the id the server
// gave each accepted request (with its max_tokens and sampling), the failures, and the wall time.

interface Job {
  url: string;
  model: string;
  requests: { arrival: number; prompt: number[]; maxTokens: number; sampling?: { temperature: number; topP: number } }[];
}

async function main(): Promise<void> {
  let input = '';
  for await (const chunk of process.stdin) input += String(chunk);
  const job = JSON.parse(input) as Job;
  const accepted: { id: string; maxTokens: number; sampling?: { temperature: number; topP: number } }[] = [];
  const failures: string[] = [];
  const send = async (r: Job['requests'][number]): Promise<void> => {
    try {
      const res = await fetch(`${job.url}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: job.model, prompt: r.prompt, max_tokens: r.maxTokens, temperature: r.sampling?.temperature ?? 0, ...(r.sampling ? { top_p: r.sampling.topP } : {}) }),
      });
      const body = await res.json() as { id?: string; error?: { message?: string } };
      if (!res.ok || body.id === undefined) { failures.push(`HTTP ${res.status}: ${body.error?.message ?? ''}`); return; }
      accepted.push({ id: `${body.id}-0`, maxTokens: r.maxTokens, ...(r.sampling ? { sampling: r.sampling } : {}) });
    } catch (e) {
      failures.push(e instanceof Error ? e.message : String(e));
    }
  };
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  for (const r of job.requests) {
    const wait = r.arrival * 1000 - (performance.now() - t0);
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    pending.push(send(r));
  }
  await Promise.all(pending);
  process.stdout.write(`${JSON.stringify({ accepted, failures, wall: (performance.now() - t0) / 1000 })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`fidelity client: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
