/** An FTP reply: a code and one or more lines of text. */
export interface Reply {
  code: number;
  lines: string[];
  /** A refusal a security event already logged: the dispatcher adds no `refused` line (one line per event). */
  logged?: boolean;
}

export function reply(code: number, ...lines: string[]): Reply {
  return { code, lines: lines.length ? lines : [''] };
}

/**
 * The failure a handler throws. `text` goes to the client and is fixed by the
 * handler: it never carries host paths or errno strings; `cause` goes to the log.
 */
export class FtpError extends Error {
  constructor(
    readonly code: number,
    readonly text: string,
    options?: { cause?: unknown; logReason?: string; logged?: boolean },
  ) {
    super(text, options);
    this.name = 'FtpError';
    this.logReason = options?.logReason;
    this.logged = options?.logged === true;
  }
  readonly logReason: string | undefined;
  /** As Reply.logged: a security event already told the log about this refusal. */
  readonly logged: boolean;
}

/** Strip anything that could break the reply framing (CR, LF, NUL). */
function clean(text: string): string {
  return text.replace(/[\r\n\0]/g, ' ');
}

/**
 * RFC 959 framing: a single line is "CODE text"; several lines are
 * "CODE-first", then the middle lines (indented by a space so none can be
 * mistaken for the end), then "CODE last".
 */
export function formatReply(r: Reply): string {
  const lines = r.lines.map(clean);
  if (lines.length === 1) return `${r.code} ${lines[0]}\r\n`;
  const out: string[] = [`${r.code}-${lines[0]}`];
  for (let i = 1; i < lines.length - 1; i++) out.push(` ${lines[i]}`);
  out.push(`${r.code} ${lines[lines.length - 1]}`);
  return out.join('\r\n') + '\r\n';
}
