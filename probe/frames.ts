// Frames between probe and agent (probe/README.md): a 4-byte big-endian length, then that many
// bytes of UTF-8 JSON, at most 16 MiB.

export const MAX_FRAME = 16 * 1024 * 1024;

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

export function encodeFrame(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  if (body.length > MAX_FRAME) throw new FrameError(`frame of ${body.length} bytes exceeds ${MAX_FRAME}`);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

/**
 * Feed it chunks as they arrive; it returns the messages completed by each chunk. A frame that
 * spans many chunks (a walk of 10,000 coroutines is ~1 MB in 64 KiB reads) is joined once, when
 * its last byte arrives: joining on every chunk made decoding quadratic in the frame's size.
 */
export class FrameDecoder {
  private parts: Buffer[] = [];
  private size = 0;
  /** Length of the frame being gathered (head read), or -1 while fewer than 4 bytes are here. */
  private want = -1;

  push(chunk: Buffer): unknown[] {
    if (chunk.length) {
      this.parts.push(chunk);
      this.size += chunk.length;
    }
    const out: unknown[] = [];
    for (;;) {
      if (this.want < 0) {
        if (this.size < 4) break;
        const head = this.take(4);
        const len = head.readUInt32BE(0);
        if (len > MAX_FRAME) throw new FrameError(`frame of ${len} bytes exceeds ${MAX_FRAME}`);
        this.want = len;
      }
      if (this.size < this.want) break;
      const text = this.take(this.want).toString('utf8');
      this.want = -1;
      try {
        out.push(JSON.parse(text));
      } catch {
        throw new FrameError(`frame is not JSON: ${text.slice(0, 80)}`);
      }
    }
    return out;
  }

  /** The next n bytes (n <= size), joined only when they span chunks. */
  private take(n: number): Buffer {
    const first = this.parts[0]!;
    let got: Buffer;
    if (first.length >= n) {
      got = first.subarray(0, n);
      if (first.length === n) this.parts.shift();
      else this.parts[0] = first.subarray(n);
    } else {
      let count = 0;
      let bytes = 0;
      while (bytes < n) bytes += this.parts[count++]!.length;
      const joined = Buffer.concat(this.parts.splice(0, count), bytes);
      got = joined.subarray(0, n);
      if (bytes > n) this.parts.unshift(joined.subarray(n));
    }
    this.size -= n;
    return got;
  }

  /** Bytes of an incomplete frame still waiting for the rest (its head included). */
  get pending(): number {
    return this.size + (this.want >= 0 ? 4 : 0);
  }
}
