// `nffi-inspect config [--json]`: the nginx.conf lines that enable the agent.
import type { Command } from 'commander';
import { nginxConfig, renderNginxConfig } from '../../probe/nginx-config.js';

interface ConfigOptions {
  json?: boolean;
}

export function registerConfig(program: Command): void {
  program
    .command('config')
    .description('print the lines to add to nginx.conf to enable the agent')
    .option('--json', 'print a JSON object instead of nginx.conf text')
    .action((opts: ConfigOptions) => {
      const cfg = nginxConfig();
      process.stdout.write(opts.json ? JSON.stringify(cfg, null, 2) + '\n' : renderNginxConfig(cfg));
    });
}
