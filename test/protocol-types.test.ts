// probe/protocol-types.ts is generated from probe/protocol.json and must not go stale.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDescriptor, PROTOCOL_TYPES, renderProtocolTypes } from '../scripts/gen-protocol-types.js';

describe('generated protocol types', () => {
  it('match probe/protocol.json (regenerate: node dist/scripts/gen-protocol-types.js)', () => {
    expect(readFileSync(PROTOCOL_TYPES(), 'utf8')).toBe(renderProtocolTypes(loadDescriptor()));
  });

  it('name every command and event of the descriptor', () => {
    const text = readFileSync(PROTOCOL_TYPES(), 'utf8');
    for (const d of loadDescriptor().domains) {
      for (const c of (d as { commands?: { name: string }[] }).commands ?? []) expect(text).toContain(`'${d.domain}.${c.name}'`);
      for (const e of (d as { events?: { name: string }[] }).events ?? []) expect(text).toContain(`'${d.domain}.${e.name}'`);
    }
  });
});
