// CLI entry (bin/nffi-inspect.js imports this). The only place errors are turned into a
// message and an exit code: `nffi-inspect: <message>` on stderr, 1 for failures, 2 for
// usage errors. No stack traces for expected errors.
import { CommanderError, type Command } from 'commander';
import { ProbeError } from '../probe/errors.js';
import { CliError, EXIT_FAILURE, EXIT_USAGE, userMessage } from './errors.js';
import { baseProgram, LIGHT_COMMANDS } from './base.js';
import { termText } from './format/escape.js';

/** A command that reads only /proc and files (ps, config) alone; else every command (their
 * modules take ~0.3 s to load, the TUI's among them). */
async function programFor(argv: string[]): Promise<Command> {
  const light = LIGHT_COMMANDS[argv[2] ?? ''];
  if (light) {
    const program = baseProgram();
    (await light())(program);
    return program;
  }
  return (await import('./program.js')).buildProgram();
}

async function main(argv: string[]): Promise<number> {
  try {
    await (await programFor(argv)).parseAsync(argv);
    return 0;
  } catch (err) {
    return report(err);
  }
}

function report(err: unknown): number {
  if (err instanceof CommanderError) return reportCommander(err);
  if (err instanceof CliError) {
    printError(err.message);
    return err.exitCode;
  }
  // The probe's expected failures (not nginx, no agent, permission denied, timeouts).
  if (err instanceof ProbeError) {
    printError(err.message);
    return EXIT_FAILURE;
  }
  // Anything else is a bug in nffi-inspect: keep the stack, it is what a bug report needs.
  const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
  printError(`internal error: ${detail}`);
  return EXIT_FAILURE;
}

function reportCommander(err: CommanderError): number {
  // --help and --version end through exitOverride too, with exit code 0.
  if (err.exitCode === 0) return 0;
  // 'commander.help': no command given; the help text already went to stderr.
  if (err.code !== 'commander.help') {
    printError(oneLine(err.message.replace(/^error:\s*/, '')));
  }
  return EXIT_USAGE;
}

/** Commander puts suggestions ("(Did you mean config?)") on a second line. */
function oneLine(message: string): string {
  return message.split('\n').map((s) => s.trim()).filter(Boolean).join(' ');
}

/** Messages carry worker text (agent errors, chunk names): escaped for the terminal; protocol
 * method names become what they do (cli/errors.ts). */
function printError(message: string): void {
  process.stderr.write(`nffi-inspect: ${termText(userMessage(message))}\n`);
}

// process.exitCode, not process.exit(): let stdout drain when piped.
process.exitCode = await main(process.argv);
