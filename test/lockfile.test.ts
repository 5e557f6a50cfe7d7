// The committed package-lock.json is one `npm ci` takes as it is, so `npm test` and `npm run demo`
// on a fresh clone leave `git status` clean: it lists every optional platform package any locked
// package asks for (a lock made where the registry lacked some was refused by npm ci wherever the
// registry has them, and bootstrap's npm install fallback rewrote it), and npm ci agrees.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../probe/repo-root.js';

interface LockEntry { version?: string; optionalDependencies?: Record<string, string>; dependencies?: Record<string, string>; devDependencies?: Record<string, string> }

const root = repoRoot();
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as LockEntry;

/** The entry npm would resolve `name` to from the package at `from` (nested, then up). */
function resolve(from: string, name: string): LockEntry | undefined {
  let dir = from;
  for (;;) {
    const e = lock.packages[`${dir ? `${dir}/` : ''}node_modules/${name}`];
    if (e) return e;
    if (!dir) return undefined;
    const cut = dir.lastIndexOf('/node_modules/');
    dir = cut < 0 ? '' : dir.slice(0, cut);
  }
}

describe('package-lock.json', () => {
  it('lists every optional package a locked package asks for, for every platform', () => {
    const missing: string[] = [];
    for (const [at, e] of Object.entries(lock.packages)) {
      for (const name of Object.keys(e.optionalDependencies ?? {})) if (!resolve(at, name)) missing.push(`${at || '(root)'} → ${name}`);
    }
    expect(missing).toEqual([]);
    expect(Object.keys(lock.packages).filter((k) => k.includes('@rollup/rollup-')).length).toBeGreaterThan(10);
  });

  it('pins what package.json asks for', () => {
    const top = lock.packages['']!;
    expect(top.dependencies).toEqual(pkg.dependencies);
    expect(top.devDependencies).toEqual(pkg.devDependencies);
  });

  it('is taken by npm ci as it is (a dry run in a copy)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nffi-lock-'));
    try {
      for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(root, f), join(dir, f));
      const r = spawnSync('npm', ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
      expect(r.stderr).not.toMatch(/in sync|Missing:/);
      expect(r.status).toBe(0);
      expect(readFileSync(join(dir, 'package-lock.json'), 'utf8')).toBe(readFileSync(join(root, 'package-lock.json'), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 130_000);
});
