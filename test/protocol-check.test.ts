// The strict message check of test/harness/protocol-check.ts (what test/descriptor.test.ts
// holds every agent answer and event to) can fail: undeclared fields, wrong types, missing
// fields and values outside an enum are each reported with their path, and so are declared
// fields no message carried. And the descriptor itself leaves no field untyped.
import { describe, expect, it } from 'vitest';
import { loadDescriptor, type Descriptor } from '../scripts/gen-protocol-types.js';
import { ProtocolCheck } from './harness/protocol-check.js';

const desc: Descriptor = {
  version: { major: '0', minor: '1' },
  domains: [
    {
      domain: 'A',
      types: [
        { id: 'Lat', type: 'object', properties: [{ name: 'p50', type: 'number' }, { name: 'count', type: 'integer' }] },
        { id: 'Row', type: 'object', properties: [
          { name: 'id', type: 'integer' },
          { name: 'state', type: 'string', enum: ['armed', 'pending'] },
          { name: 'lat', $ref: 'Lat', optional: true },
          { name: 'frames', type: 'array', items: { $ref: 'B.Frame' } },
          { name: 'by', type: 'object', optional: true, additionalProperties: { $ref: 'Lat' } },
          { name: 'value', type: 'any', optional: true },
        ] },
      ],
      commands: [
        { name: 'get', returns: [{ name: 'rows', type: 'array', items: { $ref: 'Row' } }, { name: 'more', type: 'boolean', optional: true }] },
        { name: 'nothing' },
      ],
      events: [{ name: 'said', parameters: [{ name: 'id', type: 'integer' }] }],
    },
    { domain: 'B', types: [{ id: 'Frame', type: 'object', properties: [{ name: 'line', type: 'integer' }] }] },
  ],
};

const check = new ProtocolCheck(desc);
const row = { id: 1, state: 'armed', lat: { p50: 0.5, count: 3 }, frames: [{ line: 4 }], by: { x: { p50: 1, count: 1 } }, value: [{}] };

describe('ProtocolCheck', () => {
  it('passes a message the descriptor describes, optional fields absent or present', () => {
    expect(check.result('A.get', { rows: [row] })).toEqual([]);
    expect(check.result('A.get', { rows: [{ id: 2, state: 'pending', frames: [] }], more: true })).toEqual([]);
    expect(check.result('A.nothing', {})).toEqual([]);
    expect(check.event('A.said', { id: 7 })).toEqual([]);
  });

  it.each([
    ['an undeclared field', 'A.get', { rows: [{ ...row, extra: 1 }] }, 'A.get result.rows[0].extra: not declared (value 1)'],
    ['an undeclared top-level field', 'A.get', { rows: [], total: 3 }, 'A.get result.total: not declared (value 3)'],
    ['an undeclared field inside a $ref', 'A.get', { rows: [{ ...row, lat: { p50: 1, count: 1, p90: 2 } }] }, 'A.get result.rows[0].lat.p90: not declared (value 2)'],
    ['an undeclared field of another domain\'s type', 'A.get', { rows: [{ ...row, frames: [{ line: 1, col: 2 }] }] }, 'A.get result.rows[0].frames[0].col: not declared (value 2)'],
    ['a string for an integer', 'A.get', { rows: [{ ...row, id: '1' }] }, 'A.get result.rows[0].id: expected an integer, got string "1"'],
    ['a fraction for an integer', 'A.get', { rows: [{ ...row, lat: { p50: 1, count: 1.5 } }] }, 'A.get result.rows[0].lat.count: expected an integer, got number 1.5'],
    ['null for a number (NaN encoded)', 'A.get', { rows: [{ ...row, lat: { p50: null, count: 1 } }] }, 'A.get result.rows[0].lat.p50: expected a number, got null null'],
    ['an object for an array (an empty Lua table)', 'A.get', { rows: {} }, 'A.get result.rows: expected an array, got object {}'],
    ['a value outside the enum', 'A.get', { rows: [{ ...row, state: 'new' }] }, 'A.get result.rows[0].state: "new" is not one of armed, pending'],
    ['a missing field', 'A.get', { rows: [{ id: 1, state: 'armed' }] }, 'A.get result.rows[0].frames: missing (not optional)'],
    ['a bad map value', 'A.get', { rows: [{ ...row, by: { x: { p50: 1 } } }] }, 'A.get result.rows[0].by.x.count: missing (not optional)'],
    ['a result for a command that returns nothing', 'A.nothing', { ok: true }, 'A.nothing result.ok: not declared (value true)'],
  ])('rejects %s', (_what, method, result, problem) => {
    expect(check.result(method, result)).toContain(problem);
  });

  it('rejects events and commands the descriptor does not have, and bad event params', () => {
    expect(check.event('A.shouted', {})).toEqual(['A.shouted: no such event in the descriptor']);
    expect(check.result('A.put', {})).toEqual(['A.put: no such command in the descriptor']);
    expect(check.event('A.said', { id: 1, pid: 2 })).toEqual(['A.said params.pid: not declared (value 2)']);
    expect(check.event('A.said', [])).toEqual(['A.said params: expected an object, got array []']);
  });

  it('lists the declared fields no message checked carried', () => {
    const c = new ProtocolCheck(desc);
    expect(c.result('A.get', { rows: [{ id: 2, state: 'pending', frames: [{ line: 1 }] }] })).toEqual([]);
    expect(c.unsent(['A'])).toEqual(['A.Row.lat', 'A.Lat.p50', 'A.Lat.count', 'A.Row.by', 'A.Row.value', 'A.get result.more', 'A.said params.id']);
    expect(c.result('A.get', { rows: [row], more: false })).toEqual([]);
    expect(c.event('A.said', { id: 1 })).toEqual([]);
    expect(c.unsent(['A'])).toEqual([]);
  });

  it('finds untyped fields: bare objects, arrays without items, unknown $refs', () => {
    const loose = new ProtocolCheck({
      version: desc.version,
      domains: [{
        domain: 'C',
        types: [{ id: 'T', type: 'object', properties: [{ name: 'o', type: 'object' }, { name: 'a', type: 'array' }, { name: 'r', $ref: 'Nope' }] }],
        events: [{ name: 'e', parameters: [{ name: 'm', type: 'object', additionalProperties: { type: 'object' } }] }],
      }],
    });
    expect(loose.untyped(['C'])).toEqual([
      'C.T.o: an object with neither properties nor additionalProperties',
      'C.T.a: an array without items',
      'C.T.r: $ref Nope names no type',
      'C.e params.m{}: an object with neither properties nor additionalProperties',
    ]);
    expect(check.untyped(['A', 'B'])).toEqual([]);
  });
});

describe('probe/protocol.json', () => {
  it('types every field of every domain: no bare object, no array without items, every $ref resolves', () => {
    const d = loadDescriptor();
    expect(new ProtocolCheck(d).untyped(d.domains.map((x) => x.domain))).toEqual([]);
  });
});
