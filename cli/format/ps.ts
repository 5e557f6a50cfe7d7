// The masters of `ps`, each named by its prefix and configuration file, with its workers as a
// table under it:
//
//   master 4242 (root)  prefix /srv/site/  config /srv/site/conf/nginx.conf
//     worker  user    state    agent
//       4243  nobody  serving  ready
//
// A master line too long for the width puts prefix and config on lines of their own (a path
// longer than the width loses its start, the file name stays).
import { NOT_CHECKED, type HostMaster } from '../../client/host.js';
import { termText } from './escape.js';
import { ellipsize, formatTable, type Column, type Style, type TableOptions } from './table.js';

function agentStyle(cell: string): Style | undefined {
  if (cell === 'ready') return 'green';
  if (cell.startsWith('attached')) return 'cyan';
  if (cell === 'no agent' || cell === NOT_CHECKED || cell === '-') return 'dim';
  return 'red';
}

const COLUMNS: Column[] = [
  { title: 'worker', align: 'right' },
  { title: 'user', min: 8 },
  { title: 'state', style: (c) => (c === 'serving' ? undefined : 'yellow') },
  { title: 'agent', min: 12, style: agentStyle },
];

function masterLines(m: HostMaster, width: number | undefined): string[] {
  const head = `master ${m.pid} (${termText(m.user)})`;
  const prefix = `prefix ${termText(m.prefix ?? '?')}`;
  const config = `config ${termText(m.config ?? '?')}`;
  const one = `${head}  ${prefix}  ${config}`;
  if (width === undefined || one.length <= width) return [one];
  return [head, ellipsize(`  ${prefix}`, width, 'start').replace(/^…/, '  …'), ellipsize(`  ${config}`, width, 'start').replace(/^…/, '  …')];
}

export function formatPs(masters: HostMaster[], opts: TableOptions = {}): string {
  if (masters.length === 0) return '(no nginx master process on this host)';
  const out: string[] = [];
  for (const m of masters) {
    out.push(...masterLines(m, opts.width));
    if (m.workers.length === 0) {
      out.push('  (no workers)');
      continue;
    }
    const rows = m.workers.map((w) => [String(w.pid), w.user, w.state, w.agent]);
    const table = formatTable(COLUMNS, rows, { ...opts, ...(opts.width !== undefined ? { width: opts.width - 2 } : {}) });
    out.push(...table.split('\n').map((l) => `  ${l}`));
  }
  if (masters.some((m) => m.workers.some((w) => w.agent === NOT_CHECKED))) {
    out.push(`(agents ${NOT_CHECKED}: --agents tries a quick attach to each worker)`);
  }
  return out.join('\n');
}
