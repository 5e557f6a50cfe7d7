// Renders conf/nginx.conf for a throwaway nginx instance. The Lua bits come from
// probe/nginx-config.ts, the same source `nffi-inspect config` prints for users.
import type { NginxConfig } from '../../probe/nginx-config.js';

/** Debian's paths (libnginx-mod-http-ndk, libnginx-mod-http-lua). */
export const NGINX_BIN = '/usr/sbin/nginx';
export const MODULES = [
  '/usr/lib/nginx/modules/ndk_http_module.so',
  '/usr/lib/nginx/modules/ngx_http_lua_module.so',
];

export interface ConfInput {
  workers: number;
  port: number;
  http: string;
  main?: string;
  user?: string;
  envNames: string[];
  lua: NginxConfig;
}

export function renderConf(c: ConfInput): string {
  const lines = [
    ...MODULES.map((m) => `load_module ${m};`),
    // No `user` by default: started as root, workers then run as nobody, like production.
    ...(c.user ? [`user ${c.user};`] : []),
    `worker_processes ${c.workers};`,
    // Room for wrk in bench/; raising the soft limit up to the hard one needs no privilege.
    'worker_rlimit_nofile 16384;',
    'error_log logs/error.log info;',
    'pid logs/nginx.pid;',
    // nginx clears the environment of workers except for names listed here.
    ...c.envNames.map((n) => `env ${n};`),
    c.lua.nginx_main,
    substitutePort(c.main ?? '', c.port),
    'events { worker_connections 4096; }',
    'http {',
    '    access_log off;',
    `    lua_package_path "${c.lua.lua_package_path};";`,
    // Keep every temp path inside the prefix (the compiled-in defaults are under /var/lib/nginx).
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
      (t) => `    ${t}_temp_path tmp/${t};`,
    ),
    // nginx_http (the agent's init_worker) is not added here: each app has its own
    // init_worker_by_lua_block and adds the agent to it, or leaves it out on purpose.
    indent(substitutePort(c.http, c.port)),
    '}',
  ];
  return lines.filter((l) => l.trim() !== '').join('\n') + '\n';
}

export function substitutePort(text: string, port: number): string {
  return text.replace(/\$PORT\b/g, String(port));
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => (l.trim() ? `    ${l}` : ''))
    .join('\n');
}
