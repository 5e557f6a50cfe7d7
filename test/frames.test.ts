// The probe↔agent frame codec: 4-byte big-endian length + JSON, at most 16 MiB.
import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder, FrameError, MAX_FRAME } from '../probe/frames.js';

const msgs = [{ id: 1, method: 'Lua.getCoroutines', params: { frames: 3 } }, { method: 'Agent.ping' }, { id: 2, result: { s: 'é✓' } }];

describe('frames', () => {
  it('encodes the length big-endian, in bytes of UTF-8', () => {
    const f = encodeFrame({ s: 'é' });
    expect(f.readUInt32BE(0)).toBe(Buffer.byteLength('{"s":"é"}'));
    expect(f.subarray(4).toString()).toBe('{"s":"é"}');
  });

  it.each([
    ['whole frames in one chunk', 1 << 20],
    ['one byte at a time', 1],
    ['chunks of 5 bytes', 5],
    ['chunks of 7 bytes', 7],
  ])('decodes %s', (_name, size) => {
    const all = Buffer.concat(msgs.map(encodeFrame));
    const d = new FrameDecoder();
    const out: unknown[] = [];
    for (let i = 0; i < all.length; i += size) out.push(...d.push(all.subarray(i, i + size)));
    expect(out).toEqual(msgs);
    expect(d.pending).toBe(0);
  });

  it('joins a large frame once, not on every chunk (8 MB in 1 KiB reads)', () => {
    // Joining the buffer on each chunk copied ~32 GB here (minutes); once is a few ms.
    const big = { id: 3, result: { s: 'x'.repeat(8 << 20) } };
    const all = Buffer.concat([encodeFrame(big), encodeFrame(msgs[1])]);
    const d = new FrameDecoder();
    const out: unknown[] = [];
    const t0 = performance.now();
    for (let i = 0; i < all.length; i += 1024) out.push(...d.push(all.subarray(i, i + 1024)));
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(out).toEqual([big, msgs[1]]);
    expect(d.pending).toBe(0);
  });

  it('counts the bytes of a frame still arriving, its head included', () => {
    const f = encodeFrame(msgs[0]);
    const d = new FrameDecoder();
    expect(d.push(f.subarray(0, 2))).toEqual([]);
    expect(d.pending).toBe(2);
    expect(d.push(f.subarray(2, 9))).toEqual([]);
    expect(d.pending).toBe(9);
    expect(d.push(f.subarray(9))).toEqual([msgs[0]]);
    expect(d.pending).toBe(0);
  });

  it('refuses a length over 16 MiB before reading the body', () => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(MAX_FRAME + 1, 0);
    expect(() => new FrameDecoder().push(head)).toThrow(FrameError);
  });

  it('refuses a body that is not JSON', () => {
    const body = Buffer.from('{nope');
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length, 0);
    expect(() => new FrameDecoder().push(Buffer.concat([head, body]))).toThrow(/not JSON/);
  });

  it('refuses to encode more than 16 MiB', () => {
    expect(() => encodeFrame({ s: 'x'.repeat(MAX_FRAME) })).toThrow(FrameError);
  });
});
