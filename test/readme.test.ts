// The README's first lines are what a newcomer types (the brief): `npm run demo` and
// `npm test`, and CI runs exactly that test command. An edit once put a paragraph above
// the title; this keeps the top where a reader looks first.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8').split('\n');

describe('README', () => {
  it('opens with the title and a block of the two commands: npm run demo, npm test', () => {
    expect(readme[0]).toBe('# nffi-inspect');
    const fence = readme.findIndex((l) => l.startsWith('```'));
    expect(fence).toBeGreaterThan(0);
    expect(fence).toBeLessThan(4);
    const block = readme.slice(fence + 1, readme.indexOf('```', fence + 1));
    expect(block.map((l) => l.split(/\s+#/)[0]!.trim())).toEqual(['npm run demo', 'npm test']);
  });

  it('.ci/run runs the README\'s test command', () => {
    const ci = readFileSync(new URL('.ci/run', root), 'utf8').split('\n').map((l) => l.trim());
    expect(ci).toContain('npm test');
  });
});
