// Expected failures of the probe (no such process, no agent, permission denied, a request that
// timed out or a link that closed). Their message is one line meant for the user; cli/main.ts
// prints it as `nffi-inspect: <message>` and exits 1 (the probe does not import cli/).
export class ProbeError extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
    this.name = 'ProbeError';
  }
}

/** An error response from an agent: `{code, message}` in the frame. */
export class AgentError extends ProbeError {
  /** The agent's own message, without the method/worker prefix. */
  readonly agentMessage?: string;

  constructor(message: string, readonly agentCode?: number) {
    super(message, 'agent');
    this.name = 'AgentError';
  }
}
