// `nffi-inspect breakpoints PID [--json]` lists the breakpoints of the running `serve` probe
// that holds PID; `nffi-inspect delete PID ID` removes one through it. One-shot `breakpoint`
// commands keep theirs to themselves and remove them when they exit, so with no serve probe
// there is nothing to list ("no breakpoints", exit 0) and nothing to delete (exit 1).
import type { Command } from 'commander';
import { deleteServeBreakpoint, findServe, listServeBreakpoints, type ListedBreakpoint } from '../../probe/breakpoint-host.js';
import { CliError } from '../errors.js';
import { writeTerm } from '../format/escape.js';
import { describeSpec } from '../format/hit.js';
import { formatTable } from '../format/table.js';
import { parseCount, parsePid, printJson, withProbeOptions, type ProbeOptions } from '../pid.js';

function states(b: ListedBreakpoint): string {
  const n = new Map<string, number>();
  for (const w of b.workers) n.set(w.state, (n.get(w.state) ?? 0) + 1);
  return [...n].map(([s, k]) => `${s} ${k}`).join(', ') || '-';
}

export function formatBreakpoints(list: ListedBreakpoint[]): string {
  if (list.length === 0) return 'no breakpoints';
  return formatTable(['id', 'location', 'condition', 'hits', 'drops', 'workers'], list.map((b) => {
    const { location, condition } = describeSpec(b.spec);
    const at = b.line !== undefined && b.line !== b.spec.line ? `${location} (line ${b.line})` : location;
    return [String(b.id), at, condition, String(b.hits), String(b.dropped), states(b)];
  }));
}

export function registerBreakpoints(program: Command): void {
  withProbeOptions(program
    .command('breakpoints')
    .description('list the breakpoints of the running `serve` probe for PID')
    .argument('<PID>', 'nginx master or worker pid')
    .option('--json', 'print JSON'))
    .action(async (pidText: string, opts: ProbeOptions) => {
      const pid = parsePid(pidText);
      const entry = findServe(pid);
      const list = entry ? await listServeBreakpoints(entry) : [];
      if (opts.json) return printJson({ pid, serve: entry?.probe_pid ?? null, breakpoints: list });
      const note = entry ? '' : ` (no serve probe holds ${pid})`;
      writeTerm((list.length ? formatBreakpoints(list) : `no breakpoints${note}`) + '\n');
    });

  withProbeOptions(program
    .command('delete')
    .description('remove a breakpoint (ids from `breakpoints`) through the running `serve` probe')
    .argument('<PID>', 'nginx master or worker pid')
    .argument('<ID>', 'breakpoint id'))
    .action(async (pidText: string, idText: string, opts: ProbeOptions) => {
      const pid = parsePid(pidText);
      const id = parseCount(idText, 'breakpoint id');
      const entry = findServe(pid);
      if (!entry) throw new CliError(`no breakpoint ${id}: no serve probe holds ${pid}`);
      if (!(await deleteServeBreakpoint(entry, id))) throw new CliError(`no breakpoint ${id} in serve probe ${entry.probe_pid}`);
      process.stdout.write(`deleted bp ${id}\n`);
    });
}
