// What every view of the store has: its current state (plain data: what the CLI formats and
// the TUI renders), a change signal, and the disposers of what it subscribed to.
import { Listeners, type Disposer } from '../client/client.js';

export abstract class View<S> {
  private readonly changes = new Listeners<[S]>();
  private readonly subscriptions: Disposer[] = [];

  protected constructor(private current: S) {}

  get state(): S {
    return this.current;
  }

  /** Called with the new state after each change. */
  onChange(listener: (state: S) => void): Disposer {
    return this.changes.add(listener);
  }

  /** Drop every subscription of this view (its change listeners too). Idempotent. */
  dispose(): void {
    for (const d of this.subscriptions.splice(0)) d();
    this.changes.clear();
  }

  protected publish(next: S): S {
    this.current = next;
    this.changes.emit(next);
    return next;
  }

  /** Replace the state without telling the listeners (a view that builds its state lazily and
   * tells them once per batch of changes). */
  protected replace(next: S): S {
    this.current = next;
    return next;
  }

  /** Keep a subscription until dispose(). */
  protected hold(disposer: Disposer): void {
    this.subscriptions.push(disposer);
  }
}

/** An array from the agent, tolerating an empty table encoded as {} (Lua cannot tell). */
export function list<T>(value: T[] | undefined | unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}
