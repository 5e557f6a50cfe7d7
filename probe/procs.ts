// nginx processes, read straight from /proc (no ps(1)): masters, their workers, who runs them.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

export type Role = 'master' | 'worker';

export interface NginxProc {
  pid: number;
  ppid: number;
  uid: number;
  gid: number;
  user: string;
  role: Role;
  /** A worker left over from a reload, finishing its requests. */
  shuttingDown: boolean;
  title: string;
  /** Start time (/proc/PID/stat field 22): tells this process from a later one with its pid. */
  start?: string;
}

export interface NginxMaster extends NginxProc {
  workers: NginxProc[];
}

const MASTER = 'nginx: master process';
const WORKER = 'nginx: worker process';

/** nginx rewrites argv to its title ("nginx: worker process"), padded with NULs or spaces. */
export function procTitle(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/[\0 ]+$/, '').replace(/\0/g, ' ');
  } catch {
    return undefined;
  }
}

/** `Name: value` pairs of /proc/<pid>/status, or undefined when the process is gone. */
export function procStatus(pid: number): Map<string, string> | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}

let passwd: Map<number, string> | undefined;

/** User name from /etc/passwd, or the uid as a string. */
export function userName(uid: number): string {
  if (!passwd) {
    passwd = new Map();
    try {
      for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
        const [name, , id] = line.split(':');
        if (name && id !== undefined && !passwd.has(Number(id))) passwd.set(Number(id), name);
      }
    } catch {
      // no /etc/passwd: numbers it is
    }
  }
  return passwd.get(uid) ?? String(uid);
}

export function roleOf(t: string): { role: Role; shuttingDown: boolean } | undefined {
  if (t.startsWith(MASTER)) return { role: 'master', shuttingDown: false };
  if (t.startsWith(WORKER)) return { role: 'worker', shuttingDown: t.includes('is shutting down') };
  return undefined;
}

/** The nginx process `pid`, or undefined when it is gone, a zombie or not nginx. */
export function readNginxProc(pid: number): NginxProc | undefined {
  const t = procTitle(pid);
  const r = t === undefined ? undefined : roleOf(t);
  if (!r || !t) return undefined;
  const st = procStatus(pid);
  if (!st || st.get('State')?.startsWith('Z')) return undefined;
  const uid = Number(st.get('Uid')?.split(/\s+/)[0] ?? NaN);
  const gid = Number(st.get('Gid')?.split(/\s+/)[0] ?? NaN);
  return { pid, ppid: Number(st.get('PPid')), uid, gid, user: userName(uid), title: t, start: startTime(pid), ...r };
}

/** The start time of `pid` in clock ticks since boot, or undefined when it is gone. */
export function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function allPids(): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
}

export interface WorkerFilter {
  /** Also list workers left over from a reload; default false. */
  shuttingDown?: boolean;
}

/** The children of `pid` from /proc/<pid>/task/<tid>/children (every thread's), or undefined
 * when the kernel does not list them (CONFIG_PROC_CHILDREN) or the process is gone. */
export function childrenOf(pid: number): number[] | undefined {
  try {
    const out = new Set<number>();
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1').split(' ')) if (c) out.add(Number(c));
    }
    return [...out].sort((a, b) => a - b);
  } catch {
    return undefined;
  }
}

/** The workers of `master`: its children (cheap: not every process on the host), else a scan
 * of /proc. */
/**
 * Workers read before, by pid. nginx titles a worker only after it has dropped to its user, and
 * the title changes again when it starts shutting down, so while a worker keeps its title and
 * start time its user, group and parent stay: a session polling 8 workers five times a second
 * reads two files a worker, not four.
 */
const seenWorkers = new Map<number, NginxProc>();

export function workersOf(master: number, f: WorkerFilter = {}, pids = childrenOf(master) ?? allPids()): NginxProc[] {
  const out: NginxProc[] = [];
  const listed = new Set<number>();
  for (const pid of pids) {
    const t = procTitle(pid);
    if (!t?.startsWith(WORKER)) continue;
    listed.add(pid);
    let p = seenWorkers.get(pid);
    if (!p || p.title !== t || p.start !== startTime(pid)) {
      p = readNginxProc(pid);
      // only this master's workers are kept (a scan of every pid finds any process that
      // calls itself a worker: those are read each time, never held)
      if (p && p.ppid === master) seenWorkers.set(pid, p);
      else seenWorkers.delete(pid);
    }
    if (p && p.ppid === master && (f.shuttingDown || !p.shuttingDown)) out.push(p);
  }
  for (const [pid, p] of seenWorkers) if (p.ppid === master && !listed.has(pid)) seenWorkers.delete(pid);
  return out;
}

/** Every nginx master on this host with its workers (shutting-down ones included). */
export function listMasters(): NginxMaster[] {
  const procs = allPids().flatMap((pid) => {
    const t = procTitle(pid);
    if (!t || !roleOf(t)) return [];
    const p = readNginxProc(pid);
    return p ? [p] : [];
  });
  return procs
    .filter((p) => p.role === 'master')
    .map((m) => ({ ...m, workers: procs.filter((w) => w.role === 'worker' && w.ppid === m.pid) }));
}

/** Where a master runs from: its prefix (-p) and configuration file (-c), as nginx resolves
 * them (a relative -c against the prefix given, else against the built-in configuration
 * directory); `built-in` ones from `nginx -V` of the master's binary when it gave none. */
export interface MasterPlace { prefix: string | null; config: string | null }

/** -p, -c from a master's title (`nginx: master process /usr/sbin/nginx -p /srv/x/ -c conf/x.conf`). */
export function masterArgs(title: string): { prefix?: string; config?: string } {
  const args = title.replace(/^nginx: master process\s*/, '').split(/\s+/).slice(1);
  const out: { prefix?: string; config?: string } = {};
  for (let i = 0; i < args.length; i++) {
    const m = /^-([pc])(.*)$/.exec(args[i]!);
    if (!m) continue;
    const value = m[2] || args[++i];
    if (value === undefined) continue;
    if (m[1] === 'p') out.prefix = value;
    else out.config = value;
  }
  return out;
}

const builtIns = new Map<string, { prefix?: string; config?: string }>();

/** --prefix and --conf-path that the nginx binary `exe` was built with (`nginx -V`), once per
 * binary; {} when it cannot be asked within 300 ms. */
export function builtInPlaces(exe: string, run: (exe: string) => string | undefined = nginxV): { prefix?: string; config?: string } {
  let got = builtIns.get(exe);
  if (!got) {
    const text = run(exe) ?? '';
    got = {};
    const prefix = /--prefix=(\S+)/.exec(text)?.[1];
    const config = /--conf-path=(\S+)/.exec(text)?.[1];
    if (prefix) got.prefix = prefix;
    if (config) got.config = config;
    builtIns.set(exe, got);
  }
  return got;
}

function nginxV(exe: string): string | undefined {
  const r = spawnSync(exe, ['-V'], { encoding: 'utf8', timeout: 300, stdio: ['ignore', 'pipe', 'pipe'] });
  return r.error ? undefined : `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

const dirOf = (p: string): string => p.slice(0, p.lastIndexOf('/') + 1);
const joinPath = (dir: string, p: string): string => (p.startsWith('/') ? p : `${dir.endsWith('/') ? dir : `${dir}/`}${p}`);

/** The prefix and configuration file of a master, from its title, else its binary's defaults. */
export function masterPlace(pid: number, title: string, builtIn: (exe: string) => { prefix?: string; config?: string } = builtInPlaces): MasterPlace {
  const args = masterArgs(title);
  let defaults: { prefix?: string; config?: string } | undefined;
  const fallback = () => {
    if (!defaults) {
      let exe: string | undefined;
      try {
        exe = readlinkSync(`/proc/${pid}/exe`);
      } catch {
        exe = undefined;
      }
      defaults = exe ? builtIn(exe.replace(/ \(deleted\)$/, '')) : {};
    }
    return defaults;
  };
  const prefix = args.prefix ?? fallback().prefix ?? null;
  let config: string | null = args.config ?? null;
  if (config === null) config = fallback().config ?? (prefix ? joinPath(prefix, 'conf/nginx.conf') : null);
  else if (!config.startsWith('/')) {
    // nginx: relative to -p when given, else to the directory of the built-in configuration
    const base = args.prefix ?? (fallback().config ? dirOf(fallback().config!) : prefix);
    config = base ? joinPath(base, config) : config;
  }
  return { prefix, config };
}
