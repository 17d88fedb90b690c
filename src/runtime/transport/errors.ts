// Owns: the two errors the transport adds: TransportError (the connection failed or timed out) and
// RemoteError (the other side's handler threw). Must not: know about sockets or frames.

import { HetisError, type ErrorCode } from '../../util/errors.js';

/**
 * The connection is gone or a request timed out: the peer was killed, the network broke, no
 * heartbeat came, or a side closed it. Every request pending on that connection rejects with one.
 */
export class TransportError extends HetisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unavailable', message, options);
    this.name = 'TransportError';
  }
}

/** The remote handler threw: its code and message, verbatim (no stack crosses the wire). */
export class RemoteError extends HetisError {
  /** Address of the side whose handler threw, e.g. '10.0.0.7:7070'. */
  readonly remote: string;
  /** The request method that failed. */
  readonly method: string;
  constructor(code: ErrorCode, message: string, remote: string, method: string) {
    super(code, message);
    this.name = 'RemoteError';
    this.remote = remote;
    this.method = method;
  }
}

const CODES: readonly ErrorCode[] = ['bad_file', 'unsupported', 'bad_input', 'unavailable', 'internal'];

/** A code received from the wire, or 'internal' when it is not one this side knows. */
export function knownCode(code: unknown): ErrorCode {
  return CODES.find((c) => c === code) ?? 'internal';
}

/** What of a thrown value may cross the wire: its code (HetisError) and message, never a stack. */
export function wireError(err: unknown): { code: ErrorCode; message: string } {
  if (err instanceof HetisError) return { code: err.code, message: err.message };
  if (err instanceof Error) return { code: 'internal', message: err.message };
  return { code: 'internal', message: String(err) };
}
