// Owns: the engine requests of one completion request (one per choice): turning each one's
// tokens into text, ending it at a stop string, and reporting text and ends to the response
// writer. Must not: write HTTP, or submit to the engine (the server does; ids come in).

import type { FinishReason, RequestRecord } from '../engine/types.js';
import type { ChoiceText } from './choice-text.js';

/** How a choice ended: the engine's reason, with a stop string counted as 'stop'. */
export interface ChoiceResult {
  text: string;
  finishReason: FinishReason;
  /** Tokens the engine generated for it (EOS excluded). */
  completionTokens: number;
}

/** What a response writer hears. */
export interface SessionEvents {
  /** New text of choice `index` (never empty). */
  text(index: number, text: string): void;
  /** Choice `index` ended; `tail` is text held back until now (may be empty). */
  end(index: number, reason: FinishReason, tail: string): void;
}

export class Session {
  readonly done: Promise<ChoiceResult[]>;
  private resolve!: (r: ChoiceResult[]) => void;
  private readonly results: (ChoiceResult | undefined)[];
  private readonly texts: string[];
  private readonly stopped: boolean[];
  private pending: number;

  /**
   * `ids[i]` is choice i's engine request id and `choices[i]` its text state; `abort(id, reason)`
   * ends an engine request (its finish comes back through `finish`).
   */
  constructor(
    readonly ids: readonly string[],
    private readonly choices: readonly ChoiceText[],
    private readonly events: SessionEvents,
    private readonly abort: (id: string, reason: FinishReason) => void,
  ) {
    this.done = new Promise((r) => { this.resolve = r; });
    this.results = ids.map(() => undefined);
    this.texts = ids.map(() => '');
    this.stopped = ids.map(() => false);
    this.pending = ids.length;
  }

  /** Choice `index` generated `token`. */
  token(index: number, token: number): void {
    if (this.results[index] !== undefined || this.stopped[index]) return;
    const piece = this.choices[index]!.push(token);
    if (piece.text !== '') {
      this.texts[index] += piece.text;
      this.events.text(index, piece.text);
    }
    if (piece.stopped) {
      this.stopped[index] = true;
      this.abort(this.ids[index]!, 'stop');
    }
  }

  /** The engine finished choice `index`'s request. */
  finish(index: number, record: RequestRecord): void {
    if (this.results[index] !== undefined) return;
    let reason = record.finishReason;
    let tail = '';
    if (!this.stopped[index] && (reason === 'stop' || reason === 'length')) {
      const end = this.choices[index]!.end();
      tail = end.text;
      if (end.stopped) reason = 'stop';
    }
    this.texts[index] += tail;
    this.results[index] = { text: this.texts[index]!, finishReason: reason, completionTokens: record.outputLength };
    this.events.end(index, reason, tail);
    if (reason === 'error') this.cancel(); // one failed choice fails the request
    if (--this.pending === 0) this.resolve(this.results as ChoiceResult[]);
  }

  /** Ends every choice still running (client gone, another choice failed). */
  cancel(reason: FinishReason = 'abort'): void {
    this.ids.forEach((id, i) => { if (this.results[i] === undefined) this.abort(id, reason); });
  }

  get finished(): boolean {
    return this.pending === 0;
  }
}
