// Owns: the JSON objects the OpenAI API returns for completions and chat completions, whole and
// as stream chunks, built from plain results. Must not: decide anything (what to send, when).

export type FinishReasonWire = 'stop' | 'length';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** Which API, and the fields every object of one response shares. */
export interface ResponseMeta {
  kind: 'text' | 'chat';
  id: string;
  /** Unix seconds. */
  created: number;
  model: string;
}

export interface ChoiceOutput {
  text: string;
  finishReason: FinishReasonWire;
}

export function usageOf(promptTokens: number, completionTokens: number): Usage {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

/** The whole (non-streaming) response. */
export function responseBody(meta: ResponseMeta, choices: readonly ChoiceOutput[], usage: Usage): object {
  const head = { id: meta.id, object: meta.kind === 'text' ? 'text_completion' : 'chat.completion', created: meta.created, model: meta.model };
  return {
    ...head,
    choices: choices.map((c, index) => meta.kind === 'text'
      ? { index, text: c.text, logprobs: null, finish_reason: c.finishReason }
      : { index, message: { role: 'assistant', content: c.text, refusal: null }, logprobs: null, finish_reason: c.finishReason }),
    usage,
  };
}

/**
 * One stream chunk for choice `index`: its new text, and its finish reason on its last chunk.
 * `first` (chat): the chunk that opens the choice with the assistant role.
 */
export function choiceChunk(meta: ResponseMeta, index: number, text: string, finish: FinishReasonWire | null, opts: { first?: boolean; withUsage?: boolean } = {}): object {
  const choice = meta.kind === 'text'
    ? { index, text, logprobs: null, finish_reason: finish }
    : { index, delta: opts.first ? { role: 'assistant', content: text } : text === '' ? {} : { content: text }, logprobs: null, finish_reason: finish };
  return { ...chunkHead(meta), choices: [choice], ...(opts.withUsage ? { usage: null } : {}) };
}

/** The last chunk when the client asked for usage: no choices. */
export function usageChunk(meta: ResponseMeta, usage: Usage): object {
  return { ...chunkHead(meta), choices: [], usage };
}

function chunkHead(meta: ResponseMeta): { id: string; object: string; created: number; model: string } {
  return { id: meta.id, object: meta.kind === 'text' ? 'text_completion' : 'chat.completion.chunk', created: meta.created, model: meta.model };
}
