// Req/s of the breakpoints bench (bench/breakpoints.ts): each handler under every
// configuration (no hook, armed elsewhere, a watchpoint alone, watchpoints off, the empty
// C call hook, every line hooked, lua-resty-inspect's way), ROUNDS rounds in turning order,
// each run checked for the hook it means to time.
import { formatTable } from '../cli/format/table.js';
import {
  CheckFailed, check, failed, lineOf, median, minEvents, modeText, nativeCalls, noForeignHook, Notes, perReq,
  ROUNDS, sameMode, stillInterpreted, timed, type Handler, type Worker,
} from './breakpoints-worker.js';

interface Sample { rps: number; mode: string; events: number }
interface Config { key: string; label: string; run(w: Worker, h: Handler): Promise<Sample> }

const NEVER = () => lineOf('BP-NEVER');

const CONFIGS: Config[] = [
  {
    key: 'none', label: 'no hook',
    async run(w, h) {
      const { r, before, after } = await timed(w, h.path);
      noForeignHook(before, 'no hook');
      noForeignHook(after, 'no hook');
      check(nativeCalls(after) === nativeCalls(before), 'no hook: the agent\'s hook was called');
      stillInterpreted(h, after);
      return { rps: r.rps, mode: 'no hook', events: 0 };
    },
  },
  {
    key: 'armed', label: 'armed elsewhere',
    run: (w, h) => w.withBreakpoint(NEVER(), async () => {
      const m = await w.settle();
      check(m.mode === 'watching' || m.mode === 'call hook', `armed elsewhere: the hook at rest is ${modeText(m)}`);
      const { r, before, after } = await timed(w, h.path);
      sameMode(m, after, 'armed elsewhere');
      const events = perReq(nativeCalls(after) - nativeCalls(before), r);
      if (m.mode === 'watching') {
        check(!before.c.hook, `armed elsewhere (watching): the VM has a hook (${JSON.stringify(before.c.hook)})`);
        check(events < 1, `armed elsewhere (watching): the agent's hook ran ${events.toFixed(1)} times per request`);
      } else {
        check(before.bp.native?.mask === 1, `armed elsewhere (call hook): hook mask ${before.bp.native?.mask}, not calls only`);
        minEvents(h, 'armed elsewhere (call hook)', events, h.minCalls);
      }
      stillInterpreted(h, after);
      return { rps: r.rps, mode: modeText(m), events };
    }),
  },
  {
    key: 'watchpoint', label: 'a watchpoint alone',
    run: (w, h) => w.withFixture('watchpoint', async (answer) => {
      if (answer !== 'ok') return { rps: NaN, mode: 'perf_event_open refused', events: 0 };
      const { r, before, after } = await timed(w, h.path);
      noForeignHook(before, 'a watchpoint alone');
      noForeignHook(after, 'a watchpoint alone');
      stillInterpreted(h, after);
      return { rps: r.rps, mode: 'no hook, 1 debug register', events: 0 };
    }),
  },
  {
    key: 'callhook', label: 'armed, watchpoints off',
    run: (w, h) => w.without('watch', () => w.withBreakpoint(NEVER(), async () => {
      const m = await w.settle('call hook');
      const { r, before, after } = await timed(w, h.path);
      sameMode(m, after, 'armed, watchpoints off');
      check(before.bp.native?.mask === 1, `armed, watchpoints off: hook mask ${before.bp.native?.mask}, not calls only`);
      const events = perReq(nativeCalls(after) - nativeCalls(before), r);
      minEvents(h, 'armed, watchpoints off', events, h.minCalls);
      stillInterpreted(h, after);
      return { rps: r.rps, mode: modeText(m), events };
    })),
  },
  {
    key: 'floor', label: 'empty C call hook',
    run: (w, h) => w.withFixture('floor', async (answer) => {
      check(answer === 'ok', `empty C call hook: not installed (${answer})`);
      const { r, before, after } = await timed(w, h.path);
      for (const s of [before, after]) {
        check(s.c.hook?.kind === 'external hook' && s.c.hook.mask === 'c',
          `empty C call hook: the VM's hook is ${JSON.stringify(s.c.hook)}, not a C call hook`);
      }
      const events = perReq(after.c.empty_calls - before.c.empty_calls, r);
      minEvents(h, 'empty C call hook', events, h.minCalls);
      stillInterpreted(h, after);
      return { rps: r.rps, mode: 'empty C call hook', events };
    }),
  },
  {
    key: 'ungated', label: 'every line hooked',
    run: (w, h) => w.without('gate', () => w.withBreakpoint(NEVER(), async () => {
      const m = await w.settle('line hook');
      const { r, before, after } = await timed(w, h.path);
      sameMode(m, after, 'every line hooked');
      check(((before.bp.native?.mask ?? 0) & 4) !== 0, `every line hooked: hook mask ${before.bp.native?.mask}, no line events`);
      const events = perReq(nativeCalls(after) - nativeCalls(before), r);
      minEvents(h, 'every line hooked', events, h.minLines);
      stillInterpreted(h, after);
      return { rps: r.rps, mode: modeText(m), events };
    })),
  },
  {
    key: 'resty', label: 'lua-resty-inspect way',
    run: (w, h) => w.withFixture('inspect', async () => {
      const { r, before, after } = await timed(w, h.path);
      for (const s of [before, after]) {
        check(s.c.hook?.kind === 'lua' && s.c.hook.mask === 'l',
          `lua-resty-inspect way: the VM's hook is ${JSON.stringify(s.c.hook)}, not its Lua line hook`);
      }
      const events = perReq(after.c.resty_calls - before.c.resty_calls, r);
      minEvents(h, 'lua-resty-inspect way', events, h.minLines);
      stillInterpreted(h, after);
      return { rps: r.rps, mode: 'Lua line hook', events };
    }),
  },
];
export interface Column { samples: Sample[][]; failure?: string }

/** Runs of the interpreter-heavy handler, and those before which JIT was found back on
 * for interp_work (the bench turns it off again before every run). */
const interpJit = { runs: 0, foundOn: [] as string[] };

/** Runs every configuration once a round, the order turning by one each round, so no
 * configuration always runs first (or right after the same other one). */
export async function reqPerSec(w: Worker, h: Handler): Promise<Map<string, Column>> {
  const cols = new Map(CONFIGS.map((c) => [c.key, { samples: [] } as Column]));
  let previous = 'start';
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < CONFIGS.length; i++) {
      const c = CONFIGS[(i + round) % CONFIGS.length]!;
      const col = cols.get(c.key)!;
      if (col.failure) continue;
      if (h.interpreted) {
        const was = await w.get('/interp_jit_off');
        if (interpJit.runs > 0 && was !== 'unknown' && was.split(',').some((op) => op !== 'IFORL')) interpJit.foundOn.push(`${was} after ${previous}`);
        interpJit.runs++;
        previous = c.label;
      }
      try {
        col.samples[round] = [await c.run(w, h)];
      } catch (err) {
        col.failure = failed(`${h.name}, ${c.label}, round ${round + 1}`, err);
      }
    }
  }
  return cols;
}

export function reqPerSecTable(results: Array<[Handler, Map<string, Column>]>): string {
  const notes = new Notes();
  const rows = CONFIGS.map((c) => {
    const modes: string[] = [];
    const cells: string[] = [];
    for (const [, cols] of results) {
      const col = cols.get(c.key)!;
      const none = cols.get('none')!;
      const runs = col.samples.map((s) => s[0]!);
      const seen = [...new Set(runs.map((s) => s.mode))];
      modes.push(...seen);
      if (col.failure || none.failure) {
        cells.push(col.failure ?? `(no hook ${none.failure})`, '-', '-');
        continue;
      }
      if (seen.length > 1) {
        cells.push(failed(c.label, new CheckFailed(`the mode differed between rounds: ${seen.join(' / ')}`)), '-', '-');
        continue;
      }
      if (runs.some((s) => Number.isNaN(s.rps))) {
        cells.push('refused', '-', '-');
        continue;
      }
      // loss: the median over rounds of each round's own ratio to its no-hook run,
      // so a slow drift of the machine between rounds cancels out
      const ratio = median(runs.map((s, i) => s.rps / none.samples[i]![0]!.rps));
      const loss = c.key === 'none' ? '-' : `${((1 - ratio) * 100).toFixed(1)}%${c.key === 'resty' ? ` (${(1 / ratio).toFixed(1)}× slower)` : ''}`;
      cells.push(median(runs.map((s) => s.rps)).toFixed(0), loss, median(runs.map((s) => s.events)).toFixed(0));
    }
    const mode = [...new Set(modes)].map((m) => notes.ref(m)).join(' / ');
    return [c.label, mode, ...cells];
  });
  const header = ['configuration', 'mode'];
  for (const [h] of results) header.push(`${h.name} req/s`, 'loss', 'hook events/req');
  let jitNote = '';
  if (interpJit.foundOn.length) {
    const after = new Map<string, number>();
    for (const f of interpJit.foundOn) {
      const k = f.replace(/^\S+ after /, '');
      after.set(k, (after.get(k) ?? 0) + 1);
    }
    jitNote = `interp_work (jit.off) was found with JIT back on before ${interpJit.foundOn.length} of ${interpJit.runs} runs, ` +
      `after: ${[...after].map(([k, n]) => `${k} ×${n}`).join(', ')}; the bench turns it off again before every run\n`;
  }
  return formatTable(header, rows) + '\n' + notes.text() + jitNote;
}
