// Owns: the prompts the serving benchmark sends: a built-in list, seeded generated ones of about a
// given token count, or a user's list (one per line of a file). Must not: send anything.

import { HetisError } from '../util/errors.js';
import { createRng, type Rng } from '../util/rng.js';

/** Where prompts come from: the built-in short ones, generated ones of about `tokens` tokens, or a given list (each used in turn). */
export type PromptSource =
  | { kind: 'builtin' }
  | { kind: 'generated'; tokens: number }
  | { kind: 'list'; prompts: readonly string[] };

export const BUILTIN_PROMPTS: readonly string[] = [
  'In the beginning',
  'And God said',
  'The Lord is my shepherd',
  'And it came to pass',
  'Blessed are the meek',
  'Now the serpent was',
  'And Moses went up',
  'Let there be light',
];

/** Common words, each about one token for a BPE vocabulary (one for the built-in model's), so n words ~ n tokens. */
const WORDS = (
  'the and of to that in he shall unto for his lord they be is him not them it with all thou thy was god which my me said ' +
  'but ye their have will thee from as are when this out were upon man by king son up there hath then people came had ' +
  'house into her on she come one we children before your also day land men shalt went hand us let made go things earth ' +
  'every saying now away did against these city over say may what heaven even so hast word sons father should fire name ' +
  'brought therefore water spake great behold light life among two servant waters called according good heart place make ' +
  'bread sea night way evil days mine own back than eat given hear'
).split(' ');

/** A prompt of `tokens` - 1 seeded words (the server adds BOS), capitalised: about `tokens` tokens. */
export function generatedPrompt(rng: Rng, tokens: number): string {
  const n = Math.max(1, Math.round(tokens) - 1);
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(WORDS[Math.floor(rng.next() * WORDS.length)]!);
  const text = words.join(' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** `n` prompts from `source`: a list's (and the built-in) ones in turn, or freshly generated ones. */
export function makePrompts(source: PromptSource, n: number, seed: number): string[] {
  if (source.kind === 'generated') {
    const rng = createRng(seed * 2 + 1);
    return Array.from({ length: n }, () => generatedPrompt(rng, source.tokens));
  }
  const list = source.kind === 'builtin' ? BUILTIN_PROMPTS : source.prompts;
  if (list.length === 0) throw new HetisError('bad_input', 'no prompts: the prompt list is empty');
  return Array.from({ length: n }, (_, i) => list[i % list.length]!);
}

/** Prompts of a file's text: one per non-blank line (a trailing CR dropped). */
export function promptLines(text: string): string[] {
  return text.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '');
}
