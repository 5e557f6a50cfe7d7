// The masters and workers of `ps` as one table.
import type { HostMaster } from '../../client/host.js';
import { formatTable } from './table.js';

export function formatPs(masters: HostMaster[]): string {
  if (masters.length === 0) return '(no nginx master process on this host)';
  const rows = masters.flatMap((m) => [
    [String(m.pid), '-', 'master', m.user, `${m.workers.length} worker${m.workers.length === 1 ? '' : 's'}`],
    ...m.workers.map((w) => [String(w.pid), String(m.pid), w.state === 'serving' ? 'worker' : 'worker (shutting down)', w.user, w.agent]),
  ]);
  return formatTable(['pid', 'master', 'role', 'user', 'agent'], rows);
}
