// What a hit costs, in the breakpoints bench (bench/breakpoints.ts): one kept hit (a frame
// with 10 locals, timed inside the worker) and one dropped past the rate (a hot line
// against its floor).
import { formatTable } from '../cli/format/table.js';
import {
  CheckFailed, check, failed, HIT_CALLS, HIT_REQUESTS, HOT_ROUNDS, lineOf, median, modeText, noForeignHook,
  Notes, sameMode, sleep, timed, type Mode, type Worker,
} from './breakpoints-worker.js';

// ---------------------------------------------------------------------------------------
// One hit: ten_locals called HIT_CALLS times a request, timed inside the worker. Under the
// agent's hit ring (256), so every hit is a full snapshot, not a counted drop; pauses
// between requests let the writer ship them. Every timed call must be a recorded hit.

async function perCall(w: Worker): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < HIT_REQUESTS; i++) {
    xs.push(Number((await w.get(`/hitloop?n=${HIT_CALLS}`)).split(' ')[0]));
    await sleep(300);
  }
  return Math.min(...xs);
}

interface HitRow { label: string; run(w: Worker): Promise<{ us: number; mode: string; hits: number; events: number }> }

async function hitArmed(w: Worker, what: string, want?: Mode['mode']): Promise<{ us: number; mode: string; hits: number; events: number }> {
  return w.withBreakpoint(lineOf('BP-HIT'), async (id) => {
    const m = await w.settle(want);
    const before = await w.stats();
    const us = await perCall(w);
    const after = await w.stats();
    sameMode(m, after, what);
    const timedCalls = HIT_CALLS * HIT_REQUESTS;
    const hits = after.hits - before.hits;
    const bp = await w.agentBreakpoint(id);
    const events = await w.settledHits(id, timedCalls);
    check(hits === timedCalls && bp.hits === timedCalls && events === timedCalls,
      `${what}: ${timedCalls} calls of the breakpoint line were timed in mode ${modeText(m)}, but the agent recorded ` +
      `${hits} hits (${bp.hits} on the breakpoint, ${bp.dropped} dropped) and the probe received ${events} hit events: ` +
      'no cost per hit can be given for hits that did not happen');
    return { us, mode: modeText(m), hits, events };
  });
}

const HIT_ROWS: HitRow[] = [
  {
    label: 'no breakpoint',
    async run(w) {
      const before = await w.snap();
      noForeignHook(before, 'no breakpoint');
      const us = await perCall(w);
      const after = await w.snap();
      check(after.bp.hits === before.bp.hits, 'no breakpoint: the agent recorded hits');
      return { us, mode: 'no hook', hits: 0, events: 0 };
    },
  },
  { label: 'breakpoint on the line', run: (w) => hitArmed(w, 'breakpoint on the line') },
  { label: 'every line hooked', run: (w) => w.without('gate', () => hitArmed(w, 'every line hooked', 'line hook')) },
];

export async function hitCostTable(w: Worker): Promise<string> {
  const notes = new Notes();
  const rows: string[][] = [];
  let plain: number | undefined;
  for (const row of HIT_ROWS) {
    try {
      const r = await row.run(w);
      plain ??= r.us;
      const cost = row.label === 'no breakpoint' ? '-' : (r.us - plain).toFixed(1);
      rows.push([row.label, notes.ref(r.mode), r.us.toFixed(2), cost, String(HIT_CALLS * HIT_REQUESTS),
        String(r.hits), String(r.events)]);
    } catch (err) {
      rows.push([row.label, '-', failed(`one hit, ${row.label}`, err), '-', String(HIT_CALLS * HIT_REQUESTS), '-', '-']);
    }
  }
  return formatTable(['configuration', 'mode', 'µs per call', 'cost per hit µs', 'calls timed', 'hits recorded', 'hit events'], rows) +
    '\n' + notes.text();
}

// ---------------------------------------------------------------------------------------
// A breakpoint at the default rate (50/s) on a line that runs hot_n (100) times a request:
// past the rate, every hit is dropped and counted. Its floor: the same function with JIT
// off for it and an empty C line hook. Cost per dropped hit = (time per request armed −
// time per request at the floor) / dropped hits per request.

interface HotSample {
  rps: number; mode: string; usPerReq: number; linesPerReq: number;
  /** the armed case: hits dropped per request, of them dropped in C (native.muted), kept (hit events) per run */
  droppedPerReq?: number; mutedPerReq?: number; kept?: number;
}

const HOT_CONFIGS: Array<{ key: string; label: string; run(w: Worker): Promise<HotSample> }> = [
  {
    key: 'none', label: 'no breakpoint (JIT on)',
    async run(w) {
      const { r, before, after } = await timed(w, '/hot');
      noForeignHook(before, 'hot line, no breakpoint');
      noForeignHook(after, 'hot line, no breakpoint');
      const runs = after.c.hot_runs - before.c.hot_runs;
      check(runs >= r.requests, `hot line: ${runs} runs of hot() for ${r.requests} requests`);
      return { rps: r.rps, mode: 'no hook', usPerReq: 1e6 / r.rps, linesPerReq: after.c.hot_n };
    },
  },
  {
    key: 'floor', label: 'floor: JIT off for hot(), empty C line hook',
    run: (w) => w.around('/hot_jit_off', '/hot_jit_on', () => w.withFixture('floor_line', async (answer) => {
      check(answer === 'ok', `hot line floor: the empty line hook is not installed (${answer})`);
      const { r, before, after } = await timed(w, '/hot');
      for (const s of [before, after]) {
        check(s.c.hook?.kind === 'external hook' && s.c.hook.mask === 'l',
          `hot line floor: the VM's hook is ${JSON.stringify(s.c.hook)}, not a C line hook`);
      }
      check(!/\bJ/.test(after.c.hot_loops), `hot line floor: hot() ran compiled (loops: ${after.c.hot_loops})`);
      const runs = after.c.hot_runs - before.c.hot_runs;
      const events = after.c.empty_calls - before.c.empty_calls;
      check(runs >= r.requests && events >= runs * after.c.hot_n,
        `hot line floor: ${events} line events for ${runs} runs of hot(), at least ${after.c.hot_n} a run expected`);
      return { rps: r.rps, mode: 'empty C line hook', usPerReq: 1e6 / r.rps, linesPerReq: after.c.hot_n };
    })),
  },
  {
    key: 'armed', label: 'breakpoint on the line, default rate',
    run: (w) => w.withBreakpoint(lineOf('BP-HOT'), async (id) => {
      const m = await w.settle();
      const bp0 = await w.agentBreakpoint(id);
      const events0 = w.hitsReceived(id);
      const { r, before, after } = await timed(w, '/hot');
      sameMode(m, after, 'hot line breakpoint');
      const runs = after.c.hot_runs - before.c.hot_runs;
      check(runs >= r.requests, `hot line: ${runs} runs of hot() for ${r.requests} requests`);
      const lines = runs * after.c.hot_n;
      const bp = await w.agentBreakpoint(id);
      const dropped = bp.dropped - bp0.dropped;
      const kept = (await w.settledHits(id, 1)) - events0;
      const muted = (after.bp.native?.muted ?? 0) - (before.bp.native?.muted ?? 0);
      const near = (n: number) => Math.abs(n - lines) <= Math.max(2, lines * 0.005);
      // dropped counts every hit past the rate; an agent that drops in C may count its
      // muted hits apart from the breakpoint's own: then they add up with them
      const accounted = near(dropped + kept) ? dropped : near(dropped + muted + kept) ? dropped + muted : undefined;
      check(accounted !== undefined && accounted > 0,
        `hot line breakpoint (${modeText(m)}): the line ran ${lines} times (${runs} requests × ${after.c.hot_n}), the agent ` +
        `accounted for ${dropped} dropped + ${kept} kept${muted ? ` (+ ${muted} muted in C)` : ''} = ${dropped + kept}: ` +
        'no cost per dropped hit can be given');
      return { rps: r.rps, mode: modeText(m), usPerReq: 1e6 / r.rps, linesPerReq: after.c.hot_n,
        droppedPerReq: accounted / runs, mutedPerReq: muted / runs, kept };
    }, { timeout_ms: 600_000 }),
  },
];

export async function hotLineTable(w: Worker): Promise<string> {
  const cols = new Map(HOT_CONFIGS.map((c) => [c.key, { samples: [] as HotSample[], failure: undefined as string | undefined }]));
  for (let round = 0; round < HOT_ROUNDS; round++) {
    for (let i = 0; i < HOT_CONFIGS.length; i++) {
      const c = HOT_CONFIGS[(i + round) % HOT_CONFIGS.length]!;
      const col = cols.get(c.key)!;
      if (col.failure) continue;
      try {
        col.samples[round] = await c.run(w);
      } catch (err) {
        col.failure = failed(`hot line, ${c.label}, round ${round + 1}`, err);
      }
    }
  }
  for (const c of HOT_CONFIGS) {
    const col = cols.get(c.key)!;
    const modes = [...new Set(col.samples.map((x) => x.mode))];
    if (!col.failure && modes.length > 1) {
      col.failure = failed(`hot line, ${c.label}`, new CheckFailed(`the mode differed between rounds: ${modes.join(' / ')}`));
    }
  }
  const notes = new Notes();
  const rows = HOT_CONFIGS.map((c) => {
    const col = cols.get(c.key)!;
    if (col.failure) return [c.label, '-', col.failure, '-', '-', '-', '-', '-'];
    const s = col.samples;
    const modes = [s[0]!.mode];
    const armed = c.key === 'armed';
    const rps = median(s.map((x) => x.rps));
    return [c.label, notes.ref(modes[0]!), rps.toFixed(0), (1e6 / rps).toFixed(2), String(s[0]!.linesPerReq),
      armed ? median(s.map((x) => x.droppedPerReq!)).toFixed(1) : '-',
      armed ? median(s.map((x) => x.mutedPerReq!)).toFixed(1) : '-',
      armed ? String(median(s.map((x) => x.kept!))) : '-'];
  });
  let cost: string;
  const armed = cols.get('armed')!;
  const floor = cols.get('floor')!;
  if (armed.failure || floor.failure) {
    cost = `cost per dropped hit: not measured (${[armed.failure, floor.failure].filter(Boolean).join(', ')})`;
  } else {
    // per round, against that round's floor, then the median
    const us = median(armed.samples.map((a, i) => (a.usPerReq - floor.samples[i]!.usPerReq) / a.droppedPerReq!));
    cost = `cost per dropped hit: (µs per request armed − at the floor) / dropped per request = ${us.toFixed(3)} µs ` +
      `(target ≤ 0.2 µs; median of ${HOT_ROUNDS} rounds' own ratios)`;
  }
  return formatTable(['configuration', 'mode', 'req/s', 'µs per request', 'line runs/request', 'dropped/request',
    'of them in C', 'kept per run'], rows) + '\n' + notes.text() + cost + '\n';
}
