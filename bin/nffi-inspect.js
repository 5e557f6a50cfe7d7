#!/usr/bin/env node
// Thin launcher: the CLI is written in TypeScript and compiled to dist/ by `npm run build`
// (scripts/bootstrap does it when sources are newer).
const entry = new URL('../dist/cli/main.js', import.meta.url);
try {
  await import(entry.href);
} catch (err) {
  // Only a missing build gets the friendly message; real errors keep their stack.
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes(entry.pathname)) throw err;
  process.stderr.write('nffi-inspect: not built yet; run `npm run build` (or scripts/bootstrap)\n');
  process.exitCode = 1;
}
