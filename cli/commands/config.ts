// `nffi-inspect config [--json] [--luarocks-tree [DIR]]`: the nginx.conf lines that enable the
// agent, for this checkout (or npm package), or for the nffi rock in a luarocks tree.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import {
  luarocksConfig,
  luarocksTreeFiles,
  nginxConfig,
  renderNginxConfig,
  type NginxConfig,
} from '../../probe/nginx-config.js';
import { CliError } from '../errors.js';

interface ConfigOptions {
  json?: boolean;
  /** A tree, or true: ask luarocks where it installed nffi. */
  luarocksTree?: string | true;
}

export function registerConfig(program: Command): void {
  program
    .command('config')
    .description('print the lines to add to nginx.conf to enable the agent')
    .option('--json', 'print a JSON object instead of nginx.conf text')
    .option(
      '--luarocks-tree [dir]',
      'for the nffi rock installed in this luarocks tree (without dir: where `luarocks show` finds it)',
    )
    .action((opts: ConfigOptions) => {
      const cfg = opts.luarocksTree === undefined ? nginxConfig() : treeConfig(opts.luarocksTree);
      process.stdout.write(opts.json ? JSON.stringify(cfg, null, 2) + '\n' : renderNginxConfig(cfg));
    });
}

function treeConfig(tree: string | true): NginxConfig {
  const cfg = luarocksConfig(tree === true ? rockTree() : tree);
  for (const [what, path] of luarocksTreeFiles(cfg)) {
    if (!existsSync(path)) {
      throw new CliError(
        `${cfg.luarocks_tree} has no nffi rock (${what}: no ${path}); ` +
          `install it from a checkout with: luarocks make --tree ${cfg.luarocks_tree}`,
      );
    }
  }
  return cfg;
}

/** The tree luarocks installed nffi in, from its own configuration (system or user tree). */
function rockTree(): string {
  const r = spawnSync('luarocks', ['show', '--rock-tree', 'nffi'], { encoding: 'utf8', timeout: 20_000 });
  if (r.error) throw new CliError(`cannot run luarocks to find the nffi rock: ${r.error.message}; give the tree: --luarocks-tree DIR`);
  const tree = r.stdout.trim();
  if (r.status !== 0 || !tree) {
    throw new CliError('luarocks finds no nffi rock in its trees; give the tree: --luarocks-tree DIR');
  }
  return tree;
}
