// `nffi-inspect breakpoints PID [--json]` lists the breakpoints of the running `serve` probe
// that holds PID; `nffi-inspect delete PID ID` removes one through it. One-shot `breakpoint`
// commands keep theirs to themselves and remove them when they exit, so with no serve probe
// there is nothing to list ("no breakpoints", exit 0) and nothing to delete (exit 1).
import type { Command } from 'commander';
import type { ListedBreakpoint } from '../../client/client.js';
import { joinServe } from '../../client/connect.js';
import type { RemoteClient } from '../../client/remote.js';
import { CliError } from '../errors.js';
import { formatBreakpoints } from '../format/breakpoints.js';
import { writeStyled } from '../format/escape.js';
import { tableOptions } from '../format/table.js';
import { clientOptions, parseCount, parsePid, printJson, withProbeOptions, type ProbeOptions } from '../pid.js';

/** `fn` on the serve that holds `pid`, or `none` when no serve does. */
async function onServe<T>(pid: number, opts: ProbeOptions, fn: (c: RemoteClient) => Promise<T>, none: () => T): Promise<T> {
  const serve = await joinServe(pid, clientOptions(opts));
  if (!serve) return none();
  try {
    return await fn(serve);
  } finally {
    await serve.close();
  }
}

export function registerBreakpoints(program: Command): void {
  withProbeOptions(program
    .command('breakpoints')
    .description('list the breakpoints of the running `serve` probe for PID')
    .argument('<PID>', 'nginx master or worker pid')
    .option('--wide', 'every column, nothing cut (default: fit the terminal, 80 columns when piped)')
    .option('--json', 'print JSON'))
    .action(async (pidText: string, opts: ProbeOptions & { wide?: boolean }) => {
      const pid = parsePid(pidText);
      const found = await onServe(pid, opts, async (s) => ({ serve: s.probePid as number | null, list: await s.listBreakpoints() }),
        () => ({ serve: null, list: [] as ListedBreakpoint[] }));
      if (opts.json) return printJson({ pid, serve: found.serve, breakpoints: found.list });
      const note = found.serve === null ? ` (no serve probe holds ${pid})` : '';
      writeStyled((found.list.length ? formatBreakpoints(found.list, tableOptions(opts)) : `no breakpoints${note}`) + '\n');
    });

  withProbeOptions(program
    .command('delete')
    .description('remove a breakpoint (ids from `breakpoints`) through the running `serve` probe')
    .argument('<PID>', 'nginx master or worker pid')
    .argument('<ID>', 'breakpoint id')
    .option('--json', 'print JSON: {"pid","serve","deleted"}'))
    .action(async (pidText: string, idText: string, opts: ProbeOptions) => {
      const pid = parsePid(pidText);
      const id = parseCount(idText, 'breakpoint id');
      const serve = await onServe(pid, opts, async (s) => {
        if (!(await s.removeBreakpoint(id))) throw new CliError(`no breakpoint ${id} in serve probe ${s.probePid}`);
        return s.probePid;
      }, () => {
        throw new CliError(`no breakpoint ${id}: no serve probe holds ${pid}`);
      });
      if (opts.json) printJson({ pid, serve, deleted: id });
      else process.stdout.write(`deleted bp ${id}\n`);
    });
}
