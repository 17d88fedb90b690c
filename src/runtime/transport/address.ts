// Owns: parsing and printing transport addresses ('HOST:PORT', ':PORT', 'PORT', '[::1]:PORT',
// 'unix:/path/to.sock'). Must not: open sockets or resolve host names.

import { HetisError } from '../../util/errors.js';

/** Host used when an address gives only a port: loopback, so nothing is exposed by accident. */
export const DEFAULT_HOST = '127.0.0.1';

export type Address = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

const FORMS = 'expected HOST:PORT, :PORT, PORT, [IPv6]:PORT or unix:/path/to.sock';

function bad(text: string, problem: string): HetisError {
  return new HetisError('bad_input', `address '${text}': ${problem} (${FORMS})`);
}

function parsePort(port: string): number {
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return Number.NaN;
  return Number(port);
}

/** Splits 'HOST:PORT', '[V6]:PORT', ':PORT' or 'PORT' into host (maybe '') and port text. */
function splitHostPort(text: string): [string, string] {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') throw bad(text, "an IPv6 address needs the form '[::1]:PORT'");
    return [text.slice(1, close), text.slice(close + 2)];
  }
  const colon = text.lastIndexOf(':');
  if (colon < 0) return ['', text];
  const host = text.slice(0, colon);
  if (host.includes(':')) throw bad(text, "an IPv6 address needs brackets, as in '[::1]:PORT'");
  return [host, text.slice(colon + 1)];
}

/**
 * Parses a transport address. A missing host means 127.0.0.1 (use 0.0.0.0:PORT to accept other
 * machines). Port 0 is allowed here (listen picks a free port); connect refuses it.
 * Throws HetisError('bad_input') naming the address and the accepted forms.
 */
export function parseAddress(text: string): Address {
  const trimmed = text.trim();
  if (trimmed.startsWith('unix:')) {
    const path = trimmed.slice('unix:'.length);
    if (path === '') throw bad(text, 'the unix socket path is empty');
    return { kind: 'unix', path };
  }
  if (trimmed === '') throw bad(text, 'it is empty');
  const [host, portText] = splitHostPort(trimmed);
  const port = parsePort(portText);
  if (Number.isNaN(port)) throw bad(text, `port '${portText}' is not a whole number from 0 to 65535`);
  if (host !== '' && !/^[A-Za-z0-9.\-_:%]+$/.test(host)) throw bad(text, `host '${host}' has characters a host name cannot have`);
  return { kind: 'tcp', host: host === '' ? DEFAULT_HOST : host, port };
}

/** Prints an address so that parseAddress reads it back: 'h:p', '[v6]:p' or 'unix:/path'. */
export function formatAddress(a: Address): string {
  if (a.kind === 'unix') return `unix:${a.path}`;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
