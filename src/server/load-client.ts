// Owns: the load generator's HTTP client for one OpenAI-compatible server: its base URL, keep-alive
// agent and headers, one request at a time, reading error bodies as OpenAI errors or network
// failures, and finding the model the server serves. Must not: time requests or schedule them
// (loadgen.ts does).

import http from 'node:http';
import https from 'node:https';
import { HetisError } from '../util/errors.js';

const ERROR_BODY_LIMIT = 64 * 1024;

/** An HTTP client for one server: base URL ending in `/v1/`, headers, and its own agent (destroyed by `closeClient`). */
export interface Client {
  base: URL;
  headers: Record<string, string>;
  agent: http.Agent;
  request: typeof http.request;
}

/** 'http://h:8000', 'http://h:8000/', 'http://h:8000/v1' -> 'http://h:8000/v1/'. */
export function apiBase(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new HetisError('bad_input', `--url: '${url}' is not a URL (expected e.g. http://127.0.0.1:8000)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new HetisError('bad_input', `--url: '${url}' must start with http:// or https://`);
  const path = u.pathname.replace(/\/+$/, '');
  u.pathname = `${path.endsWith('/v1') ? path : `${path}/v1`}/`;
  u.search = '';
  u.hash = '';
  return u;
}

export function openClient(url: string, apiKey: string | undefined): Client {
  const base = apiBase(url);
  const tls = base.protocol === 'https:';
  const agent = tls ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  const headers: Record<string, string> = { accept: 'application/json, text/event-stream' };
  if (apiKey !== undefined && apiKey !== '') headers['authorization'] = `Bearer ${apiKey}`;
  return { base, headers, agent, request: tls ? https.request : http.request };
}

export function closeClient(c: Client): void {
  c.agent.destroy();
}

/** Sends one request; resolves at the response's headers. Aborting `signal` destroys the request and its response. */
export function call(c: Client, method: 'GET' | 'POST', path: string, body: object | undefined, signal: AbortSignal): Promise<http.IncomingMessage> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers = payload === undefined ? c.headers : { ...c.headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) };
  return new Promise((resolve, reject) => {
    const req = c.request(new URL(path, c.base), { method, headers, agent: c.agent, signal }, resolve);
    req.on('error', reject);
    req.end(payload);
  });
}

export async function readText(res: http.IncomingMessage, limit = ERROR_BODY_LIMIT): Promise<string> {
  res.setEncoding('utf8');
  let text = '';
  for await (const piece of res) {
    if (text.length < limit) text += piece as string;
  }
  return text.slice(0, limit);
}

/** The OpenAI error body's code (or type) and message, from whatever the server sent. */
export function errorOf(status: number, text: string): { reason: string; message: string } {
  try {
    const e = (JSON.parse(text) as { error?: { message?: unknown; code?: unknown; type?: unknown } }).error;
    const code = typeof e?.code === 'string' ? e.code : typeof e?.type === 'string' ? e.type : '';
    if (typeof e?.message === 'string') return { reason: `HTTP ${status}${code ? ` ${code}` : ''}`, message: e.message };
  } catch { /* not JSON: the text itself */ }
  return { reason: `HTTP ${status}`, message: text.trim().slice(0, 200) || http.STATUS_CODES[status] || '' };
}

export function networkReason(err: unknown): { reason: string; message: string } {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : 'error';
  return { reason: `network ${code}`, message: typeof e?.message === 'string' ? e.message : String(err) };
}

function isConnectFailure(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT'].includes(code);
}

/**
 * Checks that a server answers at the client's URL and names the model to use: `model` when
 * given, else the first id of GET /v1/models. Throws one clear HetisError otherwise.
 */
export async function resolveModel(c: Client, url: string, model: string | undefined, timeoutS: number): Promise<string> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), Math.min(timeoutS, 10) * 1000);
  try {
    const res = await call(c, 'GET', 'models', undefined, ac.signal);
    const text = await readText(res, 1 << 20);
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new HetisError('bad_input', `the server at ${url} refused the API key (${errorOf(res.statusCode, text).message}); pass --api-key`);
    }
    if (model !== undefined) return model;
    if (res.statusCode !== 200) throw new HetisError('bad_input', `GET ${new URL('models', c.base).href}: ${errorOf(res.statusCode ?? 0, text).reason}; pass --model`);
    const ids = (JSON.parse(text) as { data?: { id?: unknown }[] }).data?.map((m) => m.id).filter((id): id is string => typeof id === 'string') ?? [];
    if (ids[0] === undefined) throw new HetisError('bad_input', `the server at ${url} lists no model; pass --model`);
    return ids[0];
  } catch (err) {
    if (err instanceof HetisError) throw err;
    if (err instanceof SyntaxError) throw new HetisError('bad_input', `the server at ${url} answered GET /v1/models with something other than a model list; pass --model`);
    const why = ac.signal.aborted ? 'no answer in time' : (err as { code?: string }).code ?? String(err);
    if (ac.signal.aborted || isConnectFailure(err)) throw new HetisError('bad_input', `no server answering at ${url} (${why})`);
    throw new HetisError('bad_input', `cannot reach ${url}: ${why}`);
  } finally {
    clearTimeout(timer);
  }
}
