// Owns: the small node:http pieces the server needs: reading a bounded, timed JSON body,
// checking a bearer key, writing JSON, error bodies (and what becomes of a body left unread)
// and server-sent events that never buffer without bound. Must not: know about models, the
// engine or the OpenAI objects.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, shown, type ErrorResponse } from './errors.js';

/** How much of a request body the server takes, and how long it waits for it. */
export interface BodyLimits {
  /** Largest body, bytes. */
  maxBytes: number;
  /** Longest wait for the whole body once the headers are in, ms. */
  timeoutMs: number;
}

/** Bodies the server gave up reading (too large, too slow): their connection is closed. */
const abandoned = new WeakSet<IncomingMessage>();
/** Bodies read to their end, or being drained. */
const consumed = new WeakSet<IncomingMessage>();

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads the body as JSON: Content-Type application/json (charset utf-8 if any), at most
 * `maxBytes`, whole within `timeoutMs`, valid UTF-8 (never repaired), then JSON.parse.
 */
export async function readJson(req: IncomingMessage, limits: BodyLimits): Promise<unknown> {
  checkJsonType(req);
  const body = await readBody(req, limits);
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    throw new ApiError('invalid_json', 'the request body is not valid UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new ApiError('invalid_json', `the request body is not valid JSON: ${e instanceof Error ? e.message.slice(0, 200) : 'parse error'}`);
  }
}

function checkJsonType(req: IncomingMessage): void {
  const type = req.headers['content-type'];
  const [media, ...params] = (type ?? '').split(';').map((s) => s.trim().toLowerCase());
  const charset = params.find((p) => p.startsWith('charset='))?.slice('charset='.length).replace(/"/g, '');
  if (media === 'application/json' && (charset === undefined || charset === 'utf-8' || charset === 'utf8')) return;
  throw new ApiError('unsupported_media_type',
    `send the body as JSON with Content-Type: application/json, got ${type === undefined ? 'no Content-Type' : shown(type)}`);
}

function readBody(req: IncomingMessage, { maxBytes, timeoutMs }: BodyLimits): Promise<Buffer> {
  const tooLarge = (): ApiError => new ApiError('payload_too_large', `the request body is over ${maxBytes} bytes`);
  consumed.add(req);
  if (Number(req.headers['content-length'] ?? 0) > maxBytes) {
    abandoned.add(req); // not one byte read: the answer closes the connection
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onError);
    };
    const giveUp = (e: Error): void => {
      stop();
      abandoned.add(req);
      req.pause(); // node then stops reading the socket once its small buffer is full
      reject(e);
    };
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > maxBytes) giveUp(tooLarge());
      else chunks.push(c);
    };
    const onEnd = (): void => { stop(); resolve(Buffer.concat(chunks, size)); };
    // The client went away mid-body: nobody will see the answer, and it is no server fault.
    const onError = (): void => { stop(); reject(new ApiError('invalid_request', 'the connection closed before the whole body arrived')); };
    const timer = setTimeout(() => giveUp(new ApiError('request_timeout', `the request body did not arrive within ${timeoutMs / 1000} s`)), timeoutMs);
    req.on('data', onData).on('end', onEnd).on('error', onError);
  });
}

/** True when the request carries `Authorization: Bearer <key>` (compared in constant time). */
export function hasBearer(req: IncomingMessage, key: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
  if (m === null) return false;
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(m[1]!.trim()), digest(key));
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, contentType: string, text: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Sends an error: as a JSON response when nothing was sent yet, else (a stream under way) as a
 * last event carrying the error, which OpenAI's clients raise. A body the server gave up on
 * (too large, too slow) is not read further: the answer closes the connection. A body never
 * started (an error found from the headers) whose declared length is at most `maxBytes` is read
 * and dropped, so the connection can serve the next request; any other is not read, and the
 * answer closes the connection.
 */
export function sendError(res: ServerResponse, e: ErrorResponse, maxBytes: number): void {
  if (res.writableEnded || res.destroyed) return;
  if (res.headersSent) {
    res.end(`data: ${JSON.stringify(e.body)}\n\n`);
    return;
  }
  const req = res.req;
  const headers: Record<string, string> = { ...e.headers };
  if (abandoned.has(req)) headers['connection'] = 'close';
  else if (!consumed.has(req) && !req.complete) {
    const length = req.headers['transfer-encoding'] === undefined ? Number(req.headers['content-length'] ?? 0) : Infinity;
    if (length > maxBytes) headers['connection'] = 'close';
    else if (length > 0) drain(req);
  }
  sendJson(res, e.status, e.body, headers);
}

/** Reads and drops a body nobody wants (its length is known and within the limit). */
function drain(req: IncomingMessage): void {
  consumed.add(req);
  req.on('error', () => {});
  req.resume();
}

/** How an event stream limits what it buffers for a client that does not read. */
export interface StreamLimits {
  /** Longest time the response may stay over its high-water mark (not draining), ms. */
  stallMs: number;
  /** Most bytes buffered for the client; over this the stream ends at once. */
  maxBufferedBytes: number;
}

/**
 * A server-sent event stream. A client that stops reading does not make the server buffer
 * without bound: once the response's buffer is over its high-water mark, it must drain within
 * `stallMs`, and it may never hold more than `maxBufferedBytes`; otherwise the response is
 * destroyed (its 'close' fires, which ends the request) and `onStall` is told why.
 */
export class EventStream {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly res: ServerResponse, private readonly limits: StreamLimits, private readonly onStall: (why: string) => void) {
    res.on('drain', () => this.clearTimer());
    res.on('close', () => this.clearTimer());
  }

  /** Sends the response head. */
  start(): void {
    this.res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    this.res.flushHeaders();
  }

  /** One event; false when the client is gone (or was cut off). */
  send(data: unknown): boolean {
    const res = this.res;
    if (res.writableEnded || res.destroyed) return false;
    const below = res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    if (res.writableLength > this.limits.maxBufferedBytes) {
      this.cut(`the client is not reading: over ${this.limits.maxBufferedBytes} bytes buffered`);
      return false;
    }
    if (!below && this.timer === undefined) {
      this.timer = setTimeout(() => this.cut(`the client read nothing for ${this.limits.stallMs / 1000} s`), this.limits.stallMs);
      this.timer.unref();
    }
    return true;
  }

  private cut(why: string): void {
    this.clearTimer();
    if (this.res.destroyed) return;
    this.onStall(why);
    this.res.destroy();
  }

  private clearTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
