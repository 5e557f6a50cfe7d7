// vitest helpers for tests that run against a real nginx (scripts/nginx-instance.ts).
import { request } from 'node:http';
import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { startNginx, type NginxInstance, type NginxOptions } from '../../scripts/nginx-instance.js';

/** Returns the running instance; call it inside tests and hooks (it is set in beforeAll). */
export type NginxHandle = () => NginxInstance;

/**
 * One nginx per describe block / file: started in beforeAll, stopped in afterAll (which
 * vitest runs also after failures and timeouts). A failed test prints the error.log tail.
 */
export function useNginx(opts: NginxOptions): NginxHandle {
  let instance: NginxInstance | undefined;
  beforeAll(async () => {
    instance = await startNginx(opts);
  });
  afterAll(async () => {
    await instance?.stop();
  });
  beforeEach(({ task, onTestFailed }) => {
    onTestFailed(() => {
      const tail = instance?.errorLogTail(40) ?? '(nginx not started)';
      console.error(`--- nginx error.log tail after failed test "${task.name}" ---\n${tail}`);
    });
  });
  return () => {
    if (!instance) throw new Error('nginx is not running (use it inside tests, after beforeAll)');
    return instance;
  };
}

export interface WaitOptions {
  timeout?: number;
  interval?: number;
  /** What we are waiting for, for the error message: "both workers to answer". */
  what: string;
}

/**
 * Poll `fn` until it returns a truthy value (which is returned). On timeout the error shows
 * the last value seen or the last error thrown, instead of a bare "timed out".
 */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: WaitOptions): Promise<NonNullable<T>> {
  const { timeout = 10_000, interval = 50, what } = opts;
  const deadline = Date.now() + timeout;
  let last: { value?: T; error?: unknown } = {};
  for (;;) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
      last = { value };
    } catch (error) {
      last = { error };
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, interval));
  }
  const seen = 'error' in last ? `last error: ${inspect(last.error)}` : `last value: ${inspect(last.value, { depth: 4 })}`;
  throw new Error(`timed out after ${timeout} ms waiting for ${what}; ${seen}`);
}

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  timeout?: number;
}

export interface HttpResponse {
  status: number;
  body: Buffer;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * One request on a fresh connection (no keep-alive agent): each request may land on any
 * worker, and no idle pooled connection holds an old worker alive across a reload.
 */
export function http(url: string, opts: HttpOptions = {}): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
      res.on('error', reject);
    });
    req.setTimeout(opts.timeout ?? 10_000, () => req.destroy(new Error(`${url}: no response within timeout`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}
