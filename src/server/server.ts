// Owns: the OpenAI-compatible HTTP server: routes and methods, the bearer key, the Engine it
// builds from a backend and drives with an EngineLoop, one Session per completion request
// (whole or streamed as server-sent events), health, metrics and the cluster view (its JSON in
// cluster-view.ts); the limits that keep it serving (timeouts, connections, admission to a
// bounded queue).
// Must not: run the model or place heads (the engine and executor do), or let a stack trace or
// an internal message reach a client (errors.ts decides what a client sees).

import { randomInt, randomUUID } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Engine } from '../engine/engine.js';
import { EngineLoop } from '../engine/loop.js';
import type { EngineListener, FinishReason } from '../engine/types.js';
import type { ServeBackend } from './backend.js';
import { DEFAULT_CHAT_TEMPLATE, type ChatTemplate } from './chat-template.js';
import { ChoiceText } from './choice-text.js';
import { clusterView } from './cluster-view.js';
import { ApiError, shown, toErrorResponse, type ApiErrorCode } from './errors.js';
import { EventStream, hasBearer, readJson, sendError, sendJson, sendText, type BodyLimits, type StreamLimits } from './http.js';
import { ServerMetrics } from './metrics.js';
import { Session, type SessionEvents } from './session.js';
import { DEFAULT_LIMITS, parseChatBody, parseCompletionBody, type GenerationParams, type Limits } from './validate.js';
import { choiceChunk, responseBody, usageChunk, usageOf, type ResponseMeta } from './wire.js';

export interface ServerOptions {
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (default 0: a free one). */
  port?: number;
  /** When set, every /v1 route needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Largest request body, bytes (default 1 MiB): 413, and the rest is not read. */
  maxBodyBytes?: number;
  /** Longest wait for a request's headers, ms (default 10 s): 408. */
  headersTimeoutMs?: number;
  /** Longest wait for a request's body once its headers are in, ms (default 30 s): 408. */
  bodyTimeoutMs?: number;
  /** Longest a stream may wait for a client that does not read, ms (default 30 s): then it is cut. */
  streamStallMs?: number;
  /** Most bytes a stream buffers for a client that does not read (default 4 MiB): then it is cut. */
  maxStreamBufferBytes?: number;
  /** Engine requests (choices) that may wait beyond the engine's maxRunning (default 256): 429 past it. */
  maxQueued?: number;
  /** Most open connections (default 1024): further ones are closed at once. */
  maxConnections?: number;
  /** How chat messages become a prompt (default: chat-template.ts's DEFAULT_CHAT_TEMPLATE). */
  chatTemplate?: ChatTemplate;
  /** max_tokens when a request gives none, capped by the room left in the context (default 256). */
  defaultMaxTokens?: number;
  /** Where request lines and server-side errors (with stacks) go (default: nowhere). */
  log?: (line: string) => void;
}

export interface RunningServer {
  /** `http://host:port`, no trailing slash (the OpenAI base URL is this + '/v1'). */
  url: string;
  port: number;
  /** The engine the server owns (tests and the cluster backend read it). */
  engine: Engine;
  /** Ends every request, stops the engine loop, closes connections, then the backend. */
  close(): Promise<void>;
}

export const DEFAULT_MAX_BODY_BYTES = 1 << 20;
export const DEFAULT_MAX_TOKENS = 256;
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;
export const DEFAULT_STREAM_STALL_MS = 30_000;
export const DEFAULT_MAX_STREAM_BUFFER_BYTES = 4 << 20;
export const DEFAULT_MAX_QUEUED = 256;
export const DEFAULT_MAX_CONNECTIONS = 1024;
/** What a 429 tells the client to wait, seconds. */
const RETRY_AFTER_S = 1;
/** Step and request records the engine keeps (it drops older ones past twice this). */
const ENGINE_HISTORY = 1024;

/** Starts serving `backend` over HTTP; resolves once listening. */
export async function startServer(backend: ServeBackend, opts: ServerOptions = {}): Promise<RunningServer> {
  const app = new HetisServer(backend, opts);
  const port = await app.listen(opts.port ?? 0, opts.host ?? '127.0.0.1');
  const host = opts.host ?? '127.0.0.1';
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, port, engine: app.engine, close: () => app.close() };
}

type Handler = (req: IncomingMessage, res: ServerResponse, path: string, requestId: string) => void | Promise<void>;

interface Route {
  match: (path: string) => boolean;
  /** Needs the bearer key (when the server has one). */
  auth: boolean;
  methods: Partial<Record<'GET' | 'POST', Handler>>;
}

/** A checked completion request: what the engine is asked for. */
interface Job {
  p: GenerationParams;
  meta: ResponseMeta;
  promptTokens: number[];
  maxTokens: number;
  /** The request's stop strings, and for chat the template's. */
  stop: string[];
  /** Choice i samples with seed + i. */
  seed: number;
}

/** Where a choice's engine request reports to. */
interface ChoiceRoute {
  session: Session;
  index: number;
}

class HetisServer {
  readonly engine: Engine;
  private readonly loop: EngineLoop;
  private readonly http: Server;
  private readonly metrics = new ServerMetrics();
  private readonly choices = new Map<string, ChoiceRoute>();
  private readonly template: ChatTemplate;
  private readonly log: (line: string) => void;
  private readonly body: BodyLimits;
  private readonly stream: StreamLimits;
  private readonly maxQueued: number;
  private readonly defaultMaxTokens: number;
  private readonly limits: Limits;
  /** Most bytes one token's text can have: a prompt longer than context x this cannot fit. */
  private readonly maxTokenBytes: number;
  /** The response being written on each socket (a client error after its head must not write). */
  private readonly responding = new WeakMap<Duplex, ServerResponse>();
  private readonly routes: Route[];
  private readonly started = Math.floor(Date.now() / 1000);
  private loopRunning = true;
  private closing: Promise<void> | undefined;

  constructor(private readonly backend: ServeBackend, private readonly opts: ServerOptions) {
    this.template = opts.chatTemplate ?? DEFAULT_CHAT_TEMPLATE;
    this.log = opts.log ?? (() => {});
    this.body = { maxBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, timeoutMs: opts.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS };
    this.stream = { stallMs: opts.streamStallMs ?? DEFAULT_STREAM_STALL_MS, maxBufferedBytes: opts.maxStreamBufferBytes ?? DEFAULT_MAX_STREAM_BUFFER_BYTES };
    this.maxQueued = opts.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.defaultMaxTokens = opts.defaultMaxTokens ?? DEFAULT_MAX_TOKENS;
    this.limits = { ...DEFAULT_LIMITS, vocabSize: backend.spec.vocabSize, contextLength: backend.spec.contextLength };
    let maxTokenBytes = 1;
    for (let id = 0; id < backend.tokenizer.vocabSize; id++) maxTokenBytes = Math.max(maxTokenBytes, Buffer.byteLength(backend.tokenizer.piece(id)));
    this.maxTokenBytes = maxTokenBytes;
    const listener: EngineListener = {
      onToken: (id, token, at) => {
        this.metrics.token(id, at);
        const c = this.choices.get(id);
        c?.session.token(c.index, token);
      },
      onStep: (record) => this.metrics.step(record),
      onFinish: (record) => {
        this.metrics.finish(record);
        const c = this.choices.get(record.id);
        this.choices.delete(record.id);
        c?.session.finish(c.index, record);
      },
    };
    // A server runs for days: the engine keeps only recent records (metrics see each one live).
    this.engine = new Engine({ history: ENGINE_HISTORY, ...backend.engineConfig }, backend.executor, listener);
    this.loop = new EngineLoop(this.engine, {
      onStepError: (e) => this.stepFailed(e),
    });
    this.loop.start();
    void this.loop.done.then(() => {
      // Nothing will step again: release whoever still waits.
      this.loopRunning = false;
      this.engine.abortAll(this.closing !== undefined ? 'abort' : 'error');
    });
    const complete = (kind: 'text' | 'chat'): Handler => (req, res, _path, rid) => this.complete(req, res, kind, rid);
    this.routes = [
      { match: (p) => p === '/v1/completions', auth: true, methods: { POST: complete('text') } },
      { match: (p) => p === '/v1/chat/completions', auth: true, methods: { POST: complete('chat') } },
      { match: (p) => p === '/v1/models', auth: true, methods: { GET: (_q, res) => sendJson(res, 200, { object: 'list', data: [this.modelCard()] }) } },
      { match: (p) => p.startsWith('/v1/models/'), auth: true, methods: { GET: (_q, res, p) => this.model(res, p) } },
      { match: (p) => p === '/v1/cluster', auth: true, methods: { GET: (_q, res) => sendJson(res, 200, clusterView(this.backend, this.engine)) } },
      { match: (p) => p === '/health', auth: false, methods: { GET: (_q, res) => this.health(res) } },
      { match: (p) => p === '/metrics', auth: false, methods: { GET: (_q, res) => this.scrape(res) } },
    ];
    const headersTimeout = opts.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
    this.http = createServer({
      headersTimeout,
      // node's own limit on the whole request: a backstop behind the body timer (readJson's).
      requestTimeout: headersTimeout + this.body.timeoutMs + 1000,
      // How often node looks for requests over those limits (its default, 30 s, is too coarse).
      connectionsCheckingInterval: Math.min(1000, headersTimeout),
    }, (req, res) => { void this.handle(req, res); });
    this.http.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.http.on('clientError', (e: NodeJS.ErrnoException, socket: Duplex) => this.clientError(e, socket));
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        resolve((this.http.address() as AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const closed = new Promise<void>((r) => this.http.close(() => r()));
      this.engine.abortAll('abort');
      await this.loop.stop();
      this.engine.abortAll('abort');
      // Let the handlers of aborted requests answer (503, or the end of their stream).
      await new Promise<void>((r) => setImmediate(r));
      this.http.closeAllConnections();
      await closed;
      await this.backend.close();
    })();
    return this.closing;
  }

  // ---- dispatch ---------------------------------------------------------------------------------

  /** Every request comes here; whatever it throws becomes an error response (errors.ts). */
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    const rid = randomUUID().replace(/-/g, '');
    let path = '?';
    this.responding.set(req.socket, res);
    res.on('finish', () => {
      if (this.responding.get(req.socket) === res) this.responding.delete(req.socket);
      this.log(`${req.method} ${path} ${res.statusCode} ${(performance.now() - t0).toFixed(1)}ms ${rid}`);
    });
    try {
      res.setHeader('x-request-id', rid);
      path = pathOf(req.url);
      const route = this.routes.find((r) => r.match(path));
      if (route === undefined) throw new ApiError('not_found', `no route ${shown(path)}`);
      const allowed = Object.keys(route.methods);
      const handler = req.method === 'GET' || req.method === 'POST' ? route.methods[req.method] : undefined;
      if (handler === undefined) {
        throw new ApiError('method_not_allowed', `${shown(req.method)} is not allowed on ${path}; use ${allowed.join(' or ')}`, null, { allow: allowed.join(', ') });
      }
      if (route.auth && this.opts.apiKey !== undefined && !hasBearer(req, this.opts.apiKey)) {
        throw new ApiError('invalid_api_key', 'missing or wrong API key: send Authorization: Bearer <key>');
      }
      await handler(req, res, path, rid);
    } catch (e) {
      const r = toErrorResponse(e);
      if (r.serverFault) this.log(`${req.method} ${path} ${rid}: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      sendError(res, r, this.body.maxBytes);
    }
  }

  /**
   * What node could not parse as a request (malformed, headers too large, too slow): an error
   * body of our own format, then the connection closes. Never written over a response under way.
   */
  private clientError(e: NodeJS.ErrnoException, socket: Duplex): void {
    const started = this.responding.get(socket)?.headersSent ?? false;
    if (e.code === 'ECONNRESET' || !socket.writable || started) { socket.destroy(); return; }
    const code: ApiErrorCode = e.code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : e.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : 'invalid_request';
    const message = code === 'headers_too_large' ? 'the request headers are too large'
      : code === 'request_timeout' ? 'the request did not arrive in time' : 'malformed HTTP request';
    const r = toErrorResponse(new ApiError(code, message));
    const body = JSON.stringify(r.body);
    socket.end(`HTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? ''}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    (socket as Socket).destroySoon?.();
  }

  // ---- completions ------------------------------------------------------------------------------

  private async complete(req: IncomingMessage, res: ServerResponse, kind: 'text' | 'chat', rid: string): Promise<void> {
    const job = this.plan(await readJson(req, this.body), kind, rid);
    const { meta, p, promptTokens } = job;
    if (res.destroyed) return; // the client left while sending its body
    const ids = Array.from({ length: p.n }, (_, i) => `${meta.id}-${i}`);
    const texts = ids.map(() => new ChoiceText(this.backend.tokenizer, promptTokens, job.stop, kind === 'chat'));
    const stream = p.stream ? new EventStream(res, this.stream, (why) => this.log(`${meta.id}: stream cut: ${why}`)) : undefined;
    const events = stream !== undefined ? this.streamEvents(stream, meta, p.includeUsage) : NO_EVENTS;
    const session = new Session(ids, texts, events, (id, reason) => this.abort(id, reason));
    ids.forEach((id, index) => this.choices.set(id, { session, index }));
    // The client went away (or was cut off) before the end: its requests stop now.
    res.on('close', () => { if (!session.finished) session.cancel(); });
    if (stream !== undefined) {
      stream.start();
      if (kind === 'chat') ids.forEach((_, i) => stream.send(choiceChunk(meta, i, '', null, { first: true, withUsage: p.includeUsage })));
    }
    const arrival = this.loop.now();
    ids.forEach((id, i) => this.loop.submit({
      id, arrival, promptTokens, promptLength: promptTokens.length, maxTokens: job.maxTokens,
      sampling: { temperature: p.temperature, topK: p.topK, topP: p.topP, seed: job.seed + i },
    }));

    const results = await session.done;
    if (results.some((r) => r.finishReason === 'error')) throw new ApiError('request_failed', 'the engine failed the request');
    if (results.some((r) => r.finishReason === 'abort')) {
      if (res.destroyed) return; // the client left
      throw new ApiError('unavailable', 'the server is shutting down');
    }
    const usage = usageOf(promptTokens.length, results.reduce((a, r) => a + r.completionTokens, 0));
    if (stream !== undefined) {
      if (p.includeUsage) stream.send(usageChunk(meta, usage));
      stream.send('[DONE]');
      res.end();
    } else {
      const choices = results.map((r) => ({ text: r.text, finishReason: r.finishReason === 'length' ? 'length' as const : 'stop' as const }));
      sendJson(res, 200, responseBody(meta, choices, usage));
    }
  }

  /** Checks a completion body and works out what to ask the engine for; throws what the client sees. */
  private plan(body: unknown, kind: 'text' | 'chat', rid: string): Job {
    const p = kind === 'text' ? parseCompletionBody(body, this.limits) : parseChatBody(body, this.limits);
    const { modelName, tokenizer, spec } = this.backend;
    if (p.model !== modelName) {
      throw new ApiError('model_not_found', `the model ${shown(p.model)} does not exist; this server serves '${modelName}'`, 'model');
    }
    this.ensureServing();
    this.admit(p.n);
    const ctx = spec.contextLength;
    const tooLong = (tokens: string): ApiError => new ApiError('context_length_exceeded',
      `the prompt is ${tokens} tokens; the model's context is ${ctx}, which leaves no room to generate`,
      kind === 'text' ? 'prompt' : 'messages');
    const given = 'prompt' in p ? p.prompt : { kind: 'text' as const, text: this.template.render(p.messages) };
    // Every token covers at most maxTokenBytes bytes: a longer text is over the context for sure,
    // and is refused without the cost of encoding it.
    if (given.kind === 'text' && Buffer.byteLength(given.text) > ctx * this.maxTokenBytes) throw tooLong(`over ${ctx}`);
    const promptTokens = given.kind === 'text' ? tokenizer.encode(given.text, { bos: true }) : given.tokens;
    if (promptTokens.length + 1 > ctx) throw tooLong(String(promptTokens.length));
    return {
      p, promptTokens,
      meta: { kind, id: `${kind === 'text' ? 'cmpl' : 'chatcmpl'}-${rid}`, created: Math.floor(Date.now() / 1000), model: modelName },
      maxTokens: p.maxTokens ?? Math.min(this.defaultMaxTokens, ctx - promptTokens.length),
      stop: kind === 'chat' ? [...p.stop, ...this.template.stop] : p.stop,
      seed: p.seed ?? randomInt(2 ** 31),
    };
  }

  /** Events of a streamed response: each piece of text as a chunk, each end as a final chunk. */
  private streamEvents(stream: EventStream, meta: ResponseMeta, withUsage: boolean): SessionEvents {
    return {
      text: (i, text) => { stream.send(choiceChunk(meta, i, text, null, { withUsage })); },
      end: (i, reason, tail) => {
        if (reason === 'stop' || reason === 'length') stream.send(choiceChunk(meta, i, tail, reason, { withUsage }));
      },
    };
  }

  /**
   * Admission: the engine holds at most maxRunning + maxQueued engine requests (choices); `n`
   * more that would go over wait nowhere: 429 with Retry-After.
   */
  private admit(n: number): void {
    const { running, waiting } = this.engine.counts();
    const queued = running + waiting + n - this.backend.engineConfig.maxRunning;
    if (queued > this.maxQueued) {
      throw new ApiError('rate_limit_exceeded',
        `the server is at capacity (${running} running, ${waiting} waiting, at most ${this.maxQueued} queued); retry after ${RETRY_AFTER_S} s`,
        null, { 'retry-after': String(RETRY_AFTER_S) });
    }
  }

  private abort(id: string, reason: FinishReason): void {
    this.engine.abort(id, reason);
    this.loop.poke();
  }

  private ensureServing(): void {
    if (this.closing !== undefined) throw new ApiError('unavailable', 'the server is shutting down');
    if (!this.loopRunning) throw new ApiError('unavailable', 'the engine has stopped');
  }

  /** A step threw: the backend decides; by default every request fails and serving goes on. */
  private async stepFailed(e: unknown): Promise<boolean> {
    this.log(`engine step failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    try {
      if (this.backend.onStepError !== undefined) return await this.backend.onStepError(e, this.engine);
    } catch (e2) {
      this.log(`the backend's step-error handler failed: ${e2 instanceof Error ? e2.stack ?? e2.message : String(e2)}`);
    }
    this.engine.abortAll('error');
    return true;
  }

  // ---- the other routes -------------------------------------------------------------------------

  private modelCard(): object {
    return { id: this.backend.modelName, object: 'model', created: this.started, owned_by: 'hetis' };
  }

  private model(res: ServerResponse, path: string): void {
    let id: string;
    try {
      id = decodeURIComponent(path.slice('/v1/models/'.length));
    } catch {
      throw new ApiError('invalid_request', 'the model id in the path is not valid percent-encoding');
    }
    if (id !== this.backend.modelName) throw new ApiError('model_not_found', `the model ${shown(id)} does not exist; this server serves '${this.backend.modelName}'`, 'model');
    sendJson(res, 200, this.modelCard());
  }

  private health(res: ServerResponse): void {
    this.ensureServing();
    sendJson(res, 200, { status: 'ok' });
  }

  private scrape(res: ServerResponse): void {
    sendText(res, 200, 'text/plain; version=0.0.4; charset=utf-8', this.metrics.render({ counts: this.engine.counts(), devices: this.engine.deviceView() }));
  }
}

const NO_EVENTS: SessionEvents = { text: () => {}, end: () => {} };

/** The path of a request target; a target that is not a URL path is a 400. */
function pathOf(url: string | undefined): string {
  try {
    return new URL(url ?? '/', 'http://localhost').pathname;
  } catch {
    throw new ApiError('invalid_request', 'the request target is not a valid URL');
  }
}
