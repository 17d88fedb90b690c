// Owns: the small node:http pieces the server needs: reading a bounded JSON body, checking a
// bearer key, writing JSON, error bodies and server-sent events. Must not: know about models,
// the engine or the OpenAI objects.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, type ErrorResponse } from './errors.js';

/** Reads the body (at most `maxBytes`) and parses it as JSON. */
export async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const body = await readBody(req, maxBytes);
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (e) {
    throw new ApiError('invalid_json', `the request body is not valid JSON: ${(e as Error).message}`);
  }
}

function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = (): ApiError => new ApiError('payload_too_large', `the request body is over ${maxBytes} bytes`);
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > maxBytes) {
    req.resume(); // discard; the response closes the connection
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > maxBytes) { over = true; reject(tooLarge()); return; }
      chunks.push(c);
    });
    req.on('end', () => { if (!over) resolve(Buffer.concat(chunks)); });
    req.on('error', reject);
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
 * last event carrying the error, which OpenAI's clients raise. 413 closes the connection (its
 * unread body is discarded).
 */
export function sendError(res: ServerResponse, e: ErrorResponse): void {
  if (res.writableEnded || res.destroyed) return;
  if (res.headersSent) {
    res.end(`data: ${JSON.stringify(e.body)}\n\n`);
    return;
  }
  const headers: Record<string, string> = {};
  if (e.status === 413) headers['connection'] = 'close';
  sendJson(res, e.status, e.body, headers);
}

/** Starts a server-sent event stream. */
export function startEvents(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.flushHeaders();
}

/** One event; false when the client is gone. */
export function sendEvent(res: ServerResponse, data: unknown): boolean {
  if (res.writableEnded || res.destroyed) return false;
  res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  return true;
}
