// A user who is not root, whose home does not exist (nobody: /nonexistent), runs the CLI the
// way README says: `node bin/nffi-inspect.js` (or the script itself, or an install that puts
// `nffi-inspect` on PATH). `npx nffi-inspect` fails there inside npm, before our code runs (npm
// cannot write its cache or logs under HOME), so README does not offer it to such users.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN } from './harness/cli.js';
import { useNginx } from './harness/nginx.js';
import { PARK_APP_HTTP } from './harness/park-app.js';

function asNobody(argv: string[]) {
  return spawnSync('runuser', ['-u', 'nobody', '--', ...argv], {
    cwd: '/', encoding: 'utf8', timeout: 30_000,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', LANG: 'C.UTF-8' },
  });
}

describe('the CLI as a user without a writable home', () => {
  const nginx = useNginx({ workers: 1, http: PARK_APP_HTTP });

  it('node bin/nffi-inspect.js ps lists the running nginx, with no npm in the way', () => {
    const r = asNobody([process.execPath, BIN, 'ps', '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { masters: { pid: number; workers: { pid: number }[] }[] };
    const m = out.masters.find((x) => x.pid === nginx().masterPid);
    expect(m?.workers.map((w) => w.pid)).toEqual(nginx().workerPids());
  });

  it('the script runs by its own #! line too', () => {
    const r = asNobody([BIN, '--version']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
