// The nginx lines that mount test/fixtures/lua/wake_app.lua (nffi's wake-up paths side by
// side in one worker), and what the tests of those paths share.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { http } from './nginx.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** libnffi_ngx.so is built only against the installed nginx's headers: with it, the eventfd
 * path must come up (Debian's nginx uses epoll on Linux). */
export const FAST_BUILT = existsSync(`${ROOT}/native/build/libnffi_ngx.so`);

export const WAKE_HTTP = `
init_worker_by_lua_block { require("wake_app").init_worker() }
server {
    listen 127.0.0.1:$PORT;
    location / { content_by_lua_block { require("wake_app").route() } }
}`;

/** A wake_app route's JSON answer, asserting it answered 200. */
export async function getJson(url: string): Promise<any> {
  const res = await http(url);
  const text = res.body.toString();
  expect(res.status, text).toBe(200);
  return JSON.parse(text);
}
