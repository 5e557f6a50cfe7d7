// Who holds a worker: an agent serves one session at a time, so a worker whose agent is busy
// with another probe never answers the attach file and looks, from here, like a worker with
// no agent. Before saying "no agent", the probe asks the kernel (`ss -xpn`, sock_diag) which
// unix socket the worker's agent is connected to: a probe's attach socket (`…/probe-<pid>-<hex>
// .sock`, or `/proc/self/fd/<n>/sock` when bound through a directory descriptor), and which
// process holds its other end. The serve registry then says whether that process is a
// `serve`; its command line says what else it is.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { debuglog } from 'node:util';
import { readEntries, type ServeEntry } from './registry.js';
import { defaultRunDir } from './run-dir.js';

const trace = debuglog('nffi');

export interface Holder {
  /** The probe process holding the session, when this user may see it. */
  pid?: number;
  /** Its command line, shortened (`nffi-inspect breakpoint 4242 app.lua:3`). */
  command?: string;
  /** The serve probe's registry entry, when the holder is one. */
  serve?: ServeEntry;
}

interface UnixSocket { inode: number; path: string; peer: number; pids: number[] }

/** A probe's attach socket, as the kernel names it (the bound path). */
const PROBE_SOCKET = /(?:\/probe-(\d+)-[0-9a-f]+(?:\.sock|\/sock)|^\/proc\/self\/fd\/\d+\/sock)$/;

/** The established unix stream sockets `ss -xpn` lists. undefined when ss cannot run. */
function unixSockets(): UnixSocket[] | undefined {
  let out: string;
  try {
    out = execFileSync('ss', ['-xpnH', 'state', 'established'], { encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (err) {
    trace('ss: %s', (err as Error).message);
    return undefined;
  }
  const list: UnixSocket[] = [];
  for (const line of out.split('\n')) {
    // u_str  0  0  <local path or *> <inode>  * <peer inode>  users:(("node",pid=1,fd=2),...)
    const m = /^u_str\s+\d+\s+\d+\s+(\S+)\s+(\d+)\s+\S+\s+(\d+)(?:\s+users:\((.*)\))?/.exec(line.trim());
    if (!m) continue;
    const pids = [...(m[4] ?? '').matchAll(/pid=(\d+)/g)].map((p) => Number(p[1]));
    list.push({ path: m[1]!, inode: Number(m[2]), peer: Number(m[3]), pids });
  }
  return list;
}

/** `nffi-inspect serve 4242`, or the program's name and its arguments, at most 100 chars. */
export function commandOf(pid: number): string | undefined {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
  if (argv.length === 0) return undefined;
  const cli = argv.findIndex((a) => /(^|\/)nffi-inspect(\.js)?$/.test(a));
  const words = cli >= 0 ? ['nffi-inspect', ...argv.slice(cli + 1)] : [basename(argv[0]!), ...argv.slice(1)];
  const text = words.join(' ');
  return text.length > 100 ? `${text.slice(0, 99)}…` : text;
}

/**
 * The probe sessions the agent of worker `pid` is connected to (this process may hold one
 * itself). [] when it is connected to none; undefined when that cannot be told (no `ss`).
 */
export function holdersOf(pid: number, runDirs: string[] = []): Holder[] | undefined {
  const socks = unixSockets();
  if (!socks) return undefined;
  const byInode = new Map(socks.map((s) => [s.inode, s]));
  const serves = readEntries([defaultRunDir(process.geteuid?.() ?? 0), ...runDirs]);
  const holders: Holder[] = [];
  for (const s of socks.filter((x) => x.pids.includes(pid))) {
    const peer = byInode.get(s.peer);
    const m = peer && PROBE_SOCKET.exec(peer.path);
    if (!peer || !m) continue;
    const named = m[1] ? Number(m[1]) : undefined;
    const holder = peer.pids.find((p) => p !== pid) ?? named;
    const h: Holder = {};
    if (holder !== undefined) {
      h.pid = holder;
      const command = commandOf(holder);
      if (command) h.command = command;
      const serve = serves.find((e) => e.probe_pid === holder);
      if (serve) h.serve = serve;
    }
    holders.push(h);
  }
  return holders;
}

function endpoint(e: ServeEntry): string {
  const x = e as ServeEntry & { socket?: string; host?: string; port?: number };
  if (x.port !== undefined) return `port ${x.port}`;
  return x.socket ? `socket ${x.socket}` : 'endpoint unknown';
}

/** The one line a user reads instead of "no agent". */
export function heldMessage(pid: number, h: Holder): string {
  if (h.serve) {
    return `worker ${pid} is held by another session: nffi-inspect serve (probe pid ${h.pid}, opened on ${h.serve.pid}, ${endpoint(h.serve)}); ` +
      `its agent serves one session at a time: use that serve probe, or let go with \`nffi-inspect detach ${pid}\``;
  }
  const who = h.pid === undefined
    ? 'a probe whose process this user cannot see'
    : `probe pid ${h.pid}${h.command ? ` (${h.command})` : ''}`;
  return `worker ${pid} is held by another session: ${who}; its agent serves one session at a time: end that session and try again`;
}

/** Why worker `pid` was not reached when its agent did not answer: held by another session,
 * or (as far as can be told) no agent. */
export function whyNotReached(pid: number, runDirs: string[] = []): string {
  const h = holdersOf(pid, runDirs);
  if (h?.length) return heldMessage(pid, h[0]!);
  return `worker ${pid} could not be attached (no agent, or its agent did not answer; \`nffi-inspect config\` prints the lines that load it)`;
}
