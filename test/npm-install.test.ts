// The CLI installed the npm way (issue 16): `npm pack` gives a tarball that `npm install -g`
// turns into a working `nffi-inspect` on PATH, usable by a user whose home does not exist, and
// `config` from that install points nginx at the Lua agent the tarball carries.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from './harness/cli.js';
import { useNginx } from './harness/nginx.js';
import { PARK_APP_HTTP } from './harness/park-app.js';

const TMP = mkdtempSync(join(tmpdir(), 'nffi-npm-'));
chmodSync(TMP, 0o755);
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

function asNobody(argv: string[]) {
  return spawnSync('runuser', ['-u', 'nobody', '--', ...argv], {
    cwd: '/', encoding: 'utf8', timeout: 30_000,
    env: { PATH: `${TMP}/prefix/bin:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: '/nonexistent', LANG: 'C.UTF-8' },
  });
}

describe('npm pack, then npm install -g from the tarball', () => {
  const nginx = useNginx({ workers: 1, http: PARK_APP_HTTP });

  it('gives an nffi-inspect on PATH that a user without a home runs', () => {
    // dist/ is built by the bootstrap that runs before the suite: no prepack build here
    const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--pack-destination', TMP], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(pack.status, pack.stderr).toBe(0);
    const tarball = readdirSync(TMP).find((f) => f.endsWith('.tgz'));
    expect(tarball).toMatch(/^nffi-inspect-\d+\.\d+\.\d+\.tgz$/);
    const install = spawnSync('npm', ['install', '-g', '--prefix', join(TMP, 'prefix'), '--no-audit', '--no-fund', join(TMP, tarball!)],
      { cwd: TMP, encoding: 'utf8', timeout: 180_000 });
    expect(install.status, install.stderr).toBe(0);
    spawnSync('chmod', ['-R', 'a+rX', TMP]);

    const version = asNobody(['nffi-inspect', '--version']);
    expect(version.status, version.stderr).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);

    const ps = asNobody(['nffi-inspect', 'ps', '--json']);
    expect(ps.stderr).toBe('');
    expect(ps.status).toBe(0);
    const masters = (JSON.parse(ps.stdout) as { masters: { pid: number }[] }).masters.map((m) => m.pid);
    expect(masters).toContain(nginx().masterPid);

    const config = asNobody(['nffi-inspect', 'config', '--json']);
    expect(config.status, config.stderr).toBe(0);
    const cfg = JSON.parse(config.stdout) as { lua_package_path: string };
    const luaDir = cfg.lua_package_path.split(';')[0]!.replace(/\/\?\.lua$/, '');
    expect(luaDir.startsWith(join(TMP, 'prefix'))).toBe(true);
    expect(existsSync(join(luaDir, 'nffi', 'inspect.lua')) || existsSync(join(luaDir, 'nffi', 'inspect', 'init.lua'))).toBe(true);
  }, 300_000);
});
