// Another local user (nffi-hostile) against root's inspection of nginx workers running as nobody
// (DESIGN.md "Trust model"), what the other files leave out. Covered elsewhere: the run dir it
// can neither list nor plant in, and a run dir it made first (run-dir-safety.test.ts); serve's
// socket, token and TCP endpoint it cannot get past (serve-auth.test.ts); `coroutines` as
// another user (`daemon`, probe-e2e.test.ts). Here:
//   - every command that attaches, run as nffi-hostile, stops at one permission line and leaves
//     no trace in the run dir or the worker's log;
//   - a serve entry of its own that names root's nginx is never joined by root's CLI;
//   - root's own serve dir, /tmp/nffi-inspect.0, made first by nffi-hostile (a dir of its own
//     with a forged entry and a listening socket, or a symlink to one): `serve` refuses it in one
//     line, and `breakpoints`, `breakpoint`, `delete`, `detach` never connect to the forgery nor
//     change it. This runs in a private mount namespace with a tmpfs on /tmp (unshare -m), so the
//     machine's real /tmp/nffi-inspect.0 (other tests' serves) is never touched.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { startTime } from '../../probe/registry.js';
import { BIN, oneLineError, runCli } from '../harness/cli.js';
import { HOSTILE, hostileUser } from '../harness/hostile.js';
import { useNginx } from '../harness/nginx.js';
import { crashLines, FIXTURE_LUA, freshAttach, NOTHING_ARMED, runDirEntries, SOAK_FILE, SOAK_HTTP, SOAK_LINE } from './app.js';

const hostile = hostileUser();
// Outside /tmp: the namespace test hides /tmp behind a tmpfs, and its CLI still reaches the run dir.
const TMP = mkdtempSync('/var/tmp/nffi-xuser-');
const REPO = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
chmodSync(TMP, 0o755);
const RUN = join(TMP, 'run');
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const nginx = useNginx({ workers: 2, http: SOAK_HTTP, luaPath: [FIXTURE_LUA], env: { NFFI_INSPECT_RUN_DIR: RUN } });

const PERMISSION = /^nffi-inspect: permission denied: attaching to worker \d+ \(user nobody\) needs root or nobody$/;

describe(`${HOSTILE} cannot attach`, () => {
  it('with any command: one permission line each, nothing in the run dir, nothing in the workers\' log', async () => {
    const master = String(nginx().masterPid);
    const worker = String(nginx().workerPids()[0]);
    const from = nginx().errorLog().length;
    const commands = [
      ['coroutines', master], ['stack', worker, '1'], ['tasks', master], ['queue', master], ['workers', master],
      ['breakpoint', master, `${SOAK_FILE}:${SOAK_LINE}`], ['breakpoint', master, 'ffi:echo.echo'], ['serve', master],
    ];
    // the default run dir and the workers' own one, in turn
    for (const [i, cmd] of commands.entries()) {
      const args = i % 2 ? [...cmd, '--run-dir', RUN] : cmd;
      const r = await runCli(args, { user: HOSTILE });
      expect({ args, status: r.status, line: oneLineError(r) }).toEqual({ args, status: 1, line: expect.stringMatching(PERMISSION) });
    }
    expect(runDirEntries(RUN)).toEqual([]);
    const log = nginx().errorLog().slice(from);
    expect(log).not.toMatch(/\[nffi inspect (attached|refused)/);
    expect(crashLines(log)).toEqual([]);
    // and root still attaches, with nothing armed
    const pids = nginx().workerPids().sort((a, b) => a - b);
    expect(await freshAttach(nginx().masterPid, RUN)).toEqual(pids.map((pid) => ({ pid, ...NOTHING_ARMED })));
  });
});

// As nffi-hostile: listen on argv[1] (a unix socket) and count every connection in argv[2].
const LISTENER = `
const net = require('net');
const fs = require('fs');
const [sock, log] = process.argv.slice(1);
fs.writeFileSync(log, '');
net.createServer((c) => { fs.appendFileSync(log, 'connection\\n'); c.destroy(); }).listen(sock, () => fs.writeFileSync(log + '.ready', ''));
setTimeout(() => process.exit(0), 60000);
`;

describe(`a serve entry of ${HOSTILE}'s own naming root's nginx`, () => {
  it('is never joined: breakpoints, delete, detach and breakpoint as root do not connect to it', async () => {
    const dir = `/tmp/nffi-inspect.${hostile.uid}`;
    const work = join(TMP, 'hostile');
    mkdirSync(work, { mode: 0o700 });
    spawnSync('chown', [`${hostile.uid}:${hostile.gid}`, work]);
    const sock = join(work, 'serve.sock');
    const conns = join(work, 'conns');
    const listener = spawnSync('sh', ['-c', `setpriv --reuid=${hostile.uid} --regid=${hostile.gid} --clear-groups -- ${process.execPath} -e "$0" ${sock} ${conns} >/dev/null 2>&1 & echo $!; for i in $(seq 100); do [ -e ${conns}.ready ] && break; sleep 0.05; done`, LISTENER], { encoding: 'utf8' });
    const lpid = Number(listener.stdout.trim());
    try {
      // its own dir, as `serve` run by it would make it: an entry for root's master and workers
      const made = spawnSync('setpriv', [`--reuid=${hostile.uid}`, `--regid=${hostile.gid}`, '--clear-groups', '--', 'sh', '-c',
        `mkdir -p -m 700 ${dir} && umask 077 && cat > ${dir}/serve-${lpid}.json`], {
        input: JSON.stringify({ probe_pid: lpid, pid: nginx().masterPid, workers: nginx().workerPids(), socket: sock, token: 'ab'.repeat(32), probe_start: startTime(lpid) }),
        encoding: 'utf8',
      });
      expect(made.status, made.stderr).toBe(0);
      const master = String(nginx().masterPid);
      const bps = await runCli(['breakpoints', master, '--json']);
      expect(JSON.parse(bps.stdout)).toMatchObject({ serve: null, breakpoints: [] });
      expect(oneLineError(await runCli(['delete', master, '1']))).toBe(`nffi-inspect: no breakpoint 1: no serve probe holds ${master}`);
      expect((await runCli(['detach', master])).stdout).toBe(`${master}: not attached\n`);
      const bp = await runCli(['breakpoint', master, `${SOAK_FILE}:${SOAK_LINE}`, '--timeout', '1s', '--run-dir', RUN]);
      expect(bp.status, bp.stderr).toBe(0);
      expect(bp.stdout).toMatch(/^bp 1 ended \(timeout\)/m);
      expect(spawnSync('cat', [conns], { encoding: 'utf8' }).stdout).toBe('');
    } finally {
      try { process.kill(lpid, 'SIGKILL'); } catch { /* gone */ }
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Runs `script` (sh) as root in a private mount namespace whose /tmp is an empty tmpfs, with
 * $H the prefix that runs a command as nffi-hostile; its stdout (sections `== name` then lines).
 */
function inPrivateTmp(script: string, env: Record<string, string>): Map<string, string> {
  // a checkout under /tmp (a clone CI made there) is carried across the tmpfs: bound aside
  // first, then back at its own path, so the CLI and node_modules stay reachable
  const keep = `case "$REPO" in /tmp/*) mkdir -p "$KEEP" && mount --bind "$REPO" "$KEEP" || exit 97;; esac`;
  const back = `case "$REPO" in /tmp/*) mkdir -p "$REPO" && mount --bind "$KEEP" "$REPO" || exit 97;; esac`;
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c',
    `set -u; ${keep}\nmount -t tmpfs -o mode=1777,size=64m nffi-private-tmp /tmp || exit 97\n${back}\n${script}`], {
    encoding: 'utf8', timeout: 60_000,
    env: { ...process.env, ...env, REPO, KEEP: join(TMP, 'repo'),
      H: `setpriv --reuid=${hostile.uid} --regid=${hostile.gid} --clear-groups --` },
  });
  if (r.status === 97) throw new Error(`cannot mount a tmpfs on /tmp in a private mount namespace: ${r.stderr}`);
  if (r.status !== 0) throw new Error(`namespace script exited ${r.status}: ${r.stderr}\n${r.stdout}`);
  const out = new Map<string, string>();
  let name = '';
  for (const line of r.stdout.split('\n')) {
    const m = /^== (.+)$/.exec(line);
    if (m) out.set((name = m[1]!), '');
    else if (name) out.set(name, out.get(name)! + line + '\n');
  }
  return out;
}

describe(`root's own serve dir (/tmp/nffi-inspect.0) made first by ${HOSTILE}`, () => {
  // In the namespace: nffi-hostile's listener in /tmp/h, a forged entry for root's nginx in the
  // squatted dir (or in /tmp/h, the squatted dir being a symlink to it), then root's CLI.
  const SCRIPT = `
$H mkdir -m 755 /tmp/h
$H "$NODE" -e "$LISTENER" /tmp/h/serve.sock /tmp/h/conns >/dev/null 2>&1 &
LPID=$!
for i in $(seq 100); do [ -e /tmp/h/conns.ready ] && break; sleep 0.05; done
W=$H
case $MODE in
  dir) $H mkdir -m 700 /tmp/nffi-inspect.0; D=/tmp/nffi-inspect.0 ;;
  link) $H ln -s /tmp/h /tmp/nffi-inspect.0; D=/tmp/h ;;
  control) mkdir -m 700 /tmp/nffi-inspect.0; D=/tmp/nffi-inspect.0; W=env ;;
esac
START=$(sed 's/.*) //' /proc/$LPID/stat | cut -d' ' -f20)
printf '{"probe_pid":%s,"pid":%s,"workers":[%s],"socket":"/tmp/h/serve.sock","token":"%s","probe_start":"%s"}\\n' \\
  $LPID $MASTER $WORKERS $(printf 'ab%.0s' $(seq 32)) $START | $W sh -c "umask 077; cat > $D/serve-$LPID.json"
before=$(ls -lnR /tmp/nffi-inspect.0/ /tmp/h)
CLI="timeout -s KILL 20 $NODE $BIN"
# (in the control, serve would take the dir and run: not started there)
if [ "$MODE" != control ]; then echo "== serve"; $CLI serve $MASTER --run-dir "$RUN" 2>&1; echo "exit $?"; fi
echo "== breakpoints"; $CLI breakpoints $MASTER --json 2>&1; echo "exit $?"
echo "== delete"; $CLI delete $MASTER 1 2>&1; echo "exit $?"
echo "== detach"; $CLI detach $MASTER 2>&1; echo "exit $?"
echo "== breakpoint"; $CLI breakpoint $MASTER "$LOCATION" --timeout 1s --run-dir "$RUN" 2>&1; echo "exit $?"
echo "== connections"; cat /tmp/h/conns
after=$(ls -lnR /tmp/nffi-inspect.0/ /tmp/h)
echo "== unchanged"; [ "$before" = "$after" ] && echo yes || printf 'no\\n%s\\n---\\n%s\\n' "$before" "$after"
kill $LPID
`;

  it('control: the same entry in a dir of root\'s own is joined (the forgery would work if the dir were trusted)', () => {
    const out = inPrivateTmp(SCRIPT, {
      MODE: 'control', NODE: process.execPath, BIN, LISTENER, RUN, LOCATION: `${SOAK_FILE}:${SOAK_LINE}`,
      MASTER: String(nginx().masterPid), WORKERS: nginx().workerPids().join(','),
    });
    expect(out.get('connections')).toMatch(/^connection\n/);
    expect(out.get('breakpoints')).toMatch(/\nexit 1\n/);
  });

  it.each(['dir', 'link'])('squatted as a %s: serve refuses it in one line; no command connects to the forged entry or changes it', (mode) => {
    const out = inPrivateTmp(SCRIPT, {
      MODE: mode, NODE: process.execPath, BIN, LISTENER, RUN, LOCATION: `${SOAK_FILE}:${SOAK_LINE}`,
      MASTER: String(nginx().masterPid), WORKERS: nginx().workerPids().join(','),
    });
    const why = mode === 'dir' ? `owned by uid ${hostile.uid}, not 0` : 'it is a symlink';
    expect(out.get('serve')).toBe(`nffi-inspect: refusing run directory /tmp/nffi-inspect.0: ${why}\nexit 1\n`);
    const bps = out.get('breakpoints')!;
    expect(bps.endsWith('\nexit 0\n\n') || bps.endsWith('\nexit 0\n'), bps).toBe(true);
    expect(JSON.parse(bps.slice(0, bps.lastIndexOf('exit 0')))).toEqual({ pid: nginx().masterPid, serve: null, breakpoints: [] });
    expect(out.get('delete')).toBe(`nffi-inspect: no breakpoint 1: no serve probe holds ${nginx().masterPid}\nexit 1\n`);
    expect(out.get('detach')).toBe(`${nginx().masterPid}: not attached\nexit 0\n`);
    expect(out.get('breakpoint')).toMatch(/(^|\n)bp 1 ended \(timeout\) after \d+ hits?\nexit 0\n$/);
    expect(out.get('connections')).toBe('');
    expect(out.get('unchanged')!.trim()).toBe('yes');
    expect(runDirEntries(RUN)).toEqual([]);
    // the machine's own /tmp never saw any of it
    expect(readdirSync('/tmp').filter((n) => n === 'h')).toEqual([]);
  });
});
