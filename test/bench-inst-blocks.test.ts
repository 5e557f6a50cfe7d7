// How the instrumentation bench cuts a request into blocks (bench/ffi-instrumentation.ts): whole
// units of 8 (bench_inst.lua's A B B A B A A B), at least 8 units, each block at least 32 calls a
// light thread, more calls when a row has too few; and medianOf, which every bench cell uses.
import { describe, expect, it } from 'vitest';
import { blocksFor } from '../bench/ffi-instrumentation.js';
import { callsFor, medianOf } from '../bench/ffi-run.js';

describe('instrumentation bench blocks', () => {
  it('gives every row of the default table whole units, enough of them, and full blocks', () => {
    for (const size of [64, 4096, 65536]) {
      for (const conc of [1, 32]) {
        const { calls, blocks } = blocksFor(callsFor(size, conc) * 2, conc, 128);
        expect(blocks % 8, `${size} B × ${conc}`).toBe(0);
        expect(blocks, `${size} B × ${conc}`).toBeGreaterThanOrEqual(64);
        expect(blocks).toBeLessThanOrEqual(128);
        // bench_inst.lua's block: floor(calls / blocks / conc) * conc calls
        const perBlock = Math.floor(calls / blocks / conc) * conc;
        expect(perBlock / conc, `${size} B × ${conc}`).toBeGreaterThanOrEqual(32);
        expect(calls).toBeGreaterThanOrEqual(callsFor(size, conc) * 2);
      }
    }
  });

  it('lengthens a row too short for 8 units, and keeps a long one as asked', () => {
    expect(blocksFor(1000, 32, 128)).toEqual({ calls: 65536, blocks: 64 });
    expect(blocksFor(20000, 1, 128)).toEqual({ calls: 20000, blocks: 128 });
    expect(blocksFor(20000, 1, 100)).toEqual({ calls: 20000, blocks: 96 });
  });

  it('refuses a cap under 8 units in one line', () => {
    expect(() => blocksFor(20000, 1, 60)).toThrow(/^BENCH_INST_BLOCKS=60: at least 64 \(units of 8\)$/);
  });

  it('takes the middle of an odd count and the mean of the two middle values of an even one', () => {
    expect(medianOf([3, 1, 2])).toBe(2);
    expect(medianOf([4, 1, 3, 2])).toBe(2.5);
    expect(medianOf([5])).toBe(5);
  });
});
