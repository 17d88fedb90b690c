// Owns: turning a chat (a list of role + text messages) into the one prompt string a model
// without a chat template of its own continues, and the stop strings that end its turn.
// Must not: tokenize (the tokenizer adds BOS) or know about HTTP.

export type ChatRole = 'system' | 'user' | 'assistant';

/** One message, validated: developer messages arrive here as system ones. */
export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/** How a chat becomes a prompt. */
export interface ChatTemplate {
  /** The prompt; the model's continuation of it is the assistant's reply. */
  render(messages: readonly ChatMessage[]): string;
  /** Strings that end the reply when the model generates them (a new turn starting). */
  stop: readonly string[];
}

const PREFIX: { readonly [R in ChatRole]: string } = { system: 'System', user: 'User', assistant: 'Assistant' };

/**
 * The default template: system messages first (in their order), then the others in order, each
 * as `Role: content` and a newline, then `Assistant:` for the reply. Deterministic; no trimming.
 *
 *   System: You are terse.
 *   User: Who built the ark?
 *   Assistant:
 */
export const DEFAULT_CHAT_TEMPLATE: ChatTemplate = {
  render(messages) {
    const ordered = [...messages.filter((m) => m.role === 'system'), ...messages.filter((m) => m.role !== 'system')];
    return ordered.map((m) => `${PREFIX[m.role]}: ${m.content}\n`).join('') + `${PREFIX.assistant}:`;
  },
  stop: (['user', 'system', 'assistant'] as const).map((r) => `\n${PREFIX[r]}:`),
};
