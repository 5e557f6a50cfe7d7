// `nffi-inspect config`, through the real binary as users run it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const bin = `${root}/bin/nffi-inspect.js`;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: '/' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('nffi-inspect config', () => {
  it('--json prints exactly the five keys, pointing into this checkout', () => {
    const r = cli('config', '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const cfg = JSON.parse(r.stdout) as Record<string, string>;
    expect(Object.keys(cfg).sort()).toEqual(
      ['examples_dir', 'lua_package_path', 'native_dir', 'nginx_http', 'nginx_main'].sort(),
    );
    expect(cfg.lua_package_path).toBe(`${root}/lua/?.lua;${root}/lua/?/init.lua;`);
    expect(existsSync(`${root}/lua`)).toBe(true);
    expect(cfg.native_dir).toBe(`${root}/native/build`);
    expect(cfg.examples_dir).toBe(`${root}/native/build/examples`);
  });

  // native/ is built by the bootstrap; before native/Makefile exists there is nothing to check.
  it('native_dir exists (bootstrap builds native/)', () => {
    const cfg = JSON.parse(cli('config', '--json').stdout) as Record<string, string>;
    expect(existsSync(cfg.native_dir!)).toBe(true);
  });

  it('prints nginx.conf lines for humans', () => {
    const r = cli('config');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`lua_package_path "${root}/lua/?.lua;${root}/lua/?/init.lua;;";`);
    expect(r.stdout).toMatch(/http \{/);
    expect(r.stdout).toContain('modules-enabled');
  });
});

describe('usage errors', () => {
  it.each([
    [['no-such-command'], /unknown command 'no-such-command'/],
    [['confg'], /unknown command 'confg'.*config/],
    [['config', '--bogus'], /unknown option '--bogus'/],
  ])('%j exits 2 with one line on stderr', (args, message) => {
    const r = cli(...args);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^nffi-inspect: /);
    expect(lines[0]).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('--help exits 0', () => {
    const r = cli('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('config');
  });
});
