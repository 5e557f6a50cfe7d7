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

/** Feed it chunks as they arrive; it returns the messages completed by each chunk. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): unknown[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: unknown[] = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (len > MAX_FRAME) throw new FrameError(`frame of ${len} bytes exceeds ${MAX_FRAME}`);
      if (this.buf.length < 4 + len) break;
      const text = this.buf.subarray(4, 4 + len).toString('utf8');
      this.buf = this.buf.subarray(4 + len);
      try {
        out.push(JSON.parse(text));
      } catch {
        throw new FrameError(`frame is not JSON: ${text.slice(0, 80)}`);
      }
    }
    return out;
  }

  /** Bytes of an incomplete frame still waiting for the rest. */
  get pending(): number {
    return this.buf.length;
  }
}
