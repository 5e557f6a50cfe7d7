/// <reference path="./chrome-remote-interface.d.ts" />
// One CDP connection through chrome-remote-interface, with our descriptor (probe/protocol.json)
// as its `protocol`: CRI hangs a method on the client for each command and routes each event.
// What it does not do, this adds:
//   - a timeout on the connect and on every call; the error of a call is made when it is sent,
//     so its stack points at the caller;
//   - every pending call rejected when the connection closes (CRI completes only the calls
//     whose send had finished), and no call left waiting on a connection that is gone;
//   - the close frame's reason (serve says why it exits: "nginx master 123 exited"), which
//     CRI's 'disconnect' event drops;
//   - a connect that can be given up: a serve that accepts and never answers the upgrade
//     (stopped with SIGSTOP) must not keep the CLI alive.
// The last two need the ws socket under the client (`_ws`), so the Chrome class is built here
// (lib/chrome.js, which the package's CDP() only wraps) instead of through CDP(). The package
// is pinned (0.34.0); test/client-remote.test.ts checks both.
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { debuglog } from 'node:util';
import Chrome from 'chrome-remote-interface/lib/chrome.js';
import { ProbeError } from '../probe/errors.js';
import { repoRoot } from '../probe/repo-root.js';
import { Listeners, type Disposer } from './client.js';

const trace = debuglog('nffi');
const WS_OPEN = 1;
const WS_CLOSED = 3;
/** How long close() waits for the close handshake before it drops the socket. */
const CLOSE_WAIT_MS = 1_000;

let descriptor: object | undefined;

/** probe/protocol.json, read once. */
export function protocol(): object {
  descriptor ??= JSON.parse(readFileSync(join(repoRoot(), 'probe', 'protocol.json'), 'utf8')) as object;
  return descriptor;
}

export interface CdpOptions {
  /** Names the other end in messages: `serve probe 1234`. */
  label: string;
  /** For the connect and for each call. */
  timeoutMs: number;
}

/** A call that failed: `answer` (the other end answered with an error), `timeout`, `closed`
 * (the connection closed first) or `socket` (the send itself failed). */
export class CdpError extends ProbeError {
  kind: 'answer' | 'timeout' | 'closed' | 'socket' = 'socket';

  constructor(method: string) {
    super(method, 'CDP');
    this.name = 'CdpError';
  }
}

interface Pending {
  error: CdpError;
  reject: (err: Error) => void;
}

export class CdpConnection {
  private readonly pending = new Set<Pending>();
  private readonly closeListeners = new Listeners<[string]>();
  private closedWith: string | undefined;

  private constructor(private readonly chrome: Chrome, private readonly opts: CdpOptions) {
    chrome._ws?.on('close', (code, reason) => this.closed(String(reason), code));
  }

  /** Connect to `url` (ws://, or ws+unix:PATH:/resource). Rejects with the socket's own error
   * (the caller says what it means), or a ProbeError after the timeout. */
  static open(url: string, opts: CdpOptions): Promise<CdpConnection> {
    return new Promise((resolve, reject) => {
      const notifier = new EventEmitter();
      const chrome = new Chrome({ target: { webSocketDebuggerUrl: url }, protocol: protocol(), local: true }, notifier);
      const timer = setTimeout(() => {
        notifier.removeAllListeners();
        // connected meanwhile after all: let go; else drop the half-open socket (whose error,
        // "closed before the connection was established", is ours and said already)
        notifier.once('connect', () => void chrome.close());
        notifier.on('error', (err: Error) => trace('cdp %s: after the timeout: %s', opts.label, err.message));
        chrome._ws?.terminate();
        reject(new ProbeError(`${opts.label} did not answer within ${opts.timeoutMs} ms`, 'ETIMEDOUT'));
      }, opts.timeoutMs);
      notifier.once('connect', () => {
        clearTimeout(timer);
        trace('cdp %s: connected to %s', opts.label, url.replace(/token=[^&]*/, 'token=…'));
        resolve(new CdpConnection(chrome, opts));
      });
      notifier.once('error', (err: Error) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** One command; rejects with a CdpError: the answer's error, the timeout, or the close. */
  send(method: string, params?: unknown): Promise<unknown> {
    const error = new CdpError(method);
    if (this.closedWith !== undefined) return Promise.reject(this.fail(error, 'closed', `${method}: ${this.opts.label} closed the connection`));
    return new Promise((resolve, reject) => {
      const p: Pending = { error, reject };
      const timer = setTimeout(() => {
        settle(() => reject(this.fail(error, 'timeout', `${method}: ${this.opts.label} did not answer within ${this.opts.timeoutMs} ms`)));
      }, this.opts.timeoutMs);
      const settle = (fn: () => void): void => {
        if (!this.pending.delete(p)) return;
        clearTimeout(timer);
        fn();
      };
      p.reject = (err) => settle(() => reject(err));
      this.pending.add(p);
      trace('cdp %s <- %s %j', this.opts.label, method, params ?? {});
      this.chrome.send(method, params ?? {}).then(
        (result) => {
          trace('cdp %s -> %s answered', this.opts.label, method);
          settle(() => resolve(result));
        },
        (err: Error & { response?: { message?: string } }) => {
          // CRI's ProtocolError carries the error answer; anything else is the socket's own:
          // its close (said as the close listener says it), or an error writing to it
          const answer = err.response?.message;
          const e = answer !== undefined ? this.fail(error, 'answer', answer)
            : this.closedWith !== undefined || this.chrome._ws?.readyState !== WS_OPEN
              ? this.fail(error, 'closed', `${method}: ${this.opts.label} closed the connection`)
              : this.fail(error, 'socket', `${method}: ${err.message}`);
          settle(() => reject(e));
        },
      );
    });
  }

  /** Every event on this connection (method, params). */
  onEvent(listener: (method: string, params: unknown) => void): Disposer {
    const on = (m: { method: string; params?: unknown }): void => {
      trace('cdp %s -> %s', this.opts.label, m.method);
      listener(m.method, m.params);
    };
    this.chrome.on('event', on);
    return () => void this.chrome.removeListener('event', on);
  }

  /** Once, with the close frame's reason ('' when there was none), however it closed. */
  onClose(listener: (reason: string) => void): Disposer {
    if (this.closedWith !== undefined) {
      listener(this.closedWith);
      return () => undefined;
    }
    return this.closeListeners.add(listener);
  }

  /** The number of event listeners CRI holds for us (tests check the disposers). */
  get eventListeners(): number {
    return this.chrome.listenerCount('event');
  }

  /** Close; pending calls are rejected at once. Waits for the close handshake a little only. */
  async close(): Promise<void> {
    if (this.closedWith !== undefined) return;
    const ws = this.chrome._ws;
    const done = this.chrome.close();
    this.closed('closed by this client');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (ws && ws.readyState !== WS_CLOSED) ws.terminate();
        resolve();
      }, CLOSE_WAIT_MS);
    });
    await Promise.race([done, late]);
    clearTimeout(timer);
  }

  private fail(error: CdpError, kind: CdpError['kind'], message: string): CdpError {
    error.kind = kind;
    error.message = message;
    return error;
  }

  private closed(reason: string, code?: number): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = reason;
    trace('cdp %s: closed (%s) %s', this.opts.label, code ?? '-', reason);
    for (const p of [...this.pending]) p.reject(this.fail(p.error, 'closed', `${p.error.message}: ${this.opts.label} closed the connection`));
    this.closeListeners.emit(reason);
    this.closeListeners.clear();
  }
}
