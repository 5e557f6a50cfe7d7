// The one error type commands throw for expected failures (bad arguments, nothing to attach
// to, ...). cli/main.ts catches it in one place and prints `nffi-inspect: <message>`.

/** Exit codes: 1 = the command failed, 2 = the command line was wrong. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
    this.name = 'UsageError';
  }
}
