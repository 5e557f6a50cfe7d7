// The workers table and the breakpoint mode of a worker, as people and scripts see them.
//
//   pid   id  user    nginx   ngx_lua  luajit       agent  jit  bp mode
//   4243   0  nobody  1.22.1  0.10.23  2.1.0-beta3  0.1.0  on   watching
//   4244   1  nobody  1.22.1  0.10.23  2.1.0-beta3  0.1.0  on   call hook
//   worker 4244 bp mode: call hook: traps not delivered on this machine
//   jit flags: SSE3 SSE4.1 BMI2 fold cse dce fwd dse narrow loop abc sink fuse
//
// The table fits 80 columns; what does not fit a column (why a worker is not watching, the JIT
// flags, why a worker is not attached) goes whole on its own line under it, as gdb prints its
// warnings: cut, the errno text at the end of a reason would be lost. --json has it all too.
import { userMessage } from '../errors.js';
import type { ModeView, WorkerInfo } from '../../store/workers.js';
import { termText } from './escape.js';
import { formatTable, type Column, type Style, type TableOptions } from './table.js';

/** `watching`, `call hook: traps not delivered on this machine`, `unknown: …`. */
export function modeText(m: ModeView): string {
  return m.reason !== undefined ? `${m.mode}: ${m.reason}` : m.mode;
}

/** `LuaJIT 2.1.0-beta3` → `2.1.0-beta3` (the column says luajit). */
function luajitVersion(v: string | undefined): string {
  return v ? v.replace(/^LuaJIT\s+/, '') : '-';
}

const attached = (w: WorkerInfo): boolean => w.versions !== null && w.error === undefined;

function row(w: WorkerInfo): string[] {
  return [
    String(w.pid), w.worker_id === null ? '-' : String(w.worker_id), w.user ?? '-',
    w.versions?.nginx ?? '-', w.versions?.ngx_lua ?? '-', luajitVersion(w.versions?.luajit), w.versions?.agent ?? '-',
    w.jit ? (w.jit.enabled ? 'on' : 'off') : '-',
    attached(w) ? w.breakpoint_mode.mode : '-',
  ];
}

/** One line per worker that needs words: why it is not attached, or why it is not watching. */
function notes(w: WorkerInfo): string[] {
  if (w.error) return [termText(userMessage(`worker ${w.pid}: ${w.error}`))];
  if (!attached(w) || w.breakpoint_mode.mode === 'watching') return [];
  return [termText(userMessage(`worker ${w.pid} bp mode: ${modeText(w.breakpoint_mode)}`))];
}

/** The JIT flags once when every worker has the same, else per worker. */
function jitFlags(ws: WorkerInfo[]): string[] {
  const withFlags = ws.filter((w) => w.jit && w.jit.flags.length > 0);
  const texts = new Set(withFlags.map((w) => w.jit!.flags.join(' ')));
  if (texts.size === 0) return [];
  if (texts.size === 1) return [termText(`jit flags: ${[...texts][0]}`)];
  return withFlags.map((w) => termText(`worker ${w.pid} jit flags: ${w.jit!.flags.join(' ')}`));
}

const modeStyle = (m: string): Style | undefined => (m === 'watching' ? 'green' : m === '-' ? undefined : m === 'unknown' ? 'red' : 'yellow');

const HEADER: Column[] = [
  { title: 'pid', align: 'right' },
  { title: 'id', align: 'right', priority: 1 },
  { title: 'user', priority: 2, min: 8 },
  { title: 'nginx', priority: 3 },
  { title: 'ngx_lua', priority: 3 },
  { title: 'luajit', priority: 4 },
  { title: 'agent', priority: 4 },
  { title: 'jit', style: (c) => (c === 'off' ? 'yellow' : undefined) },
  { title: 'bp mode', style: modeStyle },
];

export function formatWorkers(ws: WorkerInfo[], opts: TableOptions = {}): string {
  return [formatTable(HEADER, ws.map(row), opts), ...ws.flatMap(notes), ...jitFlags(ws)].join('\n');
}
