// What a user adds to nginx.conf to load the agent. Pure: `nffi-inspect config` prints it,
// and the test/demo/bench nginx launcher (scripts/nginx-instance.ts) writes the same
// lua_package_path, so what we test is what we tell users to do. The agent's line goes
// into each app's own init_worker_by_lua_block there (nginx allows one per http {}).
import { join, resolve } from 'node:path';
import { repoRoot } from './repo-root.js';

export interface NginxConfig {
  /** A fragment of lua_package_path: users append their own entries and the ';;' default. */
  lua_package_path: string;
  /** Lines for the main (top-level) context of nginx.conf; empty when none are needed. */
  nginx_main: string;
  /** Lines for the http {} block besides lua_package_path: the agent's init_worker. */
  nginx_http: string;
  /** libnffi.so lives here. */
  native_dir: string;
  /** The example runtimes (*.so) live here. */
  examples_dir: string;
  /** A luarocks tree only: a fragment of lua_package_cpath, the tree's C module dir. */
  lua_package_cpath?: string;
  /** A luarocks tree only: the tree (absolute). */
  luarocks_tree?: string;
}

/** The Lua statement that starts the (dormant) agent in each worker. */
export const AGENT_START = 'require("nffi.inspect").start()';

export function nginxConfig(root: string = repoRoot()): NginxConfig {
  const lua = join(root, 'lua');
  const nativeDir = join(root, 'native', 'build');
  return {
    lua_package_path: `${lua}/?.lua;${lua}/?/init.lua;`,
    nginx_main: '',
    nginx_http: `init_worker_by_lua_block { ${AGENT_START} }`,
    native_dir: nativeDir,
    examples_dir: join(nativeDir, 'examples'),
  };
}

/** Where luarocks puts a rock's files in a tree, for LuaJIT (Lua 5.1, as OpenResty's). */
export const LUAROCKS_LUA_DIR = join('share', 'lua', '5.1');
export const LUAROCKS_LIB_DIR = join('lib', 'lua', '5.1');

/**
 * The same lines for the nffi rock installed in a luarocks tree (`luarocks make --tree DIR`
 * from a checkout, nffi-scm-1.rockspec): the rockspec puts libnffi and the example runtimes
 * in lib/lua/5.1/nffi/, where nffi.native looks for them.
 */
export function luarocksConfig(tree: string): NginxConfig {
  const t = resolve(tree);
  const lua = join(t, LUAROCKS_LUA_DIR);
  const lib = join(t, LUAROCKS_LIB_DIR);
  const nativeDir = join(lib, 'nffi');
  return {
    lua_package_path: `${lua}/?.lua;${lua}/?/init.lua;`,
    nginx_main: '',
    nginx_http: `init_worker_by_lua_block { ${AGENT_START} }`,
    native_dir: nativeDir,
    examples_dir: join(nativeDir, 'examples'),
    lua_package_cpath: `${lib}/?.so;`,
    luarocks_tree: t,
  };
}

/** The files a tree holding the nffi rock has, as [what, path] pairs, for a clear refusal. */
export function luarocksTreeFiles(cfg: NginxConfig): [string, string][] {
  const tree = cfg.luarocks_tree ?? '';
  return [
    ['the nffi Lua modules', join(tree, LUAROCKS_LUA_DIR, 'nffi', 'native.lua')],
    ['libnffi', join(cfg.native_dir, 'libnffi.so')],
  ];
}

/** The human form of `nffi-inspect config`: nginx.conf lines with short comments. */
export function renderNginxConfig(cfg: NginxConfig): string {
  const out: string[] = [
    '# nffi-inspect: add these lines to nginx.conf.',
    '#',
    '# The Lua module must be loaded. Debian/Ubuntu nginx does that through',
    '# /etc/nginx/modules-enabled/ (package libnginx-mod-http-lua); elsewhere put',
    '#   load_module modules/ndk_http_module.so;',
    '#   load_module modules/ngx_http_lua_module.so;',
    '# at the top of nginx.conf. OpenResty has it built in.',
  ];
  if (cfg.nginx_main) out.push('', '# top level (main context):', cfg.nginx_main);
  out.push(
    '',
    'http {',
    '    # Keep your own entries after ours; the trailing ";;" keeps the default path.',
    `    lua_package_path "${cfg.lua_package_path};";`,
  );
  if (cfg.lua_package_cpath) {
    out.push(
      '    # the tree\'s C modules: runtimes installed as rocks are found by name there',
      `    lua_package_cpath "${cfg.lua_package_cpath};";`,
    );
  }
  if (cfg.nginx_http) {
    out.push(
      '    # The dormant agent: one cheap file check per 100 ms until you attach. nginx allows',
      `    # one init_worker_by_lua_block: if you have one, put ${AGENT_START} inside it.`,
      ...indent(cfg.nginx_http),
    );
  }
  out.push('    # ... your servers ...', '}', '');
  if (cfg.luarocks_tree) out.push(`# luarocks tree: ${cfg.luarocks_tree}`);
  out.push(`# native libraries: ${cfg.native_dir}`);
  out.push(`# example runtimes: ${cfg.examples_dir}`);
  return out.join('\n') + '\n';
}

function indent(text: string): string[] {
  return text.split('\n').map((line) => (line ? `    ${line}` : line));
}
