// `nffi-inspect attach` end to end, as a user runs it (issue 13): the real CLI in a real
// terminal (a private tmux server), on a real nginx whose workers (nobody) run the agent and
// test/fixtures/lua/tui_app.lua, which holds runtime "held" still in every worker (1 task in
// flight in a gate, 3 or 5 pending behind it, each waited on by a light thread of the fixture).
// What a user checks: the queue pane says what `nffi-inspect queue --json` says; `:breakpoint`
// arms and its hits come in; Enter on a task shows the waiting coroutine's stack; the screen
// survives resizes; `q` exits 0, gives the terminal back and leaves nothing armed.
//
// The command runs under a small sh wrapper that prints a line before it and, after it, its
// exit status and the tty's modes (stty): what the normal screen shows once the TUI is gone.
// Every wait polls the screen; a failure shows the screen as it was.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { withClient } from '../client/connect.js';
import { BIN, runCli, startCli } from './harness/cli.js';
import { http, useNginx, waitFor } from './harness/nginx.js';
import { TmuxScreen } from './harness/tmux.js';
import { FIXTURE_LUA, TUI_APP_FILE, TUI_APP_HTTP, TUI_BREAK_LINE } from './harness/tui-app.js';

/** attach's default --refresh. */
const REFRESH_MS = 500;
const TITLES = ['FFI queues', 'Tasks', 'Coroutines', 'Stack', 'Hits'] as const;
const TITLE_RE = new RegExp(`^(▶| ) (${TITLES.join('|')})(?= |$)`);

const FIXTURE = readFileSync(`${FIXTURE_LUA}/${TUI_APP_FILE}`, 'utf8').split('\n');
const lineOf = (text: string): number => {
  const i = FIXTURE.findIndex((l) => l.includes(text));
  if (i < 0) throw new Error(`no '${text}' in ${TUI_APP_FILE}`);
  return i + 1;
};
/** Where a pending task's coroutine waits, innermost first: the fixture's functions and lines. */
const WAIT_FRAMES = [
  { name: 'wait_in_queue', line: lineOf('rt:work("delay=0;task-"') },
  { name: 'queued_request', line: lineOf('local ok = wait_in_queue(rt, i)') },
  // the light thread's entry function: LuaJIT has no name for it, the agent finds the local
  // that holds it (issue 14)
  { name: 'held_job', line: lineOf('local ok = queued_request(rt, i)') },
];

// $1.. = node BIN attach PID. The status and the tty's modes are printed after the TUI is gone.
const WRAPPER = String.raw`printf '%s\n' "\$ nffi-inspect attach $4"; "$@"; s=$?; ` +
  String.raw`printf '[attach exited with status %s; tty:%s]\n' "$s" "$(stty -a | tr ' ;' '\n\n' | grep -E -x -e '-?(isig|icanon|echo)' | tr '\n' ' ')"; ` +
  'exit $s';

let screen: TmuxScreen | undefined;
afterEach(() => {
  screen?.kill();
  screen = undefined;
});

function attach(pid: number, cols: number, rows: number): TmuxScreen {
  screen = TmuxScreen.start(['sh', '-c', WRAPPER, 'sh', process.execPath, BIN, 'attach', String(pid)], { cols, rows });
  return screen;
}

// ---- reading the screen ----

interface Pane {
  title: string;
  focused: boolean;
  /** The title row (title on the left, the pane's counters on the right). */
  titleRow: string;
  rows: string[];
}

/** The rows that hold panes: below the 2-line header, above the status line and the key hints. */
function paneArea(lines: string[]): { rows: string[]; split: number } {
  const rows = lines.slice(2, lines.length - 2);
  // 200 columns: two columns of panes, split by a │ at the same place on every row
  const split = rows[0]?.indexOf('│') ?? -1;
  return { rows, split };
}

/** Every pane on the screen by title, with its rows (both columns of the wide layout). */
function panes(text: string): Map<string, Pane> {
  const { rows, split } = paneArea(text.split('\n'));
  const out = new Map<string, Pane>();
  const columns = split > 0 ? [rows.map((r) => r.slice(0, split)), rows.map((r) => r.slice(split + 1))] : [rows];
  for (const col of columns) {
    let cur: Pane | undefined;
    for (const seg of col) {
      const m = TITLE_RE.exec(seg);
      if (m) {
        cur = { title: m[2]!, focused: m[1] === '▶', titleRow: seg.trimEnd(), rows: [] };
        out.set(cur.title, cur);
      } else {
        cur?.rows.push(seg);
      }
    }
  }
  return out;
}

function pane(text: string, title: string): Pane {
  const p = panes(text).get(title);
  if (!p) throw new Error(`no '${title}' pane on the screen`);
  return p;
}

interface QueueCells { depth: number; in_flight: number; timeouts: number; rejected: number }
type QueueTable = Map<string, QueueCells>;

//  worker runtime   depth  fly  enq/s done/s  tmo  rej    p50    p99 depth 60s
// >  13733 held          3    1    0/s    0/s    0    0      -      -        ███
const QUEUE_ROW = /^[> ]\s*(\d+) (\S+)\s+(\d+)(?:\/\d+)?\s+(\d+)\s+\S+\s+\S+\s+(\d+)\s+(\d+)(?:\s|$)/;

/** The queue pane's rows by `pid/runtime`: what the user reads in it. */
function queueOnScreen(text: string): QueueTable {
  const out: QueueTable = new Map();
  const p = panes(text).get('FFI queues');
  for (const row of p?.rows ?? []) {
    const m = QUEUE_ROW.exec(row);
    if (m) out.set(`${m[1]}/${m[2]}`, { depth: +m[3]!, in_flight: +m[4]!, timeouts: +m[5]!, rejected: +m[6]! });
  }
  return out;
}

function queueOfJson(json: any): QueueTable {
  const out: QueueTable = new Map();
  for (const w of json.workers) {
    for (const r of w.runtimes) {
      out.set(`${w.pid}/${r.name}`, { depth: r.depth, in_flight: r.in_flight, timeouts: r.timeouts, rejected: r.rejected });
    }
  }
  return out;
}

const tableText = (t: QueueTable) => JSON.stringify([...t].sort(([a], [b]) => a.localeCompare(b)));

interface TaskRow { selected: boolean; worker: number; task: number; method: string; state: string; co: number }

//    ↓age  worker   task runtime.method   state        co request
// > 3.37s   12220      1 held.work        polled        1 gate=600000;held
const TASK_ROW = /^([> ])\s*\S+\s+(\d+)\s+(\d+) (\S+)\s+(\w+)\s+(\d+)(?:\s|$)/;

function tasksOnScreen(text: string): TaskRow[] {
  return pane(text, 'Tasks').rows.flatMap((row) => {
    const m = TASK_ROW.exec(row);
    return m ? [{ selected: m[1] === '>', worker: +m[2]!, task: +m[3]!, method: m[4]!, state: m[5]!, co: +m[6]! }] : [];
  });
}

/** `#4 /path/tui_app.lua:27 = name` rows of the stack pane. */
function framesOnScreen(text: string): { n: number; source: string; line: number; name: string }[] {
  return pane(text, 'Stack').rows.flatMap((row) => {
    const m = /#(\d+) (\S+):(\d+) = (\S+)/.exec(row);
    return m ? [{ n: +m[1]!, source: m[2]!, line: +m[3]!, name: m[4]! }] : [];
  });
}

/** What is wrong with the frame at cols × rows; empty when every pane is there, once, whole. */
function layoutProblems(text: string, cols: number, rows: number): string[] {
  const problems: string[] = [];
  const lines = text.replace(/\n$/, '').split('\n');
  if (lines.length !== rows) problems.push(`${lines.length} rows, not ${rows}`);
  lines.forEach((l, i) => {
    if ([...l].length > cols) problems.push(`row ${i} is ${[...l].length} columns wide`);
    if (/[\x00-\x1f\x7f-\x9f]/.test(l)) problems.push(`row ${i} holds a control character: ${JSON.stringify(l)}`);
  });
  if (!lines[0]?.startsWith(' nffi-inspect ')) problems.push('the header is not on the first row');
  if (!lines[rows - 1]?.startsWith(' q quit')) problems.push('the key hints are not on the last row');
  const found = panes(text);
  for (const t of TITLES) {
    const n = lines.filter((l) => l.includes(` ${t} `) || l.endsWith(` ${t}`)).length;
    if (!found.has(t)) problems.push(`no '${t}' title`);
    else if (n !== 1) problems.push(`'${t}' on ${n} rows`);
  }
  const { rows: area, split } = paneArea(lines);
  if (split > 0) {
    const off = area.map((r, i) => (r[split] === '│' ? -1 : i + 2)).filter((i) => i >= 0);
    if (off.length) problems.push(`rows ${off.join(',')} lack the column split at ${split}`);
  }
  return problems;
}

function expectLayout(text: string, cols: number, rows: number): void {
  expect(layoutProblems(text, cols, rows), text).toEqual([]);
}

async function command(s: TmuxScreen, line: string): Promise<void> {
  s.keys([':']);
  await s.waitFor((t) => /^:\s.*Esc cancel/m.test(t), 'the command line');
  s.keys([line], true);
  await s.waitFor((t) => t.includes(`:${line}`), `'${line}' typed`);
  s.keys(['Enter']);
}

/** Both workers' queue rows on the screen, and the fixture's tasks behind the gates. */
async function ready(s: TmuxScreen, workers: number[]): Promise<string> {
  return s.waitFor((t) => {
    const q = queueOnScreen(t);
    return workers.every((w) => (q.get(`${w}/held`)?.in_flight ?? 0) === 1) && /\d+ pending/.test(pane(t, 'Tasks').titleRow);
  }, `both workers' held queues on the screen (${workers.join(', ')})`, 20_000);
}

/** Waits for the command to end; its status as tmux and the wrapper saw it. */
async function exited(s: TmuxScreen): Promise<{ status: number; history: string; after: string }> {
  const { status } = await waitFor(() => { const st = s.exitStatus(); return st === undefined ? undefined : { status: st }; },
    { timeout: 10_000, interval: 100, what: 'attach to exit' })
    .catch((err) => { throw new Error(`${(err as Error).message}\n--- screen ---\n${s.capture()}`); });
  return { status, history: s.captureHistory(), after: s.capture() };
}

function agentState(pid: number): Promise<{ breakpoints: unknown[]; stats: { pid: number; hook?: boolean; armed?: number; pending?: number; error?: string }[] }> {
  return withClient(pid, {}, async (c) => ({
    breakpoints: await c.listBreakpoints(),
    stats: (await c.callAll('Agent.getStats')).map((r) => ({
      pid: r.pid, error: r.error, hook: r.result?.breakpoints.hook, armed: r.result?.breakpoints.armed, pending: r.result?.breakpoints.pending,
    })).sort((a, b) => a.pid - b.pid),
  }));
}

const idle = (pids: number[]) => [...pids].sort((a, b) => a - b).map((pid) => ({ pid, error: undefined, hook: false, armed: 0, pending: 0 }));

/** After `q`: exit 0, the normal screen back with only the wrapper's lines on it, cooked tty. */
async function expectCleanExit(s: TmuxScreen, pid: number): Promise<void> {
  s.keys(['q']);
  const { status, history, after } = await exited(s);
  const shown = `--- screen after exit ---\n${after}\n--- with scrollback ---\n${history}`;
  expect(status, shown).toBe(0);
  for (const t of TITLES) expect(after, shown).not.toContain(t);
  // nothing but the wrapper's two lines between them: the TUI wrote nothing to the normal screen
  const lines = history.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('Pane is dead'));
  expect(lines, shown).toEqual([`$ nffi-inspect attach ${pid}`, expect.stringMatching(/^\[attach exited with status 0; tty:/)]);
  const tty = /tty:(.*)\]/.exec(lines[1]!)![1]!.trim().split(/\s+/);
  expect(tty.sort(), shown).toEqual(['echo', 'icanon', 'isig']);
  // the terminal's modes as tmux keeps them: main screen, no mouse, normal cursor keys
  expect(s.format('#{alternate_on} #{mouse_any_flag} #{keypad_cursor_flag}')).toBe('0 0 0');
}

describe('nffi-inspect attach in a terminal, on nginx with tasks held pending', () => {
  const nginx = useNginx({ workers: 2, http: TUI_APP_HTTP, luaPath: [FIXTURE_LUA] });

  it('through a serve: the queue pane says what queue --json says, within a refresh; q takes its breakpoint back', async () => {
    const master = nginx().masterPid;
    const workers = nginx().workerPids();
    const serve = startCli(['serve', String(master)]);
    try {
      await waitFor(() => /^serving \d+ /m.test(serve.out()), { timeout: 10_000, what: `serve; out: ${serve.out()} err: ${serve.err()}` });
      expect((await agentState(master)).stats).toEqual(idle(workers));

      const s = attach(master, 80, 24);
      let text = await ready(s, workers);
      expect(text.split('\n')[0]).toContain(`serve probe ${serve.child.pid}`);
      expectLayout(text, 80, 24);

      /** queue --json now; the screen must show its numbers within one refresh. */
      const compare = async (what: string, want?: (json: QueueTable) => boolean): Promise<QueueTable> => {
        let json: QueueTable = new Map();
        await waitFor(async () => {
          const r = await runCli(['queue', String(master), '--json']);
          expect(r.stderr).toBe('');
          expect(r.status).toBe(0);
          json = queueOfJson(JSON.parse(r.stdout));
          return want ? want(json) : true;
        }, { timeout: 15_000, interval: 0, what: `queue --json ${what}` });
        const t0 = Date.now();
        text = await s.waitFor((t) => tableText(queueOnScreen(t)) === tableText(json),
          `the queue pane ${what} to read ${tableText(json)} (it reads ${tableText(queueOnScreen(s.capture()))})`, REFRESH_MS + 1_500);
        const ms = Date.now() - t0;
        console.log(`queue pane = queue --json ${what}: ${ms} ms after the CLI returned`);
        return json;
      };

      const json = await compare('at rest');
      // not a match of two empty tables: the fixture's numbers, 3 and 5 pending behind 1 in flight
      expect([...json].filter(([k]) => k.endsWith('/held')).map(([, v]) => v).sort((a, b) => a.depth - b.depth))
        .toEqual([3, 5].map((depth) => ({ depth, in_flight: 1, timeouts: 0, rejected: 0 })));
      expect([...json.keys()].sort()).toEqual(workers.flatMap((w) => [`${w}/held`, `${w}/held_ctl`]).sort());
      const total = (t: QueueTable) => [...t.values()].reduce((n, v) => n + v.depth + v.in_flight, 0);
      expect(pane(text, 'Tasks').titleRow).toMatch(new RegExp(`\\b${total(json)} pending$`));
      // the percentiles come from 1 task in 64 beyond one a millisecond, and the title says so
      expect(pane(text, 'FFI queues').titleRow).toMatch(/\b4 runtimes, latency 1\/64 sampled$/);

      // two more tasks pending in one worker: both views follow
      const pid = Number((await http(nginx().url('/more?n=2'))).body.toString().trim());
      const before = json.get(`${pid}/held`)!.depth;
      const json2 = await compare('after /more?n=2', (j) => j.get(`${pid}/held`)?.depth === before + 2);
      await s.waitFor((t) => new RegExp(`\\b${total(json2)} pending$`).test(pane(t, 'Tasks').titleRow), `${total(json2)} pending in the Tasks title`);

      // a breakpoint set from the screen lives in the serve's session: on while the TUI runs...
      await command(s, `breakpoint ${TUI_APP_FILE}:${TUI_BREAK_LINE}`);
      await s.waitFor((t) => new RegExp(`bp \\d+ set at ${TUI_APP_FILE}:${TUI_BREAK_LINE} on 2 workers`).test(t), 'the breakpoint set');
      const on = await agentState(master);
      expect(on.breakpoints).toHaveLength(1);
      expect(on.stats.map((w) => [w.pid, w.hook, w.armed])).toEqual([...workers].sort((a, b) => a - b).map((w) => [w, true, 1]));

      // ...and gone when q returns, though the serve (and its session) goes on
      await expectCleanExit(s, master);
      expect(serve.child.exitCode).toBe(null);
      expect(await agentState(master)).toEqual({ breakpoints: [], stats: idle(workers) });
      const listed = await runCli(['breakpoints', String(master), '--json']);
      expect(listed.status).toBe(0);
      expect(JSON.parse(listed.stdout)).toMatchObject({ pid: master, serve: serve.child.pid, breakpoints: [] });
    } finally {
      serve.child.kill('SIGINT');
      await serve.exited;
    }
  }, 50_000);

  it('in-process: :breakpoint and its hits, a task\'s waiting stack, 200×60 → 80×24 → 200×60, q', async () => {
    const master = nginx().masterPid;
    const workers = nginx().workerPids();
    // the serve of the test before may still be letting the workers go
    const rest = await waitFor(() => agentState(master), { timeout: 10_000, what: 'the workers free for a new session' });
    expect(rest.stats).toEqual(idle(workers));
    const s = attach(master, 200, 60);
    let text = await ready(s, workers);
    expect(text.split('\n')[0]).toContain('in-process');
    expectLayout(text, 200, 60);

    // 2. :breakpoint FILE:LINE arms on both workers; every request's hit shows in Hits
    await command(s, `breakpoint ${TUI_APP_FILE}:${TUI_BREAK_LINE}`);
    text = await s.waitFor((t) => new RegExp(`bp \\d+ set at ${TUI_APP_FILE}:${TUI_BREAK_LINE} on 2 workers`).test(t), 'the breakpoint set');
    const bp = /bp (\d+) set at/.exec(text)![1]!;
    await s.waitFor((t) => pane(t, 'Hits').rows.some((r) => r.includes(`bp ${bp} ${TUI_APP_FILE}:${TUI_BREAK_LINE} 0 hits`)), 'the breakpoint in the Hits pane');
    const N = 8;
    const servedBy = new Map<number, number>();
    for (let n = 0; n < N; n++) {
      const body = (await http(nginx().url(`/work?n=${n}`))).body.toString();
      servedBy.set(n, Number(/pid=(\d+)/.exec(body)![1]));
    }
    text = await s.waitFor((t) => pane(t, 'Hits').titleRow.includes(`${N} shown, ${N} hits`) && pane(t, 'Hits').rows.filter((r) => r.includes('doubled=')).length === N,
      `${N} hits in the Hits pane`);
    // time, bp, worker, where, locals, request. The locals come in the worker's hash order, not
    // their declaration order (`doubled=6 n=3` in one worker, `n=2 doubled=4` in the other)
    const hits = pane(text, 'Hits').rows.flatMap((r) => {
      const m = /^[> ]\d\d:\d\d:\d\d\.\d{3}\s+(\d+)\s+(\d+) \S*tui_app\.lua:(\d+)\s+(.*?)\s+GET \/work\?n=(\d+)$/.exec(r);
      if (!m) return [];
      const locals = Object.fromEntries([...m[4]!.matchAll(/(\w+)=(\S+)/g)].map((l) => [l[1], l[2]]));
      return [{ bp: m[1], worker: +m[2]!, line: +m[3]!, locals, uriN: +m[5]! }];
    });
    // one hit per request, from the worker that answered it, with the request's locals
    expect([...hits].sort((a, b) => a.uriN - b.uriN), text).toEqual([...Array(N).keys()].map((n) =>
      ({ bp, worker: servedBy.get(n), line: TUI_BREAK_LINE, locals: { n: String(n), doubled: String(2 * n) }, uriN: n })));
    // "as they come, newest first": each worker's hits (one link each) newest first; between
    // workers it is the order of arrival, which under load is not that of the time column
    for (const w of workers) {
      const ns = hits.filter((h) => h.worker === w).map((h) => h.uriN);
      expect(ns, text).toEqual([...ns].sort((a, b) => b - a));
    }

    // 3. Tab to Tasks, down to a pending task, Enter: the stack of the coroutine waiting on it
    s.keys(['Tab']);
    text = await s.waitFor((t) => pane(t, 'Tasks').focused, 'the Tasks pane focused');
    let task = tasksOnScreen(text).find((r) => r.selected);
    for (let i = 0; i < 12 && task?.state !== 'pending'; i++) {
      const was = task?.task + '/' + task?.worker;
      s.keys(['j']);
      text = await s.waitFor((t) => { const sel = tasksOnScreen(t).find((r) => r.selected); return sel !== undefined && `${sel.task}/${sel.worker}` !== was; }, 'the selection to move down');
      task = tasksOnScreen(text).find((r) => r.selected);
    }
    expect(task, text).toMatchObject({ method: 'held.work', state: 'pending' });
    const { co, worker } = task!;
    s.keys(['Enter']);
    text = await s.waitFor((t) => {
      const p = panes(t).get('Stack');
      return p?.focused === true && p.titleRow.includes(`co ${co}, worker ${worker}`) && framesOnScreen(t).some((f) => f.name === WAIT_FRAMES[1]!.name);
    }, `the stack of co ${co} in worker ${worker}`);
    const frames = framesOnScreen(text);
    const ours = frames.filter((f) => f.source.endsWith(`/${TUI_APP_FILE}`) && f.name !== '?');
    expect(ours.map((f) => ({ name: f.name, line: f.line })), text).toEqual(WAIT_FRAMES);
    // above them, innermost, the binding's call that waits on the task
    const work = frames.findIndex((f) => f.source.endsWith('/nffi/call.lua'));
    expect(work, text).toBeGreaterThanOrEqual(0);
    expect(work, text).toBeLessThan(frames.indexOf(ours[0]!));
    s.keys(['Escape']);
    await s.waitFor((t) => pane(t, 'Tasks').focused, 'Esc back to the Tasks pane');

    // 4. resizes: every pane's title, once, nothing wider than the screen, the same numbers
    const queue = tableText(queueOnScreen(text));
    for (const [cols, rows] of [[80, 24], [200, 60]] as const) {
      s.resize(cols, rows);
      text = await s.waitFor((t) => layoutProblems(t, cols, rows).length === 0 && tableText(queueOnScreen(t)) === queue,
        `a whole ${cols}×${rows} frame with the same queue numbers`);
      expectLayout(text, cols, rows);
      expect(pane(text, 'Hits').titleRow).toContain(`${N} shown, ${N} hits`);
      expect(text.split('\n')[rows - 1]!.includes('+/- refresh')).toBe(cols === 200);
    }
    // at 200×60 again: the stack is still there, and each hit row whole
    expect(framesOnScreen(text).filter((f) => f.name !== '?').map((f) => f.name)).toEqual(expect.arrayContaining(WAIT_FRAMES.map((f) => f.name)));
    expect(pane(text, 'Hits').rows.filter((r) => r.includes(`GET /work?n=`))).toHaveLength(N);

    // 5. q: exit 0, the terminal back, and nothing armed (this session had the workers: a new
    // one can open at once, and finds no breakpoint and no hook)
    await expectCleanExit(s, master);
    expect(await agentState(master)).toEqual({ breakpoints: [], stats: idle(workers) });
  }, 50_000);
});
