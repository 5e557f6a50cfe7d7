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

/** What each protocol method does, in the words of the commands. */
const METHOD_WORDS: Record<string, string> = {
  'Lua.getCoroutines': 'listing coroutines',
  'Lua.getStack': 'reading the stack',
  'FFI.getRuntimes': 'reading the queues',
  'FFI.getTasks': 'listing tasks',
  'Agent.getStats': "reading the agent's state",
  'Debugger.setBreakpointByUrl': 'setting the breakpoint',
  'Debugger.removeBreakpoint': 'removing the breakpoint',
  'Debugger.getScripts': 'listing loaded chunks',
  'Debugger.getBreakpoints': 'listing breakpoints',
  'Runtime.evaluate': 'evaluating',
  'Target.getTargets': 'listing workers',
};

const METHOD = /\b(?:Lua|FFI|Agent|Debugger|Runtime|Target|Session)\.[a-z][A-Za-z]*\b/g;

/** `Lua.getStack` → `reading the stack`; a method not in the list → `a request to the agent`. */
export const methodWords = (method: string): string => METHOD_WORDS[method] ?? 'a request to the agent';

/**
 * A message as people read it: no protocol method names (issue 14). `'Lua.getStack' wasn't
 * found` (a serve probe older than this CLI) says which action that probe cannot do; `M in
 * worker P: …`, `M to worker P`, `M: …` name the action instead of the method.
 */
export function userMessage(message: string): string {
  return message
    .replace(/'((?:Lua|FFI|Agent|Debugger|Runtime|Target|Session)\.[a-z][A-Za-z]*)' wasn't found/g,
      (_, m: string) => `the serve probe cannot do ${methodWords(m)} (it is older than this nffi-inspect: restart serve)`)
    .replace(METHOD, (m) => methodWords(m));
}
