// chrome-remote-interface ships no types: the part of it client/cri.ts uses, its Chrome class
// (lib/chrome.js, what the package's CDP() constructs; 0.34.0, pinned in package.json).
// Only this module is declared here, not the package's main one, so the tests' own
// declaration of that (test/harness/chrome-remote-interface.d.ts) never clashes with it.
declare module 'chrome-remote-interface/lib/chrome.js' {
  import type { EventEmitter } from 'node:events';

  interface ChromeOptions {
    /** A ws://, wss:// or (as an object) any URL `ws` takes, ws+unix: included. */
    target: string | { webSocketDebuggerUrl: string };
    /** The descriptor: one method per command, one event per event. */
    protocol: object;
    local?: boolean;
  }

  /** The `ws` (7.x) socket under the client; set while it connects. */
  interface ChromeSocket {
    readonly readyState: number;
    on(event: 'close', listener: (code: number, reason: string | Buffer) => void): unknown;
    terminate(): void;
  }

  class Chrome extends EventEmitter {
    /** Connects at once; `notifier` emits 'connect' (with the client) or 'error'. */
    constructor(options: ChromeOptions, notifier: EventEmitter);
    webSocketUrl: string | undefined;
    _ws: ChromeSocket | undefined;
    send(method: string, params?: unknown): Promise<unknown>;
    close(): Promise<void>;
  }

  export = Chrome;
}
