// Owns: the server's closed list of error codes, the one table mapping each to an HTTP status
// and OpenAI error type, and the one function that turns anything thrown into an error body.
// Must not: write to sockets, or let a stack trace or an internal message reach a client.

import { HetisError, type ErrorCode } from '../util/errors.js';

/** Every error a client can see. The `code` field of the error body is one of these. */
export type ApiErrorCode =
  | 'invalid_json' // the body is not UTF-8 JSON
  | 'invalid_request' // a field is missing, of the wrong type or out of range
  | 'context_length_exceeded' // the prompt leaves no room to generate
  | 'invalid_api_key' // the server has a key and the request did not carry it
  | 'model_not_found' // the request names a model this server does not serve
  | 'not_found' // no such route
  | 'method_not_allowed' // the route exists, not with this method
  | 'payload_too_large' // the body is over the server's limit
  | 'unsupported_media_type' // a body that is not sent as application/json
  | 'request_timeout' // the headers or the body did not arrive in time
  | 'headers_too_large' // the request's headers are over node's limit
  | 'rate_limit_exceeded' // the engine's queue is full: retry later
  | 'request_failed' // the engine ended the request with an error (a step failed, it can never fit)
  | 'unavailable' // the server is shutting down or its engine loop has stopped
  | 'internal'; // a bug

/** OpenAI's error `type` strings we use. */
type ApiErrorType = 'invalid_request_error' | 'authentication_error' | 'requests' | 'server_error';

/** Status and type of every code: the compiler checks that no code is missing. */
const API_ERRORS: { readonly [C in ApiErrorCode]: { status: number; type: ApiErrorType } } = {
  invalid_json: { status: 400, type: 'invalid_request_error' },
  invalid_request: { status: 400, type: 'invalid_request_error' },
  context_length_exceeded: { status: 400, type: 'invalid_request_error' },
  invalid_api_key: { status: 401, type: 'authentication_error' },
  model_not_found: { status: 404, type: 'invalid_request_error' },
  not_found: { status: 404, type: 'invalid_request_error' },
  method_not_allowed: { status: 405, type: 'invalid_request_error' },
  payload_too_large: { status: 413, type: 'invalid_request_error' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error' },
  request_timeout: { status: 408, type: 'invalid_request_error' },
  headers_too_large: { status: 431, type: 'invalid_request_error' },
  rate_limit_exceeded: { status: 429, type: 'requests' },
  request_failed: { status: 500, type: 'server_error' },
  unavailable: { status: 503, type: 'server_error' },
  internal: { status: 500, type: 'server_error' },
};

/**
 * What each library error code becomes at the HTTP edge. bad_input and unsupported carry
 * messages written for the user; bad_file and internal are the server's own problems.
 */
const FROM_LIBRARY: { readonly [C in ErrorCode]: ApiErrorCode } = {
  bad_input: 'invalid_request',
  unsupported: 'invalid_request',
  bad_file: 'internal',
  unavailable: 'unavailable',
  internal: 'internal',
};

/** Messages of server-side failures: the real cause goes to the log, never to the client. */
const GENERIC: Partial<Record<ApiErrorCode, string>> = {
  internal: 'internal server error',
  request_failed: 'the server could not complete the request',
};

/**
 * An error meant for the client; its message is shown as is (write it for the user, and quote
 * what the client sent with `shown`). `headers` go on the response (Retry-After, Allow).
 */
export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode, message: string, readonly param: string | null = null,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** OpenAI's error body. */
export interface ErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: ApiErrorCode };
}

export interface ErrorResponse {
  status: number;
  body: ErrorBody;
  /** Extra response headers (lower-case names). */
  headers: Readonly<Record<string, string>>;
  /** True when the cause is the server's (5xx): log it, with its stack. */
  serverFault: boolean;
}

/** The one mapping from anything thrown to a status and an error body. */
export function toErrorResponse(e: unknown): ErrorResponse {
  let code: ApiErrorCode;
  let message: string;
  let param: string | null = null;
  let headers: Readonly<Record<string, string>> = {};
  if (e instanceof ApiError) {
    code = e.code;
    message = GENERIC[code] ?? e.message;
    param = e.param;
    headers = e.headers;
  } else if (e instanceof HetisError) {
    code = FROM_LIBRARY[e.code];
    message = GENERIC[code] ?? e.message;
  } else {
    code = 'internal';
    message = GENERIC.internal!;
  }
  const { status, type } = API_ERRORS[code];
  return { status, body: { error: { message, type, param, code } }, headers, serverFault: status >= 500 };
}

/**
 * A value the client sent, for an error message: strings and numbers quoted and cut to `max`
 * characters, arrays and objects named by kind only (never walked: they may be huge or deep).
 */
export function shown(v: unknown, max = 64): string {
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > max ? `${v.slice(0, max)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v;
}
