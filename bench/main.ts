// `npm run bench -- [suite...]`: runs the named benchmark suites (all when none
// is named) and prints their side-by-side tables.
import { runAttachBench } from './attach.js';
import { runBreakpointsBench } from './breakpoints.js';
import { runFfiBench } from './ffi.js';
import { runTasksBench } from './tasks.js';
import { runTuiBench } from './tui.js';

const suites: Record<string, () => Promise<void>> = {
  ffi: runFfiBench,
  attach: runAttachBench,
  breakpoints: runBreakpointsBench,
  tasks: runTasksBench,
  tui: runTuiBench,
  'resty-ffi': async () => (await import('./resty-ffi.js')).runRestyFfiBench(),
};

async function main(): Promise<void> {
  const names = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const chosen = names.length ? names : Object.keys(suites);
  for (const name of chosen) {
    const suite = suites[name];
    if (!suite) {
      process.stderr.write(`bench: unknown suite '${name}' (have: ${Object.keys(suites).join(', ')})\n`);
      process.exit(2);
    }
    await suite();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
