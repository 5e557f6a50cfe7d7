// Every Lua file we ship or run in nginx passes luacheck (std ngx_lua, no globals),
// and lua/nffi/cdefs.lua declares libnffi exactly as native/include/nffi.h (the task queue) and
// nffi_inspect.h (the inspector agent's helpers) do.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

// Declarations as one normalised string each: `type name(args);` and `typedef struct … } name;`
function declarations(text: string): string[] {
  const body = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/--[^\n]*/g, '').replace(/\s+/g, ' ');
  const structs = body.match(/typedef struct \w+ \{[^}]*\} \w+;/g) ?? [];
  const funcs = body.match(/[\w *]+\bn?g?\w*\([^)]*\);/g) ?? [];
  return [...structs, ...funcs.map((f) => f.trim())].filter((d) => /nffi|ngx_http_lua/.test(d));
}

describe('Lua sources', () => {
  it('pass luacheck', async () => {
    const dirs = ['lua', 'test/fixtures/lua', 'demo/lua', 'bench/lua'];
    const { stdout } = await run('luacheck', ['--no-color', '--codes', ...dirs], { cwd: ROOT })
      .catch((err: { stdout: string }) => ({ stdout: err.stdout }));
    expect(stdout).toMatch(/Total: 0 warnings \/ 0 errors/);
  });

  it('cdefs.lua matches nffi.h and nffi_inspect.h, nothing missing and nothing more', () => {
    const cdefs = declarations(readFileSync(`${ROOT}/lua/nffi/cdefs.lua`, 'utf8'));
    const headers = ['nffi.h', 'nffi_inspect.h'].map((h) => {
      const decls = declarations(readFileSync(`${ROOT}/native/include/${h}`, 'utf8'));
      // the runtime-thread ABI is for runtime libraries, never declared to LuaJIT
      return [h, decls.filter((d) => !/ngx_http_lua_(nonblocking_)?ffi_/.test(d))] as const;
    });
    for (const [h, wanted] of headers) {
      expect(wanted.length, h).toBeGreaterThan(10);
      expect(wanted.filter((d) => !cdefs.includes(d)), `declared in ${h}, not in cdefs.lua`).toEqual([]);
    }
    const all = headers.flatMap(([, wanted]) => wanted);
    expect(cdefs.filter((d) => !all.includes(d)), 'declared in cdefs.lua, in neither header').toEqual([]);
  });
});
