// What `breakpoint` says about a spec before its first hit, against a real nginx (2 workers)
// with the agent (issue 14, "Breakpoint specs say what will happen"): a name a condition or log
// template reads that the line cannot see is refused when the breakpoint arms (one line on
// stderr, exit 1), also for a pending one when its file loads; a FILE no loaded chunk matches
// says so with the nearest loaded names; a moved line says where it went; ffi:RUNTIME naming no
// loaded runtime warns; `scripts PID [PATTERN]` lists the loaded chunks, in-process and through
// `serve` (and serve answers Debugger.getScripts on its sockets). Nothing here depends on how a
// worker takes breakpoints (watching or a hook): the armed lines' mode suffix is matched loosely.
import { readFileSync } from 'node:fs';
import CDP from 'chrome-remote-interface';
import { describe, expect, it } from 'vitest';
import { Session } from '../probe/session.js';
import { oneLineError, ROOT, runCli, startCli, stopCliAfterEach } from './harness/cli.js';
import { http, useNginx, waitFor } from './harness/nginx.js';
import {
  FIXTURE_LUA, LATE_FILE, LATE_GAP, LATE_INSIDE, LATE_RUN, LAZY_FILE, LAZY_SAY, SPEC_APP_HTTP, SPEC_BREAK, SPEC_FILE, SPEC_LOOP,
} from './harness/spec-app.js';

const protocol = JSON.parse(readFileSync(`${ROOT}/probe/protocol.json`, 'utf8'));
const LOC = `${SPEC_FILE}:${SPEC_BREAK}`;
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** The CLI's JSON output; a failed run fails the test with what it said. */
async function cliJson(args: string[]): Promise<any> {
  const r = await runCli(args);
  expect(r.status, `nffi-inspect ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout);
}

/** The mode an armed line ends with, whichever this machine gives. */
const MODE = String.raw`( \((watching|call hook: [^)]*|line hook[^)]*|lua hook[^)]*|mode unknown)\))?`;

stopCliAfterEach();

const NO_CODE = 'no code there';
const TOP_LEVEL = "not in a function, and the file's top level ran when it loaded";

/** `n` armed lines on LATE_FILE at a line after `asked` (run()'s first line; or, while the file
 * loads, the main chunk's line that defines run()), each saying it asked for `asked` and why. */
function movedTo(out: string, n: number, asked: number, why: string, atLeast = false): void {
  const re = new RegExp(`^bp \\d+ armed on worker \\d+ at \\S*${esc(LATE_FILE)}:(\\d+) \\(asked for line ${asked}: ${esc(why)}\\)${MODE}$`, 'gm');
  const lines = [...out.matchAll(re)];
  if (atLeast) expect(lines.length, out).toBeGreaterThanOrEqual(n);
  else expect(lines, out).toHaveLength(n);
  for (const l of lines) {
    expect(Number(l[1])).toBeGreaterThan(asked);
    expect(Number(l[1])).toBeLessThanOrEqual(LATE_RUN);
  }
}

describe('breakpoint specs against nginx with the agent', () => {
  const nginx = useNginx({ workers: 2, http: SPEC_APP_HTTP, luaPath: [FIXTURE_LUA] });
  const master = (): string => String(nginx().masterPid);

  async function agentBreakpoints(): Promise<unknown[]> {
    const s = await Session.open(nginx().masterPid);
    try {
      const all = await s.callAll('Debugger.getBreakpoints', {});
      return all.flatMap((r) => (Array.isArray(r.result?.breakpoints) ? r.result!.breakpoints : []));
    } finally {
      await s.close();
    }
  }

  /** Requests to `path` until `scripts MASTER FILE --json` lists FILE on every worker. */
  async function loadEverywhere(path: string, file: string): Promise<any> {
    return waitFor(async () => {
      for (let i = 0; i < 4; i++) await http(nginx().url(path));
      const j = await cliJson(['scripts', master(), file, '--json']);
      return j.workers.length === 2 && j.workers.every((w: any) => w.scripts.length === 1) && j;
    }, { timeout: 20_000, interval: 10, what: `${file} loaded on both workers` });
  }

  // First, while spec_late.lua and spec_lazy.lua are loaded nowhere.

  it('a pending breakpoint whose condition reads an unknown name: refused as its file loads, one stderr line, exit 1', async () => {
    await loadEverywhere('/work?n=1&user=a', SPEC_FILE);
    const cli = startCli(['breakpoint', master(), `${LAZY_FILE}:${LAZY_SAY}`, 'if', 'tripled > 1 and nope']);
    await waitFor(() => (cli.out().match(/^bp \d+ pending on worker \d+/gm) ?? []).length === 2, { timeout: 20_000, what: `pending; ${cli.out()} ${cli.err()}` });
    await waitFor(async () => {
      await http(nginx().url('/lazy?n=2'));
      return cli.child.exitCode !== null;
    }, { timeout: 20_000, interval: 20, what: `the CLI to end; ${cli.out()} ${cli.err()}` });
    const status = await cli.exited;
    expect(status).toBe(1);
    const lines = cli.err().trimEnd().split('\n');
    expect(lines[0]).toBe(`nffi-inspect: no loaded chunk matches ${LAZY_FILE}; pending until one loads (nearest loaded: ${FIXTURE_LUA}/${SPEC_FILE})`);
    expect(lines.slice(1)).toEqual([`nffi-inspect: condition: unknown name 'nope' at ${LAZY_FILE}:${LAZY_SAY} (visible: n, ngx, tripled)`]);
    expect(cli.out()).not.toMatch(/hit bp/);
    expect(await agentBreakpoints()).toEqual([]);
  });

  it('a pending breakpoint on a line without code says, as its file loads, where it armed and why', async () => {
    const cli = startCli(['breakpoint', master(), `${LATE_FILE}:${LATE_GAP}`, '--timeout', '20s']);
    await waitFor(() => (cli.out().match(/^bp \d+ pending on worker \d+/gm) ?? []).length === 2, { timeout: 20_000, what: `pending; ${cli.out()}` });
    await waitFor(async () => {
      await http(nginx().url('/late?n=1'));
      return /armed on worker/.test(cli.out());
    }, { timeout: 20_000, interval: 20, what: `armed as the file loads; ${cli.out()}` });
    // the main chunk runs the line of run()'s definition while it loads; later, run()'s first line
    // the main chunk is there as the file loads: the line moves into it (no top level to report)
    movedTo(cli.out(), 1, LATE_GAP, NO_CODE, true);
    // told before any hit of that worker (the main chunk's line runs as it loads)
    await http(nginx().url('/late?n=1'));
    await new Promise((r) => setTimeout(r, 300));
    const lines = cli.out().split('\n');
    for (const [i, l] of lines.entries()) {
      const pid = /^\[hit bp \d+\] pid (\d+) /.exec(l)?.[1];
      if (pid) expect(lines.findIndex((x) => x.startsWith('bp ') && x.includes(` armed on worker ${pid} `)), cli.out()).toBeLessThan(i);
    }
    cli.child.kill('SIGINT');
    expect(await cli.exited).toBe(0);
  });

  it('an unknown name in a condition: exit 1, one stderr line with what the line sees, nothing armed', async () => {
    await loadEverywhere('/work?n=1&user=a', SPEC_FILE);
    const r = await runCli(['breakpoint', master(), LOC, 'if', 'n > 1 and usr == "bob"']);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(oneLineError(r)).toBe(`nffi-inspect: condition: unknown name 'usr' at ${LOC} (visible: user, n, ngx, calls, doubled)`);
    expect(await agentBreakpoints()).toEqual([]);
  });

  it('an unknown name in a log template is labelled as such, with ngx.ctx offered for ctx', async () => {
    const r = await runCli(['breakpoint', master(), LOC, '--log', 'u={ctx.user}']);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(oneLineError(r)).toBe(`nffi-inspect: log template: unknown name 'ctx' at ${LOC} (visible: ngx, n, calls, user, doubled; did you mean ngx.ctx?)`);
    expect(await agentBreakpoints()).toEqual([]);
  });

  it.each([
    ['a local declared after the line', ['if', 'later > 1'], "condition: unknown name 'later' at LOC: a local of this function that is not live there (assigned later) (visible: user, calls, n, ngx, doubled)"],
    ['a global', ['if', 'tonumber == nil'], "condition: unknown name 'tonumber' at LOC: a global, and conditions read only locals and upvalues (visible: doubled, user, n, ngx, calls)"],
  ])('%s is not visible', async (_, words, want) => {
    const r = await runCli(['breakpoint', master(), LOC, ...words]);
    expect(r.status).toBe(1);
    expect(oneLineError(r)).toBe(`nffi-inspect: ${want.replace('LOC', LOC)}`);
  });

  it('a name live only inside its line (a one-line loop\'s variable) is not refused', async () => {
    const r = await runCli(['breakpoint', master(), `${SPEC_FILE}:${SPEC_LOOP}`, 'if', 'i ~= nil and i > 1 and later > 0', '--timeout', '1s']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.match(/^bp \d+ armed on worker \d+/gm)).toHaveLength(2);
  });

  it('the --help examples arm (the line\'s names, ngx.ctx, ngx.var) and hit', async () => {
    const help = (await runCli(['breakpoint', '--help'])).stdout.replace(/\s+/g, ' ');
    expect(help).not.toMatch(/[^.]ctx\.user/);
    const cond = /if '([^']+)'/.exec(help)![1]!;
    const log = /print '([^']+)'/.exec(help)![1]!;
    expect(cond).toContain('ngx.ctx.user');
    const cli = startCli(['breakpoint', master(), LOC, 'if', cond.replace('n > 3', 'n >= 0').replace('== "bob"', '== nil'), '--log', log, '--count', '1', '--wide']);
    await waitFor(() => (cli.out().match(/^bp \d+ armed on worker/gm) ?? []).length === 2, { timeout: 20_000, what: `armed; ${cli.out()} ${cli.err()}` });
    await waitFor(async () => {
      await http(nginx().url('/work?n=5&user=bob'));
      return cli.child.exitCode !== null;
    }, { timeout: 20_000, interval: 20, what: `a hit; ${cli.out()} ${cli.err()}` });
    expect(await cli.exited).toBe(0);
    expect(cli.err()).toBe('');
    expect(cli.out()).toMatch(/^\[hit bp \d+\] .* n=5 uri=\/work$/m);
  });

  it('a template that fails at a hit: the error on stderr, labelled log template', async () => {
    const cli = startCli(['breakpoint', master(), LOC, '--log', 'x={user + 1}', '--timeout', '20s']);
    await waitFor(() => (cli.out().match(/^bp \d+ armed on worker/gm) ?? []).length === 2, { timeout: 20_000, what: `armed; ${cli.out()} ${cli.err()}` });
    await waitFor(async () => {
      await http(nginx().url('/work?n=1&user=bob'));
      return /error on worker/.test(cli.err());
    }, { timeout: 20_000, interval: 20, what: `an error; ${cli.out()} ${cli.err()}` });
    expect(cli.err()).toMatch(/^bp \d+ error on worker \d+: log template: .*arithmetic/m);
    expect(cli.out()).not.toMatch(/error on worker/);
    cli.child.kill('SIGINT');
    await cli.exited;
  });

  it('a FILE no loaded chunk matches: pending, and stderr says so once with the nearest loaded names', async () => {
    const none = await runCli(['breakpoint', master(), 'nope.lua:10', '--timeout', '1s']);
    expect(none.status, none.stderr).toBe(0);
    expect(none.stderr).toBe('nffi-inspect: no loaded chunk matches nope.lua; pending until one loads (none has a similar name; `scripts PID` lists them)\n');
    expect(none.stdout.match(/^bp \d+ pending on worker \d+/gm)).toHaveLength(2);
    const near = await runCli(['breakpoint', master(), 'spec_ap.lua:10', '--timeout', '1s', '--json']);
    expect(near.status, near.stderr).toBe(0);
    // nearest first: one edit away, then spec_late.lua and spec_lazy.lua (a few edits)
    const nearest = [SPEC_FILE, LATE_FILE, LAZY_FILE].map((f) => `${FIXTURE_LUA}/${f}`);
    expect(near.stderr).toBe(`nffi-inspect: no loaded chunk matches spec_ap.lua; pending until one loads (nearest loaded: ${nearest.join(', ')})\n`);
    const armed = near.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.event === 'armed');
    expect(armed).toHaveLength(2);
    // each worker its own (spec_late.lua and spec_lazy.lua are loaded where a request loaded them)
    for (const a of armed) {
      expect(a).toMatchObject({ state: 'pending' });
      expect(a.nearest[0]).toBe(nearest[0]);
      expect(nearest).toEqual(expect.arrayContaining(a.nearest));
    }
  });

  it.each([
    ['inside a function', LATE_INSIDE, NO_CODE],
    ['at the top level of a loaded file', LATE_GAP, TOP_LEVEL],
  ])('a line without code %s says where it armed and why', async (_, asked, why) => {
    await loadEverywhere('/late?n=1', LATE_FILE);
    const cli = startCli(['breakpoint', master(), `${LATE_FILE}:${asked}`]);
    await waitFor(() => (cli.out().match(/^bp \d+ armed on worker/gm) ?? []).length === 2, { timeout: 20_000, what: `armed; ${cli.out()} ${cli.err()}` });
    movedTo(cli.out(), 2, asked, why);
    expect(cli.err()).toBe('');
    cli.child.kill('SIGINT');
    expect(await cli.exited).toBe(0);
  });

  it('ffi:RUNTIME.METHOD with no runtime of that name: a warning, armed all the same; a loaded one: none', async () => {
    const r = await runCli(['breakpoint', master(), 'ffi:nosuch.*', '--timeout', '1s']);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('nffi-inspect: no runtime named nosuch is loaded yet (loaded: echo); ffi:nosuch.* fires once one is\n');
    expect(r.stdout.match(/^bp \d+ armed on worker \d+$/gm)).toHaveLength(2);
    const ok = await runCli(['breakpoint', master(), 'ffi:echo.*', '--timeout', '1s']);
    expect(ok.status).toBe(0);
    expect(ok.stderr).toBe('');
  });

  it('scripts PID [PATTERN]: a table of the loaded chunks per worker, --json, and a pattern that matches nothing', async () => {
    const [a, b] = nginx().workerPids().sort((x, y) => x - y);
    const text = await runCli(['scripts', master(), SPEC_FILE, '--wide']);
    expect(text.status).toBe(0);
    expect(text.stderr).toBe('');
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^worker +chunk +lines +functions$/);
    expect(lines.slice(1).map((l) => l.trim().split(/\s+/))).toEqual([a, b].map((pid) => [String(pid), `${FIXTURE_LUA}/${SPEC_FILE}`, expect.stringMatching(/^\d+-\d+$/), expect.stringMatching(/^\d+$/)]));

    // piped: 80 columns, a long chunk name cut at its start (the file name stays)
    const fit = (await runCli(['scripts', master()])).stdout.trimEnd().split('\n');
    for (const l of fit) expect(l.length, l).toBeLessThanOrEqual(80);
    expect(fit.filter((l) => l.includes(SPEC_FILE))).toHaveLength(2);

    const json = await cliJson(['scripts', master(), '--json']);
    expect(json.workers.map((w: any) => w.pid)).toEqual([a, b]);
    for (const w of json.workers) {
      expect(w.total).toBe(w.scripts.length);
      expect(w.scripts.map((s: any) => s.source)).toEqual([...w.scripts.map((s: any) => s.source)].sort());
      const app = w.scripts.find((s: any) => s.source === `${FIXTURE_LUA}/${SPEC_FILE}`);
      expect(Object.keys(app)).toEqual(['source', 'first_line', 'last_line', 'functions']);
      expect(app.functions).toBeGreaterThanOrEqual(2);
      expect(app.first_line).toBeLessThanOrEqual(SPEC_BREAK);
      expect(app.last_line).toBeGreaterThanOrEqual(SPEC_BREAK);
      expect(w.scripts.some((s: any) => s.source.endsWith('/nffi/inspect/breakpoints.lua'))).toBe(true);
    }
    const none = await runCli(['scripts', master(), 'no_such_chunk']);
    expect(none.status).toBe(0);
    expect(none.stdout).toMatch(/^no loaded chunk matches no_such_chunk \(\d+ loaded; `scripts PID` lists them\)\n$/);
  });

  it('through serve: scripts gives the same answer, and serve answers Debugger.getScripts on its sockets', async () => {
    const inproc = await cliJson(['scripts', master(), SPEC_FILE, '--json']);
    const serve = startCli(['serve', master(), '--port', '0']);
    const m = await waitFor(() => /http:\/\/127\.0\.0\.1:(\d+)\/json\/list\?token=([0-9a-f]+)/.exec(serve.out()), { timeout: 15_000, what: `serve URL; ${serve.out()} ${serve.err()}` });
    const [port, token] = [Number(m[1]), m[2]];
    try {
      const viaServe = await cliJson(['scripts', master(), SPEC_FILE, '--json']);
      expect(viaServe.workers.map((w: any) => [w.pid, w.scripts])).toEqual(inproc.workers.map((w: any) => [w.pid, w.scripts]));
      const [a] = nginx().workerPids();
      const worker = await CDP({ target: `ws://127.0.0.1:${port}/devtools/worker/${a}?token=${token}`, protocol, local: true });
      const browser = await CDP({ target: `ws://127.0.0.1:${port}/devtools/browser?token=${token}`, protocol, local: true });
      try {
        const one = await worker.Debugger.getScripts();
        expect(one.scripts.some((s: any) => s.source === `${FIXTURE_LUA}/${SPEC_FILE}`)).toBe(true);
        const all = await browser.Debugger.getScripts();
        const names = all.scripts.map((s: any) => s.source);
        expect(new Set(names).size).toBe(names.length);
        expect(names).toContain(`${FIXTURE_LUA}/${SPEC_FILE}`);
        expect(names).toContain(`${FIXTURE_LUA}/${LATE_FILE}`);
        // through serve, the spec checks and the warnings are the same
        const bad = await runCli(['breakpoint', master(), LOC, 'if', 'usr']);
        expect(bad.status).toBe(1);
        expect(oneLineError(bad)).toMatch(/^nffi-inspect: condition: unknown name 'usr' at /);
        const pending = await runCli(['breakpoint', master(), 'nope.lua:3', '--timeout', '1s']);
        expect(pending.stderr).toMatch(/^nffi-inspect: no loaded chunk matches nope\.lua; pending until one loads/);
      } finally {
        await worker.close();
        await browser.close();
      }
    } finally {
      serve.child.kill('SIGINT');
      await serve.exited;
    }
  });
});
