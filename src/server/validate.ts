// Owns: checking the JSON bodies of /v1/completions and /v1/chat/completions field by field
// and turning them into plain parameters, reporting every problem (path and message) at once.
// Must not: tokenize, know the engine, or read anything but the body (limits come in).

import { ApiError, shown } from './errors.js';
import type { ChatMessage, ChatRole } from './chat-template.js';

/** One problem with a request body. */
export interface Issue {
  /** Where, as a JSON path: `messages[1].content`, `stop`. */
  path: string;
  message: string;
}

/** What a completion asks the engine for, validated; defaults applied except max_tokens. */
export interface GenerationParams {
  model: string;
  /** Absent: the server's default (see docs/serving.md). */
  maxTokens: number | undefined;
  /** 0 = greedy (so is anything below GREEDY_BELOW). Default 1, as OpenAI's. */
  temperature: number;
  /** In (0, 1]; 1 = no limit. */
  topP: number;
  /** 0 = no limit; 1 = greedy (also what top_p 0 becomes). */
  topK: number;
  /** Absent: the server draws one. Choice i samples with seed + i. */
  seed: number | undefined;
  stop: string[];
  n: number;
  stream: boolean;
  /** stream_options.include_usage: a last chunk with usage and no choices. */
  includeUsage: boolean;
}

export type PromptInput = { kind: 'text'; text: string } | { kind: 'tokens'; tokens: number[] };

export interface CompletionParams extends GenerationParams {
  prompt: PromptInput;
}

export interface ChatParams extends GenerationParams {
  messages: ChatMessage[];
}

export interface Limits {
  vocabSize: number;
  /** The model's context, tokens: the largest max_tokens. */
  contextLength: number;
  /** Largest `n`. */
  maxChoices: number;
  /** Most stop strings (OpenAI: 4). */
  maxStops: number;
  /** Longest stop string, characters (code points). */
  maxStopLength: number;
  /** Most chat messages. */
  maxMessages: number;
  /** Most parts in one message's content array. */
  maxContentParts: number;
}

export const DEFAULT_LIMITS: Omit<Limits, 'vocabSize' | 'contextLength'> = {
  maxChoices: 8, maxStops: 4, maxStopLength: 256, maxMessages: 256, maxContentParts: 256,
};

/**
 * Temperatures below this sample greedily (as vLLM's): 1 / temperature would overflow the
 * sampler's arithmetic long before the distribution differed from argmax.
 */
export const GREEDY_BELOW = 1e-5;

/** Parameters OpenAI defines that this server does not implement: accepted only at their default. */
const UNSUPPORTED_UNLESS_DEFAULT: readonly string[] = [
  'echo', 'suffix', 'best_of', 'logprobs', 'top_logprobs', 'logit_bias', 'presence_penalty', 'frequency_penalty',
  'tools', 'tool_choice', 'functions', 'function_call', 'response_format',
];

/** Checks a /v1/completions body; throws one invalid_request ApiError listing every issue. */
export function parseCompletionBody(body: unknown, limits: Limits): CompletionParams {
  const f = new Fields(body);
  const prompt = readPrompt(f, limits.vocabSize);
  const common = readCommon(f, limits, 'max_tokens');
  f.throwIfAny();
  return { ...common, prompt: prompt! };
}

/** Checks a /v1/chat/completions body; throws one invalid_request ApiError listing every issue. */
export function parseChatBody(body: unknown, limits: Limits): ChatParams {
  const f = new Fields(body);
  const messages = readMessages(f, limits);
  const common = readCommon(f, limits, f.has('max_completion_tokens') ? 'max_completion_tokens' : 'max_tokens');
  f.throwIfAny();
  return { ...common, messages: messages! };
}

function readCommon(f: Fields, limits: Limits, maxTokensKey: string): GenerationParams {
  const model = f.string('model', { required: true }) ?? '';
  const maxTokens = f.number(maxTokensKey, { integer: true, min: 1, max: limits.contextLength });
  const temperature = f.number('temperature', { min: 0, max: 2 }) ?? 1;
  const topP = f.number('top_p', { min: 0, max: 1 }) ?? 1;
  const topK = f.number('top_k', { integer: true, min: -1 }) ?? 0; // an extension (vLLM's): -1 or 0 = no limit
  const seed = f.number('seed', { integer: true });
  const n = f.number('n', { integer: true, min: 1, max: limits.maxChoices }) ?? 1;
  const stream = f.boolean('stream') ?? false;
  const includeUsage = f.object('stream_options', (o) => o.boolean('include_usage')) ?? false;
  const stop = readStop(f, limits);
  for (const key of UNSUPPORTED_UNLESS_DEFAULT) f.unsupportedUnlessDefault(key);
  return {
    model, maxTokens, seed, n, stream, includeUsage, stop,
    temperature: temperature < GREEDY_BELOW ? 0 : temperature,
    // top_p 0 keeps only the most likely token: greedy.
    topP: topP === 0 ? 1 : topP,
    topK: topP === 0 ? 1 : Math.max(0, topK),
  };
}

function readStop(f: Fields, limits: Limits): string[] {
  const v = f.get('stop');
  if (v === undefined) return [];
  const list = typeof v === 'string' ? [v] : Array.isArray(v) ? v : undefined;
  if (list === undefined) { f.issue('stop', 'must be a string or an array of strings'); return []; }
  if (list.length > limits.maxStops) f.issue('stop', `at most ${limits.maxStops} stop strings, got ${list.length}`);
  const out: string[] = [];
  list.forEach((s, i) => {
    const path = typeof v === 'string' ? 'stop' : `stop[${i}]`;
    if (typeof s !== 'string') f.issue(path, `must be a string, got ${typeName(s)}`);
    else if (s === '') f.issue(path, 'must not be empty');
    else if (s.length > limits.maxStopLength && codePoints(s) > limits.maxStopLength) f.issue(path, `must be at most ${limits.maxStopLength} characters, got ${codePoints(s)}`);
    else if (wellFormed(f, path, s)) out.push(s);
  });
  return out;
}

function readPrompt(f: Fields, vocabSize: number): PromptInput | undefined {
  const v = f.get('prompt');
  if (v === undefined) { f.issue('prompt', 'is required'); return undefined; }
  if (typeof v === 'string') return wellFormed(f, 'prompt', v) ? { kind: 'text', text: v } : undefined;
  if (!Array.isArray(v) || v.length === 0) {
    f.issue('prompt', 'must be a string, an array of token ids, or an array of one of these');
    return undefined;
  }
  if (v.every((x) => typeof x === 'number')) return readTokenIds(f, 'prompt', v, vocabSize);
  if (v.length > 1) {
    f.issue('prompt', `one prompt per request is supported, got ${v.length}; send one request per prompt`);
    return undefined;
  }
  const only: unknown = v[0];
  if (typeof only === 'string') return wellFormed(f, 'prompt[0]', only) ? { kind: 'text', text: only } : undefined;
  if (Array.isArray(only) && only.length > 0) return readTokenIds(f, 'prompt[0]', only, vocabSize);
  f.issue('prompt[0]', 'must be a string or a non-empty array of token ids');
  return undefined;
}

function readTokenIds(f: Fields, path: string, ids: readonly unknown[], vocabSize: number): PromptInput | undefined {
  const bad = ids.findIndex((x) => !(typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < vocabSize));
  if (bad >= 0) {
    f.issue(`${path}[${bad}]`, `token ids must be integers in [0, ${vocabSize}), got ${shown(ids[bad])}`);
    return undefined;
  }
  return { kind: 'tokens', tokens: ids as number[] };
}

const ROLES: Record<string, ChatRole> = { system: 'system', developer: 'system', user: 'user', assistant: 'assistant' };

/** Message fields that would change the reply and that this server cannot honour. */
const UNSUPPORTED_IN_MESSAGE: readonly string[] = ['tool_calls', 'function_call', 'audio'];

function readMessages(f: Fields, limits: Limits): ChatMessage[] | undefined {
  const v = f.get('messages');
  if (!Array.isArray(v) || v.length === 0) {
    f.issue('messages', v === undefined ? 'is required' : 'must be a non-empty array of messages');
    return undefined;
  }
  if (v.length > limits.maxMessages) {
    f.issue('messages', `at most ${limits.maxMessages} messages, got ${v.length}`);
    return undefined;
  }
  const out: ChatMessage[] = [];
  v.forEach((m: unknown, i) => {
    const path = `messages[${i}]`;
    if (!isObject(m)) { f.issue(path, 'must be an object with role and content'); return; }
    const role = typeof m['role'] === 'string' ? ROLES[m['role']] : undefined;
    if (role === undefined) {
      f.issue(`${path}.role`, `must be one of ${Object.keys(ROLES).join(', ')}, got ${shown(m['role'] ?? null)}`);
    }
    for (const key of UNSUPPORTED_IN_MESSAGE) {
      const x = m[key];
      if (!(x === undefined || x === null || (Array.isArray(x) && x.length === 0))) f.issue(`${path}.${key}`, 'is not supported by this server');
    }
    const content = readContent(f, `${path}.content`, m['content'], role === 'assistant', limits.maxContentParts);
    if (role !== undefined && content !== undefined) out.push({ role, content });
  });
  return out;
}

/** A message's text: a string, or an array of `{type: 'text', text}` parts joined. */
function readContent(f: Fields, path: string, v: unknown, nullable: boolean, maxParts: number): string | undefined {
  if (typeof v === 'string') return wellFormed(f, path, v) ? v : undefined;
  if ((v === null || v === undefined) && nullable) return '';
  if (Array.isArray(v)) {
    if (v.length > maxParts) { f.issue(path, `at most ${maxParts} parts, got ${v.length}`); return undefined; }
    let text = '';
    let ok = true;
    v.forEach((p: unknown, j) => {
      if (isObject(p) && p['type'] === 'text' && typeof p['text'] === 'string') {
        if (wellFormed(f, `${path}[${j}].text`, p['text'])) text += p['text'];
        else ok = false;
      } else { ok = false; f.issue(`${path}[${j}]`, 'only text parts ({"type": "text", "text": ...}) are supported'); }
    });
    return ok ? text : undefined;
  }
  f.issue(path, 'must be a string or an array of text parts');
  return undefined;
}

/**
 * False (and an issue) when `s` holds a lone surrogate (JSON's "\ud800" escape): it has no
 * UTF-8 form, and encoding would silently replace it.
 */
function wellFormed(f: Fields, path: string, s: string): boolean {
  if (!LONE_SURROGATE.test(s)) return true;
  f.issue(path, 'must be valid Unicode (it holds a lone surrogate)');
  return false;
}

const LONE_SURROGATE = /\p{Surrogate}/u;

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Issues listed in one error message; the rest are counted. */
const MAX_ISSUES_SHOWN = 20;

/** Reads fields of one JSON object, collecting issues; null counts as absent (as OpenAI's clients send it). */
class Fields {
  private readonly issues: Issue[];
  private readonly obj: Record<string, unknown>;

  constructor(body: unknown, private readonly prefix = '', issues?: Issue[]) {
    this.issues = issues ?? [];
    if (isObject(body)) this.obj = body;
    else {
      this.obj = {};
      this.issue('', 'must be a JSON object');
    }
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  get(key: string): unknown {
    const v = this.obj[key];
    return v === null ? undefined : v;
  }

  issue(key: string, message: string): void {
    const path = this.prefix === '' ? key : key === '' ? this.prefix : `${this.prefix}.${key}`;
    this.issues.push({ path: path === '' ? 'body' : path, message });
  }

  string(key: string, opts: { required?: boolean } = {}): string | undefined {
    const v = this.get(key);
    if (v === undefined) { if (opts.required) this.issue(key, 'is required'); return undefined; }
    if (typeof v !== 'string') { this.issue(key, `must be a string, got ${typeName(v)}`); return undefined; }
    return v;
  }

  number(key: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    const kind = opts.integer ? 'an integer' : 'a number';
    if (typeof v !== 'number' || !Number.isFinite(v) || (opts.integer && !Number.isSafeInteger(v))) {
      this.issue(key, `must be ${kind}, got ${typeName(v)}`);
      return undefined;
    }
    const { min, max } = opts;
    if ((min !== undefined && v < min) || (max !== undefined && v > max)) {
      const range = min !== undefined && max !== undefined ? `in [${min}, ${max}]` : min !== undefined ? `>= ${min}` : `<= ${max}`;
      this.issue(key, `must be ${kind} ${range}, got ${v}`);
      return undefined;
    }
    return v;
  }

  boolean(key: string): boolean | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') { this.issue(key, `must be a boolean, got ${typeName(v)}`); return undefined; }
    return v;
  }

  /** Reads a nested object with `read`; its issues carry the nested path. */
  object<T>(key: string, read: (f: Fields) => T): T | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (!isObject(v)) { this.issue(key, `must be an object, got ${typeName(v)}`); return undefined; }
    const path = this.prefix === '' ? key : `${this.prefix}.${key}`;
    return read(new Fields(v, path, this.issues));
  }

  /** An OpenAI parameter we do not implement: fine absent or at its default, else an issue. */
  unsupportedUnlessDefault(key: string): void {
    const v = this.get(key);
    const isDefault = v === undefined || v === false || v === 0 || (v === 1 && key === 'best_of') || v === '' ||
      (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0) ||
      (key === 'response_format' && isObject(v) && v['type'] === 'text') || (key === 'tool_choice' && v === 'none');
    if (!isDefault) this.issue(key, 'is not supported by this server');
  }

  throwIfAny(): void {
    if (this.issues.length === 0) return;
    const listed = this.issues.slice(0, MAX_ISSUES_SHOWN).map((i) => `${i.path}: ${i.message}`);
    const more = this.issues.length - listed.length;
    const message = listed.join('; ') + (more > 0 ? `; and ${more} more` : '');
    throw new ApiError('invalid_request', message, this.issues[0]!.path);
  }
}

function typeName(v: unknown): string {
  return Array.isArray(v) || v === null || typeof v === 'object' ? shown(v) : `${typeof v} ${shown(v)}`;
}
