// Starts a real nginx (Debian's, with the Lua module) in a throwaway prefix on a free
// 127.0.0.1 port, for tests, the demo and benchmarks. Every instance is tracked so that
// nothing outlives this process, even on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nginxConfig } from '../probe/nginx-config.js';
import { repoRoot } from '../probe/repo-root.js';
import { NGINX_BIN, renderConf } from './nginx/conf.js';
import { canConnect, childPids, freePort, isAlive, pollUntil, workerPidsOf } from './nginx/procs.js';
import { readableBy, readableDir, runtimeRoot, workerUser } from './nginx/staging.js';

export interface NginxOptions {
  /** worker_processes; default 2. */
  workers?: number;
  /** Lines inside http {} (server blocks, ...). `$PORT` is replaced by the port. */
  http: string;
  /** Lines for the main context. `$PORT` is replaced too. */
  main?: string;
  /** Default: a free port picked by the kernel. */
  port?: number;
  /** nginx `user` directive. Default none: started as root, workers run as nobody. */
  user?: string;
  /** Repo root for nginxConfig(); default: this checkout. */
  root?: string;
  /** Extra Lua module dirs (`<dir>/?.lua`, `<dir>/?/init.lua`), after the product's own. */
  luaPath?: string[];
  /** Extra environment, passed to nginx and declared with `env NAME;` so workers see it. */
  env?: Record<string, string>;
}

export interface NginxInstance {
  readonly port: number;
  readonly prefix: string;
  readonly masterPid: number;
  /** The root nginxConfig() was given: the repo root, or a staged copy (see nginx/staging.ts). */
  readonly root: string;
  url(path: string): string;
  /** Serving workers (not those still shutting down after a reload). */
  workerPids(): number[];
  reload(): Promise<void>;
  stop(): Promise<void>;
  errorLog(): string;
  errorLogTail(n?: number): string;
}

const START_TIMEOUT_MS = 10_000;
const RELOAD_TIMEOUT_MS = 10_000;
const QUIT_TIMEOUT_MS = 5_000;
const OUTPUT_LIMIT = 64 * 1024;

const live = new Set<Instance>();

export async function startNginx(opts: NginxOptions): Promise<NginxInstance> {
  const workers = opts.workers ?? 2;
  const port = opts.port ?? (await freePort());
  const user = workerUser(opts.user);
  const prefix = makePrefix(user);
  const root = runtimeRoot(opts.root ?? repoRoot(), prefix, user);
  const env = opts.env ?? {};
  const lua = nginxConfig(root);
  (opts.luaPath ?? []).forEach((dir, i) => {
    const d = readableDir(dir, prefix, user, `lua-path-${i}`);
    lua.lua_package_path += `${d}/?.lua;${d}/?/init.lua;`;
  });
  const conf = renderConf({
    workers,
    port,
    http: opts.http,
    main: opts.main,
    user: opts.user,
    envNames: Object.keys(env),
    lua,
  });
  writeFileSync(join(prefix, 'conf', 'nginx.conf'), conf);

  const inst = new Instance(prefix, port, root, workers, env);
  try {
    await inst.waitReady(opts.http.includes('$PORT'));
  } catch (err) {
    await inst.stop();
    throw err;
  }
  return inst;
}

function makePrefix(user: string | undefined): string {
  const prefix = mkdtempSync(join(tmpdir(), 'nffi-nginx-'));
  // mkdtemp makes it 0700; workers running as another user must be able to enter it.
  chmodSync(prefix, 0o755);
  for (const dir of ['conf', 'logs', 'tmp']) mkdirSync(join(prefix, dir));
  if (user !== undefined && !readableBy(user, prefix)) {
    rmSync(prefix, { recursive: true, force: true });
    throw new Error(`nginx workers (user ${user}) cannot enter ${prefix}; set TMPDIR to a world-readable dir`);
  }
  return prefix;
}

class Instance implements NginxInstance {
  readonly masterPid: number;
  private readonly child: ChildProcess;
  private output = '';
  private exitStatus: string | undefined;
  private savedLog: string | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private stopping: Promise<void> | undefined;

  constructor(
    readonly prefix: string,
    readonly port: number,
    readonly root: string,
    private readonly workers: number,
    env: Record<string, string>,
  ) {
    this.child = spawn(
      NGINX_BIN,
      ['-p', `${prefix}/`, '-e', 'logs/error.log', '-c', 'conf/nginx.conf', '-g', 'daemon off; master_process on;'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
    );
    if (this.child.pid === undefined) throw new Error(`cannot spawn ${NGINX_BIN}`);
    this.masterPid = this.child.pid;
    this.child.stdout?.on('data', (b: Buffer) => this.capture(b));
    this.child.stderr?.on('data', (b: Buffer) => this.capture(b));
    this.child.on('error', (e) => this.capture(Buffer.from(`spawn error: ${e.message}\n`)));
    this.child.on('exit', (code, sig) => (this.exitStatus = sig ? `signal ${sig}` : `code ${code}`));
    live.add(this);
    installExitHooks();
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path.startsWith('/') ? '' : '/'}${path}`;
  }

  workerPids(): number[] {
    return this.exitStatus === undefined ? workerPidsOf(this.masterPid) : [];
  }

  async waitReady(checkPort: boolean): Promise<void> {
    const ready = await pollUntil(async () => {
      if (this.exitStatus !== undefined) return true;
      if (this.workerPids().length !== this.workers) return false;
      return !checkPort || (await canConnect(this.port));
    }, START_TIMEOUT_MS);
    if (this.exitStatus !== undefined) throw this.failure(`nginx exited during startup (${this.exitStatus})`);
    if (!ready) {
      const w = this.workerPids().length;
      throw this.failure(`nginx not ready after ${START_TIMEOUT_MS} ms (${w}/${this.workers} workers, port ${this.port})`);
    }
  }

  /** Like `nginx -s reload`: resolves once a complete set of new workers is serving. */
  reload(): Promise<void> {
    return this.serial(async () => {
      const before = new Set(this.workerPids());
      process.kill(this.masterPid, 'SIGHUP');
      const renewed = await pollUntil(() => {
        const now = this.workerPids();
        return now.length === this.workers && now.every((p) => !before.has(p));
      }, RELOAD_TIMEOUT_MS);
      if (!renewed) throw this.failure(`nginx reload did not replace the workers within ${RELOAD_TIMEOUT_MS} ms`);
    });
  }

  /** Graceful quit, then SIGKILL for whatever is left. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.serial(() => this.doStop());
    return this.stopping;
  }

  errorLog(): string {
    if (this.savedLog !== undefined) return this.savedLog;
    try {
      return readFileSync(join(this.prefix, 'logs', 'error.log'), 'utf8');
    } catch {
      return '';
    }
  }

  errorLogTail(n = 40): string {
    return this.errorLog().trimEnd().split('\n').slice(-n).join('\n');
  }

  /** Synchronous last resort for process exit: no waiting, no graceful quit. */
  killNow(): void {
    const pids = this.exitStatus === undefined ? [this.masterPid, ...childPids(this.masterPid)] : [];
    for (const pid of pids) signal(pid, 'SIGKILL');
    this.cleanup();
  }

  private async doStop(): Promise<void> {
    if (this.exitStatus === undefined) {
      // Children include workers still shutting down after a reload.
      const children = childPids(this.masterPid);
      signal(this.masterPid, 'SIGQUIT');
      const quit = await pollUntil(
        () => this.exitStatus !== undefined && children.every((p) => !isAlive(p)),
        QUIT_TIMEOUT_MS,
      );
      if (!quit) {
        for (const pid of [this.masterPid, ...children, ...childPids(this.masterPid)]) signal(pid, 'SIGKILL');
        await pollUntil(() => this.exitStatus !== undefined, 2_000);
      }
    }
    this.cleanup();
  }

  private cleanup(): void {
    if (!live.delete(this)) return;
    this.savedLog = this.errorLog();
    if (!process.env.NFFI_KEEP_PREFIX) rmSync(this.prefix, { recursive: true, force: true });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private capture(b: Buffer): void {
    this.output = (this.output + b.toString('utf8')).slice(-OUTPUT_LIMIT);
  }

  private failure(what: string): Error {
    const parts = [what, `prefix: ${this.prefix}`];
    if (this.output.trim()) parts.push('--- nginx output ---', this.output.trimEnd());
    parts.push('--- error.log (tail) ---', this.errorLogTail() || '(empty)');
    return new Error(parts.join('\n'));
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

let hooksInstalled = false;

/** Kill every live instance when this process ends, however it ends (short of SIGKILL). */
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      killAll();
      // If nobody else handles the signal, die of it as we would have without this hook.
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}

function killAll(): void {
  for (const inst of [...live]) inst.killNow();
}
