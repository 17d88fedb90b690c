// Owns: reading and writing quantities people type: byte sizes with units. Must not: know
// what the quantities are for.

import { HetisError } from './errors.js';

const BYTE_UNITS: Record<string, number> = {
  b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** '64MiB', '1.5GB', '4096', '2g' -> bytes (integer). Throws bad_input naming `what`. */
export function parseBytes(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m?.[2]?.toLowerCase() ?? '';
  const scale = unit === '' ? 1 : BYTE_UNITS[unit];
  if (m === null || scale === undefined) {
    throw new HetisError('bad_input', `${what} '${text}' is not a byte size (examples: 4096, 64MiB, 1.5GB)`);
  }
  return Math.floor(Number(m[1]) * scale);
}

/** Bytes as people read them: 1536 -> '1.5 KiB'. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes, i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v : +v.toFixed(1)} ${units[i]}`;
}
