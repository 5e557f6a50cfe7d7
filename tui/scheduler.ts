// One screen.render() per tick, however many updates arrive in it (gtop renders once per monitor
// per update; a busy store would repaint the terminal dozens of times a tick). Widgets and data
// sources call request(); the draw runs once on the next tick (setImmediate, or after delayMs).
// Tests read `renders` and call flush() to draw now.

export interface SchedulerOptions {
  /** Paints every surface and calls screen.render(). */
  draw: () => void;
  /** 0 (default): the next turn of the event loop; more: at most one draw per delayMs. */
  delayMs?: number;
}

export class RenderScheduler {
  /** Draws done so far. */
  renders = 0;
  /** request() calls so far (renders / requests shows the coalescing). */
  requests = 0;
  private pending: NodeJS.Immediate | NodeJS.Timeout | undefined;
  private disposed = false;

  constructor(private readonly opts: SchedulerOptions) {}

  get isPending(): boolean {
    return this.pending !== undefined;
  }

  /** Ask for a draw on the next tick; several requests in one tick make one draw. */
  request(): void {
    this.requests++;
    if (this.pending !== undefined || this.disposed) return;
    const delay = this.opts.delayMs ?? 0;
    this.pending = delay > 0 ? setTimeout(() => this.run(), delay) : setImmediate(() => this.run());
  }

  /** Draw now (a pending draw is folded into this one). */
  flush(): void {
    this.cancel();
    if (!this.disposed) this.run();
  }

  dispose(): void {
    this.cancel();
    this.disposed = true;
  }

  private cancel(): void {
    if (this.pending === undefined) return;
    clearTimeout(this.pending as NodeJS.Timeout);
    clearImmediate(this.pending as NodeJS.Immediate);
    this.pending = undefined;
  }

  private run(): void {
    this.pending = undefined;
    this.renders++;
    this.opts.draw();
  }
}
