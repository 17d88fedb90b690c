// Owns: the error type every layer throws for expected, user-facing failures, and `assert` for
// broken invariants. Must not: print, exit, or know about HTTP.

/** Closed list of error codes. The server (later) maps each to an HTTP status in one table. */
export type ErrorCode =
  | 'bad_file' // a model / tokenizer / profile file that is missing, truncated or malformed
  | 'unsupported' // a valid file using a feature we do not implement (tensor type, architecture)
  | 'bad_input' // a caller passed something invalid (prompt, option, shape)
  | 'unavailable' // a peer is not there or went away (a worker not listening, a connection lost)
  | 'internal'; // an invariant broke: a bug

/** An expected failure with a message meant for the user (no stack trace needed to act on it). */
export class HetisError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HetisError';
    this.code = code;
  }
}

/** Error about a file: the message always starts with the path, then the problem. */
export function fileError(path: string, problem: string, code: ErrorCode = 'bad_file'): HetisError {
  return new HetisError(code, `${path}: ${problem}`);
}

/** Broken invariant: throws in production too. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new HetisError('internal', `assertion failed: ${message}`);
}
