// The nginx lines that mount test/fixtures/lua/park_app.lua with the agent loaded.
// NFFI_INSPECT_RUN_DIR (nginx `env`) gives each test file its own run dir.
import { request, type ClientRequest } from 'node:http';

export { FIXTURE_LUA } from './ffi-app.js';

export const PARK_APP_HTTP = `
init_worker_by_lua_block {
    require("nffi.inspect").start({ run_dir = os.getenv("NFFI_INSPECT_RUN_DIR") })
}

server {
    listen 127.0.0.1:$PORT;

    location / {
        content_by_lua_block { require("park_app").route() }
    }
}
`;

/** Starts a request that parks in nginx and resolves once its headers arrive (the coroutine is
 * parked then); the request is kept in `held` for the caller to destroy. */
export function holdRequest(url: string, held: ClientRequest[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      res.on('data', () => undefined);
      res.on('error', () => undefined);
      resolve();
    });
    req.on('error', reject);
    req.end();
    held.push(req);
  });
}
