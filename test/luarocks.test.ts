// The nffi rock (nffi-scm-1.rockspec) as OpenResty users install it: `luarocks make --tree DIR`
// from a checkout, offline, then nginx (workers as nobody) with lua_package_path/cpath from
// that tree only, a call through an example runtime, the inspector against it, and
// `nffi-inspect config --luarocks-tree DIR` printing the lines this nginx.conf uses.
import { spawnSync } from 'node:child_process';
import {
  chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { luarocksConfig } from '../probe/nginx-config.js';
import { ROOT, runCli } from './harness/cli.js';
import { http, useNginx } from './harness/nginx.js';

const ROCKSPEC = 'nffi-scm-1.rockspec';
const work = mkdtempSync(join(tmpdir(), 'nffi-rock-'));
chmodSync(work, 0o755); // the workers (nobody) read the tree inside it
const src = join(work, 'src');
const tree = join(work, 'tree');
const cfg = luarocksConfig(tree);
const CPATH_LINE = `lua_package_cpath "${cfg.lua_package_cpath};";`;
const timings: string[] = [];

/** A copy of the checkout as git sees it, tracked and new files but not ignored ones (a new
 * source native/Makefile names may not be committed yet), and its native build, so make has
 * nothing to do; mtimes kept. luarocks make builds where it runs, and the checkout is shared. */
function copyCheckout(): void {
  const ls = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
  const files = ls.stdout.split('\0');
  for (const f of files) {
    if (!f || !existsSync(join(ROOT, f))) continue; // deleted in the work tree, not yet committed
    cpSync(join(ROOT, f), join(src, f), { preserveTimestamps: true });
  }
  // asan/tsan/noinst are the C tests' sanitizer builds, not part of `make all`
  const skip = new Set(['asan', 'tsan', 'noinst']);
  cpSync(join(ROOT, 'native', 'build'), join(src, 'native', 'build'), {
    recursive: true,
    preserveTimestamps: true,
    filter: (from) => !skip.has(relative(join(ROOT, 'native', 'build'), from)),
  });
}

/** Every file of the copy outside native/build (the git-ignored build dir) with its mtime. */
function sourceState(): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (p === join(src, 'native', 'build')) continue;
      if (e.isDirectory()) walk(p);
      else out.set(relative(src, p), statSync(p).mtimeMs);
    }
  };
  walk(src);
  return out;
}

/** `luarocks make` with no network at all (a fresh network namespace), as `user` if given. */
function luarocksMake(treeDir: string, user?: string) {
  const as = user ? ['runuser', '-u', user, '--', 'env', `HOME=${work}/home-${user}`] : [];
  const t0 = Date.now();
  const r = spawnSync('unshare', ['-n', ...as, 'luarocks', 'make', '--tree', treeDir, ROCKSPEC], {
    cwd: src,
    encoding: 'utf8',
    timeout: 50_000,
  });
  timings.push(`luarocks make${user ? ` as ${user}` : ''}: ${Date.now() - t0} ms`);
  return r;
}

let before: Map<string, number>;
let made: ReturnType<typeof spawnSync>;
beforeAll(() => {
  copyCheckout();
  before = sourceState();
  made = luarocksMake(tree);
}, 60_000);

afterAll(() => {
  console.log(`luarocks.test.ts: ${timings.join('; ')}`);
  rmSync(work, { recursive: true, force: true });
});

const ROCK_HTTP = `
${CPATH_LINE}
${cfg.nginx_http}

server {
    listen 127.0.0.1:$PORT;

    location = /where {
        content_by_lua_block {
            local native = require "nffi.native"
            ngx.say(package.searchpath("nffi.native", package.path))
            ngx.say(package.searchpath("nffi.inspect", package.path))
            ngx.say(native.layout, " ", native.path())
            ngx.say(native.examples_dir)
        }
    }

    # nffi.native loaded from a hand-made layout (no share/lua/5.1 above it): libnffi
    # is looked for on package.cpath, and is missing when that has none
    location = /layouts {
        content_by_lua_block {
            local file = ngx.var.arg_file
            local cpath = package.cpath
            local native = assert(loadfile(file))()
            ngx.say(native.layout, " ", native.native_dir)
            package.cpath = ""
            native = assert(loadfile(file))()
            package.cpath = cpath
            local ok, err = pcall(native.lib)
            ngx.say(tostring(native.layout), " ", tostring(ok), " ", err)
        }
    }

    location = /echo {
        content_by_lua_block {
            ngx.req.read_body()
            local rt = require("nffi").load("nffi_echo")
            local ok, res, err = rt:echo(ngx.req.get_body_data())
            if not ok then
                ngx.status = 500
                return ngx.say("echo failed: ", tostring(res), " ", tostring(err))
            end
            ngx.print(res)
        }
    }
}
`;

describe('luarocks make --tree DIR from a checkout', () => {
  it('installs the nffi modules, libnffi and the example runtimes, and writes nothing but native/build', () => {
    expect(made.status, `${made.stdout}\n${made.stderr}`).toBe(0);
    expect(String(made.stdout)).toContain(`nffi scm-1 is now installed in ${tree}`);
    expect(sourceState()).toEqual(before);

    const lua = join(tree, 'share', 'lua', '5.1');
    const modules = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.lua')).sort();
    expect(modules(join(lua, 'nffi'))).toEqual(modules(join(src, 'lua', 'nffi')));
    expect(modules(join(lua, 'nffi', 'inspect'))).toEqual(modules(join(src, 'lua', 'nffi', 'inspect')));
    expect(modules(join(lua, 'nffi', 'inspect')).length).toBeGreaterThan(20);

    const built = join(src, 'native', 'build');
    const libs = ['libnffi.so', 'libnffi_noinst.so', 'libnffi_ngx.so'].filter((f) => existsSync(join(built, f)));
    expect(libs).toContain('libnffi.so');
    for (const f of libs) expect(readFileSync(join(cfg.native_dir, f))).toEqual(readFileSync(join(built, f)));
    const runtimes = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.so')).sort();
    expect(runtimes(join(built, 'examples'))).toContain('libnffi_echo.so');
    expect(runtimes(cfg.examples_dir)).toEqual(runtimes(join(built, 'examples')));
    // a runtime's own files beside its library (the Python runtime's python/) come whole
    const dirs = readdirSync(join(built, 'examples'), { withFileTypes: true }).filter((e) => e.isDirectory());
    for (const d of dirs) {
      expect(readdirSync(join(cfg.examples_dir, d.name)).sort()).toEqual(readdirSync(join(built, 'examples', d.name)).sort());
    }
  });

  it('works as a non-root user into a tree of theirs', () => {
    // the user's own checkout (make writes native/build where it runs), tree and home
    const own = join(work, 'tree-nobody');
    mkdirSync(own);
    mkdirSync(join(work, 'home-nobody'));
    spawnSync('chown', ['-R', 'nobody', src, own, join(work, 'home-nobody')]);
    const r = luarocksMake(own, 'nobody');
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const mine = luarocksConfig(own);
    expect(statSync(join(mine.native_dir, 'libnffi.so')).uid).toBe(Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout));
    expect(existsSync(join(own, 'share', 'lua', '5.1', 'nffi', 'inspect.lua'))).toBe(true);
    expect(existsSync(join(mine.examples_dir, 'libnffi_echo.so'))).toBe(true);
  });
});

describe('nginx with lua_package_path/cpath from the tree only', () => {
  // No checkout on the path: `root` is a directory without lua/ (the harness adds root/lua to
  // lua_package_path), the tree's Lua dir comes through luaPath, its C dir through CPATH_LINE.
  const noCheckout = join(work, 'no-checkout');
  mkdirSync(noCheckout);
  const nginx = useNginx({ workers: 1, root: noCheckout, luaPath: [join(tree, 'share', 'lua', '5.1')], http: ROCK_HTTP });

  it('loads nffi.native, nffi.inspect, libnffi and the examples from the tree', async () => {
    const r = await http(nginx().url('/where'));
    expect(r.status).toBe(200);
    expect(r.body.toString().split('\n')).toEqual([
      join(tree, 'share', 'lua', '5.1', 'nffi', 'native.lua'),
      join(tree, 'share', 'lua', '5.1', 'nffi', 'inspect.lua'),
      `luarocks ${join(cfg.native_dir, 'libnffi.so')}`,
      cfg.examples_dir,
      '',
    ]);
  });

  it('nffi.native elsewhere finds libnffi on package.cpath, or says where it looked', async () => {
    const hand = join(work, 'hand-made', 'nffi');
    mkdirSync(hand, { recursive: true });
    cpSync(join(tree, 'share', 'lua', '5.1', 'nffi', 'native.lua'), join(hand, 'native.lua'));
    chmodSync(join(work, 'hand-made'), 0o755);
    const r = await http(nginx().url(`/layouts?file=${join(hand, 'native.lua')}`));
    expect(r.status, r.body.toString()).toBe(200);
    const [found, missing] = r.body.toString().split('\n');
    expect(found).toBe(`cpath ${cfg.native_dir}`);
    // lib() errors at level 1, as in a checkout: "<file>:<line>: nffi: ..."
    expect(missing).toMatch(/^nil false \S+\/native\.lua:\d+: nffi: /);
    expect(missing!.slice(missing!.indexOf(' nffi: ') + 1)).toBe(
      `nffi: ${hand}/libnffi.so is missing (looked for nffi/libnffi.so on package.cpath ""); ` +
        'install the rock with `luarocks make --tree DIR`, then lua_package_cpath "DIR/lib/lua/5.1/?.so;;" ' +
        '(nffi-inspect config --luarocks-tree DIR)',
    );
  });

  it('calls the echo example runtime and gets the same bytes back; no library comes from the checkout', async () => {
    const body = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256));
    const r = await http(nginx().url('/echo'), { method: 'POST', body });
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.body.equals(body)).toBe(true);
    const maps = readFileSync(`/proc/${nginx().workerPids()[0]}/maps`, 'utf8');
    expect(maps).toContain(join(cfg.native_dir, 'libnffi.so'));
    expect(maps).toContain(join(cfg.examples_dir, 'libnffi_echo.so'));
    expect(maps).not.toContain(`${ROOT}/native/build`);
  });

  it('nffi-inspect queue --json MASTER shows the runtime, woken the way the tree allows', async () => {
    await http(nginx().url('/echo'), { method: 'POST', body: 'x' });
    const r = await runCli(['queue', String(nginx().masterPid), '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    const rts = doc.workers.flatMap((w: any) => w.runtimes);
    expect(rts.map((rt: any) => rt.name)).toEqual(['nffi_echo']);
    expect(rts[0].completed).toBeGreaterThanOrEqual(1);
    // eventfd needs libnffi_ngx.so, which nffi.fastwake looks for in the tree's native dir
    expect(rts[0].wake).toBe(existsSync(join(cfg.native_dir, 'libnffi_ngx.so')) ? 'eventfd' : 'pump');
  });

  it('nffi-inspect config --luarocks-tree DIR prints the lines this nginx.conf uses', async () => {
    const conf = readFileSync(join(nginx().prefix, 'conf', 'nginx.conf'), 'utf8');
    const r = await runCli(['config', '--luarocks-tree', tree]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const printed = r.stdout.split('\n').filter((l) => /^\s*(lua_package_c?path|init_worker_by_lua_block) /.test(l));
    expect(printed).toHaveLength(3);
    const [pathLine, cpathLine, agentLine] = printed.map((l) => l.trim());
    // the harness puts its root's lua/ (here a dir without one) before the tree's dir
    const used = conf.split('\n').find((l) => l.trim().startsWith('lua_package_path '))!.trim();
    expect(used.endsWith(pathLine!.slice('lua_package_path "'.length))).toBe(true);
    expect(used).not.toContain(`${ROOT}/`);
    expect(conf.split('\n').map((l) => l.trim())).toEqual(expect.arrayContaining([cpathLine, agentLine]));

    const json = JSON.parse((await runCli(['config', '--luarocks-tree', tree, '--json'])).stdout);
    expect(json).toEqual(cfg);
    expect(json.native_dir).toBe(join(tree, 'lib', 'lua', '5.1', 'nffi'));
  });

  it('config --luarocks-tree without DIR takes the tree luarocks installed nffi in', async () => {
    // luarocks' own configuration names the trees it searches (here only ours)
    const conf = join(work, 'luarocks-config.lua');
    writeFileSync(conf, `rocks_trees = { { name = "test", root = ${JSON.stringify(tree)} } }\n`);
    process.env.LUAROCKS_CONFIG = conf;
    try {
      const r = await runCli(['config', '--luarocks-tree', '--json']);
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout)).toEqual(cfg);
    } finally {
      delete process.env.LUAROCKS_CONFIG;
    }
  });

  it('config --luarocks-tree refuses a directory without the rock, in one line', async () => {
    const r = await runCli(['config', '--luarocks-tree', noCheckout]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `nffi-inspect: ${noCheckout} has no nffi rock (the nffi Lua modules: no ${noCheckout}/share/lua/5.1/nffi/native.lua); ` +
        `install it from a checkout with: luarocks make --tree ${noCheckout}\n`,
    );
  });
});
