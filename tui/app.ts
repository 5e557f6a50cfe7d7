// `nffi-inspect attach PID`: the terminal, the client, the store, the sampler and the screen,
// and every way out. The terminal is checked before anything attaches (not a TTY, TERM=dumb:
// a TermError naming the one-shot commands). Quitting (q, C-c, :detach, SIGINT, SIGTERM)
// removes the breakpoints this session set, restores the terminal and closes the client; a
// hung probe cannot hold the terminal (each step has a deadline). A probe error goes to the
// status line; an exception restores the terminal (tui/term.ts) and Node reports it.
//
// Benchmarks and end-to-end tests drive it with startAttach(): inject the client, the streams,
// the clock, `manual: true` to sample on demand, and read `stats()`.
import { performance } from 'node:perf_hooks';
import { debuglog } from 'node:util';
import type { BreakpointEvent, Disposer, ProbeClient } from '../client/client.js';
import type { ConnectOptions } from '../client/connect.js';
import { formatEvent } from '../cli/format/hit.js';
import { Store } from '../store/store.js';
import { Sampler, type SampleKind, type Snapshot } from './sampler.js';
import { HitRing } from './panes/hits.js';
import { Screen } from './screen.js';
import { createTerm, type Term, type TermInput, type TermOutput } from './term.js';
import { thresholds, type QueueThresholds } from './thresholds.js';
import { errorText } from './widgets/statusline.js';

/** How often the in-process session looks for workers that exit or appear (ms). */
const SESSION_POLL_MS = 500;

const trace = debuglog('nffi');

export interface AttachOptions {
  /** A master (all its workers) or one worker. */
  pid: number;
  /** Use this client instead of connecting (client/connect.ts) to `pid`. */
  client?: ProbeClient;
  connect?: ConnectOptions;
  input?: TermInput;
  output?: TermOutput;
  env?: NodeJS.ProcessEnv;
  /** false: no colour (as NO_COLOR). */
  color?: boolean;
  /** The clock of everything shown and of the history (tests: a fake one). */
  now?: () => number;
  /** Default 500 ms. */
  refreshMs?: number;
  thresholds?: Partial<QueueThresholds>;
  /** Clock times in UTC (tests), else local. */
  utc?: boolean;
  /** Restore the terminal on signals, exceptions and exit (default: when the streams are the
   * process's own). */
  processHooks?: boolean;
  /** No timers: sample() samples (tests, benchmarks that pace themselves). */
  manual?: boolean;
  /** Close the client on the way out (default true, also for an injected one). */
  closeClient?: boolean;
  /** After the cleanup a SIGINT/SIGTERM/SIGHUP/SIGQUIT asked for (default: exit 128+signal). */
  onSignal?: (signal: NodeJS.Signals, code: number) => void;
  /** Hits kept for the hits pane (default 1000); older ones are counted. */
  keepHits?: number;
  /** Of those, the newest that keep their full snapshot (default 50: one can be ~0.7 MB); the
   * older ones keep their row only. */
  keepHitSnapshots?: number;
  /** Deadline of each step of the way out (default 3 s). */
  exitTimeoutMs?: number;
}

export interface AttachExit {
  code: number;
  /** quit: q, C-c, :detach; signal; ended: the caller's dispose(). */
  how: 'quit' | 'signal' | 'ended';
}

export interface AttachStats {
  /** Draws that reached the terminal, and draw requests (many per draw when busy). */
  renders: number;
  renderRequests: number;
  keys: number;
  /** From a key's arrival to the end of the draw that showed it, ms. */
  lastKeyMs: number | undefined;
  maxKeyMs: number;
  samples: number;
  /** Sample kinds skipped because their previous request was still out. */
  skipped: number;
  sampleErrors: number;
  lastSampleMs: number;
  events: number;
  dropped: {
    /** Hits that fell off the kept ring (keepHits). */
    hits: number;
    /** Hits whose full snapshot was let go to bound memory (keepHitSnapshots): their row stays
     * while the ring holds it. */
    hitSnapshots: number;
    /** Hits the workers could not ship (rate limit, full ring), as they reported. */
    hitsByWorkers: number;
    /** Samples let go before 60 s to keep the history's row budget. */
    samples: number;
    /** Pending tasks not listed (past the page asked for). */
    tasksNotListed: number;
    /** Workers whose coroutine walk the agent cut short. */
    coroutineWalksCut: number;
  };
  history: { samples: number; rows: number };
}

const SIGNAL_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGTERM: 15 };

function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => {
      trace('attach: %s took over %d ms; going on', what, ms);
      resolve(undefined);
    }, ms);
  });
  return Promise.race([p.catch((err: unknown) => { trace('attach: %s: %s', what, errorText(err)); return undefined; }), late])
    .finally(() => clearTimeout(timer));
}

export class AttachApp {
  readonly screen: Screen;
  client: ProbeClient | undefined;
  store: Store | undefined;
  sampler: Sampler | undefined;
  readonly done: Promise<AttachExit>;
  private resolveDone!: (e: AttachExit) => void;
  private readonly now: () => number;
  private readonly disposers: Disposer[] = [];
  private leaving: Promise<AttachExit> | undefined;
  private keyAt: number | undefined;
  private readonly counts = { keys: 0, lastKeyMs: undefined as number | undefined, maxKeyMs: 0, events: 0 };
  private readonly hits: HitRing;
  private lastRate: { at: number; hits: number } | undefined;
  private lastWorkerErrors = '';
  private eventsTimer: NodeJS.Timeout | undefined;
  private scriptNames: string[] | undefined;

  constructor(readonly term: Term, private readonly opts: AttachOptions) {
    this.now = opts.now ?? Date.now;
    this.hits = new HitRing(opts.keepHits ?? 1_000, opts.keepHitSnapshots ?? 50);
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    // before the shell's own listener: the key's time of arrival
    this.disposers.push(term.onKey(() => {
      this.counts.keys++;
      this.keyAt ??= performance.now();
    }));
    this.screen = new Screen({
      term, pid: opts.pid, now: this.now, utc: opts.utc ?? false, refreshMs: opts.refreshMs ?? 500,
      thresholds: thresholds(opts.thresholds),
      onQuit: () => void this.quit(),
      onRefresh: (ms) => this.sampler?.setRefresh(ms),
      onDraw: () => this.drawn(),
    });
    this.screen.shell.draw();
  }

  get shell() {
    return this.screen.shell;
  }

  private drawn(): void {
    if (this.keyAt === undefined) return;
    const ms = performance.now() - this.keyAt;
    this.keyAt = undefined;
    this.counts.lastKeyMs = ms;
    this.counts.maxKeyMs = Math.max(this.counts.maxKeyMs, ms);
  }

  /** Attach through `client`: subscribe, load the breakpoints a serve already holds, sample. */
  async start(client: ProbeClient): Promise<void> {
    this.client = client;
    // the store keeps no hits of its own (`recent`): the hit ring above does, bounded
    const store = (this.store = new Store(client, { queue: { history: 1_200, now: this.now }, hits: { keep: 0 } }));
    const screen = this.screen;
    this.disposers.push(
      store.workers.follow(),
      store.workers.onChange((ws) => {
        screen.header.workers = ws;
        screen.update();
      }),
      client.onTarget((e) => {
        if (e.event === 'attached') {
          const now = this.now();
          for (const [pid, at] of screen.header.joined) if (now - at > 60_000) screen.header.joined.delete(pid);
          screen.header.joined.set(e.target.pid, now);
          screen.header.gone = screen.header.gone.filter((g) => g.pid !== e.target.pid);
          screen.info(`worker ${e.target.pid} attached`);
        } else {
          screen.header.gone.push({ pid: e.pid, reason: e.reason, at: this.now() });
          screen.header.gone = screen.header.gone.slice(-8);
          screen.info(`worker ${e.pid} detached: ${e.reason}`);
        }
        screen.update();
      }),
      client.onBreakpoint((e) => this.event(e)),
      client.onEnd((why) => {
        this.sampler?.stop();
        screen.header.ended = why;
        screen.error(`the session ended: ${why} (q quits)`);
      }),
      // the per-breakpoint counts (armed, dropped, ended) as they change
      store.hits.onChange(() => this.eventsSoon()),
    );
    this.sampler = new Sampler({
      store, now: this.now, refreshMs: this.opts.refreshMs ?? 500, manual: this.opts.manual ?? false,
      taskWant: () => this.taskWant(),
      wantCoroutines: () => !this.shell.lastLayout || this.shell.lastLayout.panes.has('cos'),
      hits: () => this.hits.total,
      onSample: (s) => this.sampled(s),
      onError: (kind, err) => this.sampleError(kind, err),
    });
    const sampler = this.sampler;
    screen.attach({
      client, store, hits: this.hits, history: sampler.history,
      sampleSoon: (pid) => sampler.sampleSoon(pid),
      scripts: () => this.scripts(),
    });
    screen.update();
    await store.hits.load().catch((err: unknown) => screen.error(`breakpoints: ${errorText(err)}`));
    await sampler.start();
  }

  /** Sample now (manual mode); resolves once the answers are in and shown. */
  async sample(): Promise<Snapshot | undefined> {
    const snap = await this.sampler?.tick();
    this.flushEvents();
    return snap;
  }

  private taskWant(): number {
    const rows = this.shell.lastLayout?.panes.get('tasks')?.height ?? 20;
    return Math.min(1_000, Math.max(50, this.screen.tasks.selectedIndex + 2 * rows));
  }

  private sampled(s: Snapshot): void {
    const hits = this.hits.total;
    const h = this.screen.header;
    if (this.lastRate && s.at > this.lastRate.at) h.hitsPerSec = ((hits - this.lastRate.hits) * 1000) / (s.at - this.lastRate.at);
    this.lastRate = { at: s.at, hits };
    const bps = this.store!.hits.state.breakpoints;
    h.breakpoints = bps.filter((b) => b.ended === undefined).length;
    h.dropped = bps.reduce((n, b) => n + b.dropped, 0);
    const errors = [
      ...(s.queue?.workers ?? []).filter((w) => w.error).map((w) => `worker ${w.pid}: ${w.error}`),
      ...s.tasks.filter((w) => w.error).map((w) => `worker ${w.pid} tasks: ${w.error}`),
    ].join('; ');
    if (errors && errors !== this.lastWorkerErrors) this.screen.error(errors);
    this.lastWorkerErrors = errors;
    this.screen.sampled(s);
  }

  private sampleError(kind: SampleKind, err: unknown): void {
    this.screen.error(`${kind}: ${errorText(err)}`);
  }

  /** Breakpoint events: hits are counted and shown by the hits pane; the others are said on
   * the status line (drops at most once a second). */
  private lastDropNote = -Infinity;
  private event(e: BreakpointEvent): void {
    this.counts.events++;
    if (e.event === 'hit') {
      this.hits.push(e);
      this.eventsSoon();
      return;
    }
    if (e.event === 'ended') {
      this.screen.mine.delete(e.id);
      this.screen.info(`bp ${e.id} ended: ${e.reason}`);
      return;
    }
    if (e.event === 'dropped') {
      const now = this.now();
      if (now - this.lastDropNote < 1_000) return;
      this.lastDropNote = now;
    }
    const text = formatEvent(e);
    if (text === undefined) return;
    if (e.event === 'error') this.screen.error(text);
    else this.screen.info(text);
  }

  /** New hits and breakpoint counts show with the next sample (the screen's refresh rate,
   * however many hits come); with no sampling going on (manual, the session ended), within
   * 250 ms. */
  private eventsSoon(): void {
    if (this.eventsTimer || this.sampler?.running) return;
    this.eventsTimer = setTimeout(() => this.flushEvents(), 250);
    this.eventsTimer.unref();
  }

  /** Show what arrived and draw now (tests, benchmarks). */
  flush(): void {
    this.flushEvents();
    this.shell.scheduler.flush();
  }

  private flushEvents(): void {
    clearTimeout(this.eventsTimer);
    this.eventsTimer = undefined;
    this.screen.eventsChanged();
  }

  /** Chunk names of the first worker, asked for once (a sliced walk in the worker), in-process
   * or through a serve (its worker sockets answer Debugger.getScripts). Until they come, the
   * command line completes from frames. */
  private scripts(): string[] {
    if (this.scriptNames) return this.scriptNames;
    this.scriptNames = [];
    const pid = this.sampler?.alive()[0];
    if (this.client && pid !== undefined) {
      this.client.call(pid, 'Debugger.getScripts', {}).then((r) => {
        const scripts = (r as { scripts?: { source?: unknown }[] } | undefined)?.scripts;
        if (Array.isArray(scripts)) this.scriptNames = scripts.map((s) => s.source).filter((s): s is string => typeof s === 'string').slice(0, 5_000);
      }, (err: unknown) => trace('getScripts: %s', errorText(err)));
    }
    return this.scriptNames;
  }

  stats(): AttachStats {
    const s = this.sampler;
    const bps = this.store?.hits.state.breakpoints ?? [];
    const cut = (this.store?.coroutines.state ?? []).filter((w) => w.truncated).length;
    return {
      renders: this.shell.scheduler.renders,
      renderRequests: this.shell.scheduler.requests,
      keys: this.counts.keys,
      lastKeyMs: this.counts.lastKeyMs,
      maxKeyMs: this.counts.maxKeyMs,
      samples: s?.counts.ticks ?? 0,
      skipped: s?.counts.skipped ?? 0,
      sampleErrors: s?.counts.errors ?? 0,
      lastSampleMs: s?.counts.lastTickMs ?? 0,
      events: this.counts.events,
      dropped: {
        hits: this.hits.dropped,
        hitSnapshots: this.hits.snapshotsDropped,
        hitsByWorkers: bps.reduce((n, b) => n + b.dropped, 0),
        samples: s?.history.dropped ?? 0,
        tasksNotListed: this.screen.tasks.unlisted,
        coroutineWalksCut: cut,
      },
      history: { samples: s?.history.length ?? 0, rows: s?.history.rowsHeld ?? 0 },
    };
  }

  /**
   * The way out (idempotent): stop sampling, remove this session's breakpoints, restore the
   * terminal, close the client. Each step that waits on the probe has a deadline.
   */
  quit(how: AttachExit['how'] = 'quit', code = 0): Promise<AttachExit> {
    if (this.leaving) return this.leaving;
    this.leaving = (async () => {
      const limit = this.opts.exitTimeoutMs ?? 3_000;
      this.sampler?.stop();
      clearTimeout(this.eventsTimer);
      try {
        const mine = [...this.screen.mine];
        if (mine.length && this.store && !this.term.disposed) {
          this.screen.info(`removing breakpoint${mine.length > 1 ? 's' : ''} ${mine.join(', ')}…`);
          this.shell.scheduler.flush();
        }
        const store = this.store;
        if (store && mine.length) await deadline(Promise.all(mine.map((id) => store.hits.remove(id))), limit, 'removing breakpoints');
      } finally {
        for (const d of this.disposers.splice(0)) d();
        this.store?.dispose();
        this.screen.shell.dispose();
        this.term.dispose();
      }
      if (this.client && this.opts.closeClient !== false) await deadline(this.client.close(), limit, 'closing the client');
      const exit = { code, how };
      this.resolveDone(exit);
      return exit;
    })();
    return this.leaving;
  }

  /** A signal arrived (the terminal is restored already): clean up, then end as it asks. */
  async signal(sig: NodeJS.Signals): Promise<void> {
    const code = 128 + (SIGNAL_CODES[sig] ?? 15);
    await this.quit('signal', code);
    if (this.opts.onSignal) this.opts.onSignal(sig, code);
    else process.exit(code);
  }
}

/**
 * Check the terminal, draw the screen, connect (or take `opts.client`) and take the first
 * sample. Throws a TermError for a terminal that cannot run it (nothing attached then), and the
 * client's error when it cannot connect (the terminal restored first).
 */
export async function startAttach(opts: AttachOptions): Promise<AttachApp> {
  let app: AttachApp | undefined;
  const term = createTerm({
    ...(opts.input && { input: opts.input }),
    ...(opts.output && { output: opts.output }),
    ...(opts.env && { env: opts.env }),
    ...(opts.color === false && { color: false }),
    processHooks: opts.processHooks ?? (opts.input === undefined && opts.output === undefined),
    onSignal: (sig) => {
      if (app) void app.signal(sig);
      else if (opts.onSignal) opts.onSignal(sig, 128 + (SIGNAL_CODES[sig] ?? 15));
      else process.exit(128 + (SIGNAL_CODES[sig] ?? 15));
    },
  });
  try {
    app = term.guard(() => new AttachApp(term, opts));
    let client = opts.client;
    if (!client) {
      const { connect } = await import('../client/connect.js');
      // workers that exit or appear are looked for once a refresh (500 ms), not every 200 ms:
      // the /proc reads were ~2% of a core with 8 workers, and the screen moves no faster
      client = await connect(opts.pid, { pollMs: SESSION_POLL_MS, ...opts.connect });
    }
    if (term.disposed) {
      // a signal during the connect: the way out has begun without a client
      if (opts.closeClient !== false) await client.close();
      return app;
    }
    await app.start(client);
    return app;
  } catch (err) {
    term.dispose();
    if (app?.client && opts.closeClient !== false) await app.client.close().catch(() => undefined);
    throw err;
  }
}

/** Run until the user quits; the exit code (0, or 128+signal). */
export async function runAttach(opts: AttachOptions): Promise<number> {
  const app = await startAttach(opts);
  return (await app.done).code;
}
