// The view store over one client: what the CLI's commands read one view at a time and the TUI
// renders together. Plain data in (the client's answers and events), plain data out (each
// view's state); no view touches a screen or the probe's plumbing.
import type { ProbeClient } from '../client/client.js';
import { CoroutinesView } from './coroutines.js';
import { HitsView, type HitsOptions } from './hits.js';
import { QueueView, type QueueOptions } from './queue.js';
import { StackView } from './stack.js';
import { TasksView } from './tasks.js';
import { WorkersView } from './workers.js';

export interface StoreOptions {
  queue?: QueueOptions;
  hits?: HitsOptions;
}

export class Store {
  readonly workers: WorkersView;
  readonly coroutines: CoroutinesView;
  readonly stack: StackView;
  readonly queue: QueueView;
  readonly tasks: TasksView;
  readonly hits: HitsView;

  constructor(readonly client: ProbeClient, opts: StoreOptions = {}) {
    this.workers = new WorkersView(client);
    this.coroutines = new CoroutinesView(client);
    this.stack = new StackView(client);
    this.queue = new QueueView(client, opts.queue);
    this.tasks = new TasksView(client);
    this.hits = new HitsView(client, opts.hits);
  }

  /** Drop every view's subscriptions (the client stays open: its owner closes it). */
  dispose(): void {
    for (const v of [this.workers, this.coroutines, this.stack, this.queue, this.tasks, this.hits]) v.dispose();
  }
}
