// The TypeScriptToLua fixture (test/fixtures/tstl): src/handler.ts compiled by `tstl` into
// out/handler.lua + out/handler.lua.map (git-ignored; the .ts is the source of truth), rebuilt
// when the sources are newer than the output; and the nginx lines that mount it.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TSTL_DIR = fileURLToPath(new URL('../fixtures/tstl', import.meta.url));
export const TSTL_OUT = join(TSTL_DIR, 'out');
export const TSTL_TS = 'handler.ts';
const TSTL_BIN = fileURLToPath(new URL('../../node_modules/.bin/tstl', import.meta.url));

const mtime = (p: string): number => (existsSync(p) ? statSync(p).mtimeMs : 0);

/** Compile the fixture unless out/ is newer than every source (about 5 s when it runs). */
export function buildTstl(): void {
  const inputs = [join(TSTL_DIR, 'tsconfig.json'), ...readdirSync(join(TSTL_DIR, 'src')).map((f) => join(TSTL_DIR, 'src', f))];
  const outputs = [join(TSTL_OUT, 'handler.lua'), join(TSTL_OUT, 'handler.lua.map')];
  const newest = Math.max(...inputs.map(mtime));
  if (outputs.every((o) => mtime(o) > newest)) return;
  execFileSync(TSTL_BIN, ['-p', join(TSTL_DIR, 'tsconfig.json')], { stdio: ['ignore', 'inherit', 'inherit'] });
}

/** The line of src/handler.ts marked `// BREAK` (call after buildTstl, or any time: it reads the .ts). */
export function tsMarkerLine(marker = 'BREAK'): number {
  return readFileSync(join(TSTL_DIR, 'src', TSTL_TS), 'utf8').split('\n').findIndex((l) => l.includes(`// ${marker}`)) + 1;
}

/** The first line of out/handler.lua that contains `text` (after buildTstl). */
export function luaLineOf(text: string): number {
  return readFileSync(join(TSTL_OUT, 'handler.lua'), 'utf8').split('\n').findIndex((l) => l.includes(text)) + 1;
}

export const TSTL_HTTP = `
init_worker_by_lua_block { require("nffi.inspect").start() }

server {
    listen 127.0.0.1:$PORT;

    location = /tstl {
        content_by_lua_block { require("handler").route() }
    }
}
`;
