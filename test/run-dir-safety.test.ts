// The run dir under attack (DESIGN.md "Trust model"; issue 11, holes 3 and 4), against real
// nginx (1 worker, running as nobody, agent polling every 20 ms):
//   - the root CLI refuses a run dir it cannot trust with one line, and never creates, chmods
//     or chowns anything outside it, even while a process running as nobody swaps links in;
//   - the worker refuses FIFOs, links, sockets, wrong owners and modes once each, in one log
//     line, and its event loop never stalls (a 10 ms timer in test/fixtures/lua/lag_app.lua);
//   - another local user (nffi-hostile) can neither read the run dir nor plant anything in it,
//     and a run dir it made first is refused by both sides.
// The test directory stands in for /tmp: sticky and world-writable, so anyone may create the
// run dir first, and the run dir's owner (nobody) may rename it.
import { spawnSync } from 'node:child_process';
import {
  chmodSync, chownSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync,
  statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachWorker } from '../probe/attach.js';
import { ProbeError } from '../probe/errors.js';
import { readNginxProc, type NginxProc } from '../probe/procs.js';
import { oneLineError, runCli } from './harness/cli.js';
import { hostileUser, nobodyUser, nodeAs, runAs } from './harness/hostile.js';
import { FIXTURE_LUA, LAG_APP_HTTP } from './harness/lag-app.js';
import { http, useNginx, waitFor } from './harness/nginx.js';

const nobody = nobodyUser();
const hostile = hostileUser();

const TMP = mkdtempSync(join(tmpdir(), 'nffi-rundir-'));
chmodSync(TMP, 0o1777);
const RUN = join(TMP, 'run');
// What an attacker points links at: root's, outside the run dir; it must never change.
const ROOTDIR = mkdtempSync(join(tmpdir(), 'nffi-rootonly-'));
chmodSync(ROOTDIR, 0o755);
const TARGET = join(ROOTDIR, 'target');
writeFileSync(TARGET, 'precious\n', { mode: 0o644 });
const FIFO_OUT = join(TMP, 'fifo-out');
const POLL_MS = 20;
const STALL_MS = 50;

const nginx = useNginx({
  workers: 1,
  http: LAG_APP_HTTP,
  luaPath: [FIXTURE_LUA],
  env: { NFFI_INSPECT_RUN_DIR: RUN, NFFI_INSPECT_POLL: String(POLL_MS / 1000) },
});

afterAll(() => {
  rmSync(TMP, { recursive: true, force: true });
  rmSync(ROOTDIR, { recursive: true, force: true });
});

let worker: NginxProc;
let pid = 0;
let attachPath = '';
beforeAll(() => {
  pid = nginx().workerPids()[0];
  worker = readNginxProc(pid)!;
  attachPath = join(RUN, `${pid}.attach`);
  expect(worker.uid).toBe(nobody.uid);
  sh('mkfifo', ['-m', '666', FIFO_OUT]);
  // The stall bound is about the worker blocking itself, not about the CPU it gets on a
  // loaded 2-core machine: first in line for the CPU, it measures only the former.
  sh('renice', ['-n', '-10', '-p', String(pid)]);
});

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** A bound unix socket file left at `path` (the process exits without unlinking it). */
function socketFile(path: string): void {
  sh(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`]);
}

/** Everything about the outside target that a write, chmod or chown would change. */
function outside(): unknown {
  const t = statSync(TARGET);
  const d = statSync(ROOTDIR);
  return {
    target: { text: readFileSync(TARGET, 'utf8'), mode: t.mode, uid: t.uid, gid: t.gid, ctime: t.ctimeMs, ino: t.ino },
    dir: { names: readdirSync(ROOTDIR), mode: d.mode, uid: d.uid, gid: d.gid, ctime: d.ctimeMs },
  };
}
let before: unknown;
beforeAll(() => {
  before = outside();
});

/** The run dir as the agent and probe want it: nobody's, 0700, empty. */
function freshRun(): void {
  rmSync(RUN, { recursive: true, force: true });
  rmSync(`${RUN}.away`, { recursive: true, force: true });
  mkdirSync(RUN, { mode: 0o700 });
  chmodSync(RUN, 0o700);
  chownSync(RUN, nobody.uid, nobody.gid);
}

function give(path: string, u = nobody): void {
  lchownSync(path, u.uid, u.gid);
}

interface Lag {
  /** The longest lateness of the worker's 10 ms timer since the last call (ms). */
  max: number;
  /** The same less the time the worker waited for a CPU meanwhile: its own stall. */
  own: number;
  /** How long ago the timer last ran. */
  age: number;
  /** CPU time the worker used in the interval of the longest `own` (the rest: blocked). */
  ownCpu: number;
}

/** Per worker, since the last call (which this one resets). */
async function lag(): Promise<Map<number, Lag>> {
  const res = await http(nginx().url('/lag?reset=1'), { timeout: 2_000 });
  expect(res.status).toBe(200);
  const out = new Map<number, Lag>();
  for (const line of res.body.toString().trim().split('\n')) {
    const [p, max, own, age, ownCpu] = line.split(' ').map(Number);
    out.set(p!, { max: max!, own: own!, age: age!, ownCpu: ownCpu! });
  }
  return out;
}

/**
 * The worker's event loop did not stall for STALL_MS. What counts is the stall the worker
 * makes itself (running or blocked, e.g. in a FIFO's open), not its wait for a CPU on a
 * loaded machine; the raw lateness is checked against a bound only a block would pass.
 */
function expectNoStallIn(l: Lag | undefined): void {
  expect(l, 'the worker reports its timer').toBeDefined();
  expect(l!.own, `longest stall of worker ${pid}'s event loop, less its CPU wait (ms)`).toBeLessThan(STALL_MS);
  expect(l!.max, `longest lateness of worker ${pid}'s timer (ms)`).toBeLessThan(1_000);
  expect(l!.age).toBeLessThan(1_000);
}

async function expectNoStall(): Promise<void> {
  expectNoStallIn((await lag()).get(pid));
}

/** Error-log lines written since `from` (a length of the log). */
const logSince = (from: number): string => nginx().errorLog().slice(from);
const count = (text: string, line: string): number => text.split(line).length - 1;

describe('the root CLI and a run dir it cannot trust', () => {
  const cases: Array<[string, () => void, (h: number) => RegExp]> = [
    ['a symlink to a root-owned directory', () => { symlinkSync(ROOTDIR, RUN); give(RUN); }, () => /: it is a symlink$/],
    ['a symlink to the run dir it stands for', () => { mkdirSync(`${RUN}.real`, { mode: 0o700 }); give(`${RUN}.real`); symlinkSync(`${RUN}.real`, RUN); give(RUN); }, () => /: it is a symlink$/],
    ['a FIFO', () => { sh('mkfifo', ['-m', '600', RUN]); give(RUN); }, () => /: not a directory$/],
    ['a unix socket', () => { socketFile(RUN); give(RUN); }, () => /: not a directory$/],
    ['a regular file', () => { writeFileSync(RUN, ''); give(RUN); }, () => /: not a directory$/],
    ['owned by nffi-hostile', () => { mkdirSync(RUN, { mode: 0o700 }); give(RUN, hostile); }, (h) => new RegExp(`: owned by uid ${h}, not ${nobody.uid}$`)],
    ['mode 0755', () => { mkdirSync(RUN); chmodSync(RUN, 0o755); give(RUN); }, () => /: mode 755 \(must be 700\)$/],
  ];

  it.each(cases)('refuses %s: one line, from the probe and from the CLI; nothing outside changes', async (_name, plant, message) => {
    rmSync(RUN, { recursive: true, force: true });
    rmSync(`${RUN}.real`, { recursive: true, force: true });
    plant();
    const want = message(hostile.uid);
    const err = await attachWorker(worker, { runDir: RUN, helloTimeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProbeError);
    expect((err as Error).message).toMatch(new RegExp(`^refusing run directory ${RUN}`));
    expect((err as Error).message).toMatch(want);
    const r = await runCli(['coroutines', String(pid), '--run-dir', RUN]);
    expect(r.status).toBe(1);
    expect(oneLineError(r)).toMatch(want);
    expect(outside()).toEqual(before);
    rmSync(RUN, { recursive: true, force: true });
    rmSync(`${RUN}.real`, { recursive: true, force: true });
  });

  it('creates a missing run dir 0700, owned by nobody; attaches; leaves only the run dir', async () => {
    rmSync(RUN, { recursive: true, force: true });
    const link = await attachWorker(worker, { runDir: RUN, helloTimeoutMs: 3_000 });
    await link.detach('test');
    const st = lstatSync(RUN);
    expect(st.isDirectory()).toBe(true);
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([nobody.uid, nobody.gid, 0o700]);
    expect(readdirSync(RUN)).toEqual([]);
  });
});

describe('the worker and what is planted in its run dir', () => {
  const big = JSON.stringify({ socket: '/nonexistent', token: 'x'.repeat(8_000) });
  /** Builds a run dir at `dir` (the attach file at `file`); the test renames it into place at once. */
  type Plant = (dir: string, file: string) => void;
  /** nobody's, 0700, empty: the run dir as the probe makes it. */
  const good = (dir: string): void => {
    mkdirSync(dir, { mode: 0o700 });
    give(dir);
  };
  const cases: Array<[string, Plant, () => string | undefined]> = [
    ['a FIFO as the attach file', (d, f) => { good(d); sh('mkfifo', ['-m', '600', f]); give(f); }, () => 'attach file is a FIFO'],
    ['a symlink to a FIFO outside', (d, f) => { good(d); symlinkSync(FIFO_OUT, f); give(f); }, () => 'attach file is a symlink'],
    ['a symlink to a root-owned file outside', (d, f) => { good(d); symlinkSync(TARGET, f); give(f); }, () => 'attach file is a symlink'],
    ['a unix socket', (d, f) => { good(d); socketFile(f); give(f); }, () => 'attach file is a socket'],
    ['a directory', (d, f) => { good(d); mkdirSync(f, { mode: 0o700 }); give(f); }, () => 'attach file is a directory'],
    ['a file of root', (d, f) => { good(d); writeFileSync(f, '{}\n', { mode: 0o600 }); }, () => `attach file owned by uid 0, not ${nobody.uid}`],
    ['a file with mode 0644', (d, f) => { good(d); writeFileSync(f, '{}\n'); chmodSync(f, 0o644); give(f); }, () => 'attach file has mode 644 (must be 600)'],
    ['a file past 4096 bytes', (d, f) => { good(d); writeFileSync(f, big, { mode: 0o600 }); give(f); }, () => `attach file is too large (${big.length} bytes)`],
    ['a run dir with mode 0755', (d, f) => { good(d); chmodSync(d, 0o755); writeFileSync(f, '{}\n', { mode: 0o600 }); give(f); }, () => `run directory ${RUN} has mode 755 (must be 700)`],
    ['a FIFO in a run dir nffi-hostile made', (d, f) => {
      mkdirSync(d);
      chmodSync(d, 0o755);
      sh('mkfifo', ['-m', '666', f]);
      give(f, hostile);
      give(d, hostile);
    }, () => `run directory ${RUN} owned by uid ${hostile.uid}, not ${nobody.uid} or root`],
    ['a run dir that is a symlink to a directory with a FIFO', (d) => {
      const real = `${RUN}.real`;
      good(real);
      sh('mkfifo', ['-m', '600', join(real, `${pid}.attach`)]);
      give(join(real, `${pid}.attach`));
      symlinkSync(real, d);
      give(d);
    }, () => `run directory ${RUN} is a symlink`],
    ['a run dir that is a FIFO (nothing to see: silence)', (d) => {
      sh('mkfifo', ['-m', '666', d]);
      give(d, hostile);
    }, () => undefined],
  ];

  it.each(cases)('%s: refused in one log line, never opened, no stall', async (_name, plant, reason) => {
    const stage = `${RUN}.stage`;
    for (const p of [RUN, stage, `${RUN}.real`]) rmSync(p, { recursive: true, force: true });
    plant(stage, join(stage, `${pid}.attach`));
    await lag();
    const from = nginx().errorLog().length;
    renameSync(stage, RUN);
    const line = reason() && `[nffi inspect refused ${attachPath}: ${reason()}]`;
    if (line) await waitFor(() => logSince(from).includes(line), { what: line, timeout: 5_000 });
    // ten more polls of the same thing: not logged again, and the poll stays cheap
    await new Promise((r) => setTimeout(r, 10 * POLL_MS));
    const log = logSince(from);
    if (line) expect(count(log, line)).toBe(1);
    expect(count(log, '[nffi inspect refused')).toBe(line ? 1 : 0);
    await expectNoStall();
    expect(nginx().workerPids()).toEqual([pid]);
    expect(outside()).toEqual(before);
    rmSync(RUN, { recursive: true, force: true });
    rmSync(`${RUN}.real`, { recursive: true, force: true });
  });

  it('after all that, the probe attaches as usual', async () => {
    rmSync(RUN, { recursive: true, force: true });
    const link = await attachWorker(worker, { runDir: RUN });
    expect(link.hello.pid).toBe(pid);
    await link.detach('test');
    await expectNoStall();
  });
});

describe('another local user (nffi-hostile)', () => {
  it('cannot list the run dir, nor create, link or plant a FIFO in it', () => {
    freshRun();
    const tries: Array<[string, string[]]> = [
      ['ls', [RUN]],
      ['touch', [join(RUN, 'x')]],
      ['ln', ['-s', TARGET, attachPath]],
      ['mkfifo', [attachPath]],
      ['cat', [attachPath]],
    ];
    for (const [cmd, args] of tries) {
      const r = runAs(hostile, cmd, args);
      expect(r.status, `${cmd} ${args.join(' ')} as ${hostile.name}`).not.toBe(0);
      expect(r.stderr).toMatch(/Permission denied/);
    }
    expect(readdirSync(RUN)).toEqual([]);
  });

  it('a run dir it made first (FIFO and links inside) is refused by the root CLI and the worker; nothing blocks', async () => {
    rmSync(RUN, { recursive: true, force: true });
    await lag();
    const from = nginx().errorLog().length;
    const r = runAs(hostile, 'sh', ['-c',
      `mkdir -m 755 ${RUN} && mkfifo -m 666 ${attachPath} && ln -s ${TARGET} ${RUN}/probe.sock && ln -s ${TARGET} ${attachPath}.0.tmp`]);
    expect(r.status, r.stderr).toBe(0);
    const cli = await runCli(['coroutines', String(pid), '--run-dir', RUN]);
    expect(oneLineError(cli)).toBe(`nffi-inspect: refusing run directory ${RUN}: owned by uid ${hostile.uid}, not ${nobody.uid}`);
    const line = `[nffi inspect refused ${attachPath}: run directory ${RUN} owned by uid ${hostile.uid}, not ${nobody.uid} or root]`;
    await waitFor(() => logSince(from).includes(line), { what: line, timeout: 5_000 });
    await new Promise((res) => setTimeout(res, 10 * POLL_MS));
    expect(count(logSince(from), '[nffi inspect refused')).toBe(1);
    await expectNoStall();
    expect(outside()).toEqual(before);
    rmSync(RUN, { recursive: true, force: true });
  });
});

// As nobody, for `ms`: watch the run dir and swap links to the outside target in for whatever
// root creates there (temp files, attach files, socket dirs or sockets), and now and then the
// whole run dir for a link to a root-owned directory. Prints what it managed to swap.
const ATTACKER = `
const fs = require('fs');
const [run, target, rootdir, ms] = process.argv.slice(1);
const end = Date.now() + Number(ms);
const n = { tmp: 0, attach: 0, sockdir: 0, sock: 0, rundir: 0, loops: 0 };
const swap = (p, what) => { try { fs.unlinkSync(p); fs.symlinkSync(target, p); n[what]++; } catch {} };
while (Date.now() < end) {
  n.loops++;
  let names = [];
  try { names = fs.readdirSync(run); } catch {}
  for (const name of names) {
    const p = run + '/' + name;
    let st;
    try { st = fs.lstatSync(p); } catch { continue; }
    if (st.isSymbolicLink()) continue; // its own
    if (name.endsWith('.tmp')) swap(p, 'tmp');
    else if (name.endsWith('.attach') && n.loops % 4 === 0) swap(p, 'attach');
    else if (/^probe-\\d+-[0-9a-f]+(\\.sock)?$/.test(name)) {
      if (st.isSocket()) swap(p, 'sock');
      else if (st.isDirectory() && st.uid === 0) {
        try {
          fs.renameSync(p, p + '.x' + n.loops);
          fs.mkdirSync(p, { mode: 0o700 });
          fs.symlinkSync(target, p + '/sock');
          n.sockdir++;
        } catch {}
      }
    }
  }
  if (n.loops % 200 === 0) {
    try {
      fs.renameSync(run, run + '.away');
      try {
        fs.symlinkSync(rootdir, run);
        n.rundir++;
        const t = Date.now() + 3; while (Date.now() < t) {}
        fs.unlinkSync(run);
      } finally { fs.renameSync(run + '.away', run); }
    } catch {}
  }
}
process.stdout.write(JSON.stringify(n));
`;

describe('a process running as nobody races the root CLI', () => {
  it('many attaches while links are swapped in: nothing outside changes, every refusal is one line, no stall', async () => {
    freshRun();
    await lag();
    const attacker = nodeAs(nobody, ATTACKER, [RUN, TARGET, ROOTDIR, '8000'], 10);
    let running = true;
    void attacker.finally(() => (running = false)).catch(() => undefined);
    const outcomes = new Map<string, number>();
    const note = (k: string): void => void outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    let worst: Lag = { max: 0, own: 0, age: 0, ownCpu: 0 };
    const allowed = [
      /^worker \d+ has no agent/, /^refusing run directory .*: it is a symlink$/,
      /^refusing run directory .*: it vanished/, /^refusing run directory .*: it was replaced/,
      // the open met the link, and the lstat that names it met whatever was swapped in next
      /^refusing run directory .*: not a directory$/,
      /^cannot write /, /^cannot create a socket directory/, /^socket .* is not ours$/,
    ];
    const cliRuns = (async () => {
      const out: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await runCli(['coroutines', String(pid), '--run-dir', RUN, '--frames', '1']);
        out.push(r.status === 0 ? 'ok' : oneLineError(r));
      }
      return out;
    })();
    while (running) {
      try {
        const link = await attachWorker(worker, { runDir: RUN, helloTimeoutMs: 300 });
        await link.detach('race');
        note('attached');
      } catch (err) {
        expect(err).toBeInstanceOf(ProbeError);
        const msg = (err as Error).message;
        expect(msg).not.toContain('\n');
        expect(allowed.some((re) => re.test(msg)), msg).toBe(true);
        note(msg.replace(/\d+/g, 'N').replace(/; add to the http.*/, ''));
      }
      const l = (await lag()).get(pid)!;
      worst = { max: Math.max(worst.max, l.max), own: Math.max(worst.own, l.own), age: Math.max(worst.age, l.age), ownCpu: l.own >= worst.own ? l.ownCpu : worst.ownCpu };
    }
    const swaps = JSON.parse(await attacker) as Record<string, number>;
    const cli = await cliRuns;
    console.log(`race: ${JSON.stringify(Object.fromEntries(outcomes))}; attacker: ${JSON.stringify(swaps)}; `
      + `CLI: ${JSON.stringify(cli)}; longest stall ${worst.own.toFixed(1)} ms (${worst.ownCpu.toFixed(1)} ms of it on CPU; lateness ${worst.max.toFixed(1)} ms)`);
    for (const c of cli) if (c !== 'ok') expect(allowed.some((re) => re.test(c.replace(/^nffi-inspect: /, ''))), c).toBe(true);
    expect(outside()).toEqual(before);
    expect(outcomes.get('attached') ?? 0).toBeGreaterThan(0);
    const total = [...outcomes.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThanOrEqual(15);
    expect(swaps.sockdir + swaps.attach + swaps.tmp + swaps.rundir).toBeGreaterThan(0);
    expectNoStallIn(worst);
    expect(nginx().workerPids()).toEqual([pid]);
    // whatever the attacker left, nothing in the run dir is a link root made or a file of root's
    // that nobody could not remove, except our own emptied socket dirs it renamed away
    for (const name of readdirSync(RUN)) {
      const st = lstatSync(join(RUN, name));
      if (st.uid === 0) {
        expect(st.isDirectory(), name).toBe(true);
        expect(readdirSync(join(RUN, name)), name).toEqual([]);
      }
    }
  }, 60_000);
});
