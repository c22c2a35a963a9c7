import { isUtf8 } from 'node:buffer';

/**
 * Splits the control stream into command lines. Pure: fed bytes, emits events,
 * never touches a socket, so it is tested without one.
 *
 * - CRLF and bare LF both end a line.
 * - Telnet IAC sequences are stripped (clients send IAC IP IAC DM before ABOR);
 *   IAC IAC stands for a literal 0xFF byte. Sent as urgent data, part of the
 *   Synch is taken out of the stream by the kernel: an IAC before a plain byte
 *   is dropped alone, and so is a DM left bare right after IAC IP.
 * - A line longer than `maxLength` bytes is dropped whole: everything up to the
 *   next LF is discarded, so the tail of an over-long line never runs as a new
 *   command (pyftpdlib's mistake).
 */
export interface LineSink {
  /** `utf8` false: the line's bytes are not valid UTF-8 (`text` holds U+FFFD in their place). */
  onLine(text: string, utf8: boolean): void;
  onOverflow(): void;
}

const IAC = 0xff;
/** Telnet commands are 0xF0-0xFF; after an IAC anything lower is data whose command went out of band. */
const FIRST_COMMAND = 0xf0;
const DM = 0xf2;
const SB = 0xfa;
const SE = 0xf0;
const WILL = 0xfb;
const DONT = 0xfe;
/** First size of a line buffer: most command lines fit; longer ones double it up to the limit. */
const FIRST_BUFFER = 64;

type TelnetState = 'data' | 'iac' | 'after-command' | 'option' | 'sub' | 'sub-iac';

export class LineReader {
  /**
   * Holds the line being read, and only while one is: a reader between lines
   * (an idle session) keeps no buffer at all.
   */
  private buf: Buffer | undefined;
  private len = 0;
  private discarding = false;
  private telnet: TelnetState = 'data';
  private skipLf = false;

  constructor(
    private readonly maxLength: number,
    private readonly sink: LineSink,
  ) {}

  /** Drop whatever is buffered: used after AUTH TLS, so pre-handshake bytes never run. */
  reset(): void {
    this.buf = undefined;
    this.len = 0;
    this.discarding = false;
    this.telnet = 'data';
    this.skipLf = false;
  }

  get pending(): number {
    return this.len;
  }

  push(chunk: Buffer): void {
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      switch (this.telnet) {
        case 'iac':
          if (b === IAC) {
            this.telnet = 'data';
            this.byte(b);
          } else if (b >= WILL && b <= DONT) this.telnet = 'option';
          else if (b === SB) this.telnet = 'sub';
          else if (b >= FIRST_COMMAND) this.telnet = 'after-command';
          else {
            this.telnet = 'data';
            this.byte(b);
          }
          continue;
        case 'after-command':
          this.telnet = 'data';
          if (b === DM) continue;
          if (b === IAC) {
            this.telnet = 'iac';
            continue;
          }
          this.byte(b);
          continue;
        case 'option':
          this.telnet = 'data';
          continue;
        case 'sub':
          if (b === IAC) this.telnet = 'sub-iac';
          continue;
        case 'sub-iac':
          this.telnet = b === SE ? 'data' : 'sub';
          continue;
        case 'data':
          if (b === IAC) {
            this.telnet = 'iac';
            continue;
          }
          this.byte(b);
      }
    }
    // RFC 959 "Synch": clients such as Python's ftplib send "ABOR\r\n" as TCP urgent
    // data; the urgent LF never reaches a Node socket, so a pending "ABOR\r" is a line.
    if ((this.telnet === 'data' || this.telnet === 'after-command') && !this.discarding && this.len === 5 && this.buf![4] === 0x0d &&
        this.buf!.toString('latin1', 0, 4).toUpperCase() === 'ABOR') {
      this.endLine();
      this.skipLf = true;
      this.sink.onLine('ABOR', true);
    }
  }

  private endLine(): void {
    this.buf = undefined;
    this.len = 0;
  }

  private byte(b: number): void {
    if (this.skipLf) {
      this.skipLf = false;
      if (b === 0x0a) return;
    }
    if (b === 0x0a) {
      if (this.discarding) {
        this.discarding = false;
        return;
      }
      let end = this.len;
      if (end > 0 && this.buf![end - 1] === 0x0d) end--;
      const text = end > 0 ? this.buf!.toString('utf8', 0, end) : '';
      // Decoding puts U+FFFD where bytes are not UTF-8; only then is the check needed.
      const utf8 = !text.includes('\uFFFD') || isUtf8(this.buf!.subarray(0, end));
      this.endLine();
      this.sink.onLine(text, utf8);
      return;
    }
    if (this.discarding) return;
    if (this.len >= this.maxLength) {
      this.discarding = true;
      this.endLine();
      this.sink.onOverflow();
      return;
    }
    if (!this.buf) this.buf = Buffer.allocUnsafe(Math.min(this.maxLength, FIRST_BUFFER));
    else if (this.len === this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.min(this.maxLength, this.buf.length * 2));
      this.buf.copy(bigger, 0, 0, this.len);
      this.buf = bigger;
    }
    this.buf[this.len++] = b;
  }
}
