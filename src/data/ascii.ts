import { Transform, type TransformCallback } from 'node:stream';

/**
 * TYPE A on the way out: bare LF becomes CRLF. A CR at the end of one chunk
 * is remembered so a CRLF split across chunks is not doubled.
 */
export class ToNetworkAscii extends Transform {
  private lastWasCr = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let extra = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] === 0x0a && !(i === 0 ? this.lastWasCr : chunk[i - 1] === 0x0d)) extra++;
    }
    if (extra === 0) {
      this.lastWasCr = chunk.length > 0 ? chunk[chunk.length - 1] === 0x0d : this.lastWasCr;
      done(null, chunk);
      return;
    }
    const out = Buffer.allocUnsafe(chunk.length + extra);
    let o = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === 0x0a && !(i === 0 ? this.lastWasCr : chunk[i - 1] === 0x0d)) out[o++] = 0x0d;
      out[o++] = b;
    }
    this.lastWasCr = chunk[chunk.length - 1] === 0x0d;
    done(null, out);
  }
}

/** TYPE A on the way in: CRLF becomes LF; a lone CR is kept. */
export class FromNetworkAscii extends Transform {
  private pendingCr = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const out = Buffer.allocUnsafe(chunk.length + 1);
    let o = 0;
    let i = 0;
    if (this.pendingCr) {
      this.pendingCr = false;
      if (chunk[0] !== 0x0a) out[o++] = 0x0d;
    }
    for (; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === 0x0d) {
        if (i === chunk.length - 1) {
          this.pendingCr = true;
          continue;
        }
        if (chunk[i + 1] === 0x0a) continue;
      }
      out[o++] = b;
    }
    done(null, out.subarray(0, o));
  }

  override _flush(done: TransformCallback): void {
    done(null, this.pendingCr ? Buffer.from([0x0d]) : undefined);
  }
}
