// Owns: one choice's text as its tokens arrive: only whole characters (the tokenizer's stream
// decoder), never any part of a stop string (StopMatcher), and for chat replies no leading
// whitespace. Same rules as runtime/generate.ts, so served and generated text agree.
// Must not: know about HTTP, the engine or sampling.

import { StopMatcher } from '../model/stop.js';
import type { StreamDecoder, Tokenizer } from '../model/tokenizer.js';

export interface TextPiece {
  /** Text safe to show now (may be empty). */
  text: string;
  /** A stop string was found: `text` ends just before it and nothing more comes. */
  stopped: boolean;
}

export class ChoiceText {
  private readonly decoder: StreamDecoder;
  private readonly stops: StopMatcher;
  /** Still dropping leading whitespace (chat replies, until the first visible character). */
  private trimming: boolean;
  private ended = false;

  constructor(tokenizer: Tokenizer, promptTokens: readonly number[], stop: readonly string[], trimStart: boolean) {
    this.decoder = tokenizer.streamDecoder(promptTokens);
    this.stops = new StopMatcher(stop);
    this.trimming = trimStart;
  }

  /** Feeds one generated token. */
  push(token: number): TextPiece {
    if (this.ended) return { text: '', stopped: true };
    const r = this.stops.push(this.decoder.push(token));
    if (r.stopped) this.ended = true;
    return { text: this.trim(r.text), stopped: r.stopped };
  }

  /** Generation ended (EOS, length): what was held back, and whether it completes a stop string. */
  end(): TextPiece {
    if (this.ended) return { text: '', stopped: true };
    this.ended = true;
    const r = this.stops.push(this.decoder.flush());
    const text = r.text + (r.stopped ? '' : this.stops.flush());
    return { text: this.trim(text), stopped: r.stopped };
  }

  private trim(text: string): string {
    if (!this.trimming || text === '') return text;
    const t = text.trimStart();
    if (t !== '') this.trimming = false;
    return t;
  }
}
