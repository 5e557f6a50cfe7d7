// The tiny transport the agent link runs over (after vscode-js-debug's src/cdp/transport.ts):
// send a message, get messages, learn about the close, dispose. A unix socket carries frames
// in production; an in-memory pair drives unit tests.
import type { Socket } from 'node:net';
import { debuglog } from 'node:util';
import { encodeFrame, FrameDecoder } from './frames.js';

const trace = debuglog('nffi');

export interface Transport {
  send(message: unknown): void;
  /** One listener; a later call replaces it (the attach handshake hands over to the link). */
  onMessage(listener: (message: unknown) => void): void;
  onClose(listener: (reason: string) => void): void;
  dispose(): void;
}

abstract class BaseTransport implements Transport {
  private messageListener: (message: unknown) => void = () => {};
  private closeListeners: ((reason: string) => void)[] = [];
  protected closed = false;

  constructor(protected readonly label: string) {}

  abstract send(message: unknown): void;
  abstract dispose(): void;

  onMessage(listener: (message: unknown) => void): void {
    this.messageListener = listener;
  }

  onClose(listener: (reason: string) => void): void {
    this.closeListeners.push(listener);
  }

  protected deliver(message: unknown): void {
    trace('%s <- %j', this.label, message);
    this.messageListener(message);
  }

  protected finish(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    trace('%s closed: %s', this.label, reason);
    for (const l of this.closeListeners.splice(0)) l(reason);
  }
}

/** Frames over a connected stream socket. */
export class SocketTransport extends BaseTransport {
  private readonly decoder = new FrameDecoder();

  constructor(private readonly socket: Socket, label: string) {
    super(label);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.finish(err.message));
    socket.on('close', () => this.finish('connection closed'));
  }

  private corked = false;

  send(message: unknown): void {
    if (this.closed) return;
    trace('%s -> %j', this.label, message);
    // the frames of one tick (a sample asks each worker for its queue, tasks and coroutines)
    // go out in one write: one wake-up of the worker, not three
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(encodeFrame(message));
  }

  dispose(): void {
    this.socket.destroy();
    this.finish('disposed');
  }

  private onData(chunk: Buffer): void {
    let messages: unknown[];
    try {
      messages = this.decoder.push(chunk);
    } catch (err) {
      this.socket.destroy();
      this.finish((err as Error).message);
      return;
    }
    for (const m of messages) {
      if (this.closed) return;
      this.deliver(m);
    }
  }
}

/** Two transports wired to each other in memory; delivery is async like a socket's. */
export function transportPair(): [Transport, Transport] {
  const a = new MemoryTransport('mem-a');
  const b = new MemoryTransport('mem-b');
  a.peer = b;
  b.peer = a;
  return [a, b];
}

class MemoryTransport extends BaseTransport {
  peer: MemoryTransport | undefined;

  send(message: unknown): void {
    if (this.closed) return;
    trace('%s -> %j', this.label, message);
    const copy = JSON.parse(JSON.stringify(message)) as unknown;
    setImmediate(() => {
      if (this.peer && !this.peer.closed) this.peer.deliver(copy);
    });
  }

  dispose(): void {
    this.finish('disposed');
    const peer = this.peer;
    setImmediate(() => peer?.finish('connection closed'));
  }
}
