// Owns: reading a server-sent-events stream cut anywhere into events' data. Must not: do I/O.

/**
 * Server-sent events, fed text in pieces that may split a line anywhere: calls `onData` with
 * each event's data (its `data:` lines joined by newlines) at the blank line that ends it.
 * Comments and other fields are ignored.
 */
export function createSseParser(onData: (data: string) => void): { push(text: string): void; end(): void } {
  let pending = '';
  let data: string[] = [];
  const line = (l: string): void => {
    if (l === '') {
      if (data.length > 0) onData(data.join('\n'));
      data = [];
    } else if (l.startsWith('data:')) {
      data.push(l.slice(l.startsWith('data: ') ? 6 : 5));
    }
  };
  return {
    push(text) {
      pending += text;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        line(pending.slice(0, nl).replace(/\r$/, ''));
        pending = pending.slice(nl + 1);
      }
    },
    end() {
      if (pending !== '') line(pending.replace(/\r$/, ''));
      pending = '';
      line('');
    },
  };
}
