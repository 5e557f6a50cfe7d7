// The agent link over an in-memory transport pair: requests and responses by id, errors with
// the caller's stack, timeouts, every pending request rejected on close, events, heartbeat.
import { describe, expect, it } from 'vitest';
import { AgentLink } from '../probe/agent-link.js';
import { transportPair, type Transport } from '../probe/transport.js';

const hello = {
  token: 't', pid: 4242, worker_id: 1, uid: 0,
  versions: { nginx: '1', ngx_lua: '1', luajit: '1', agent: '1' }, jit: { enabled: true, flags: [] },
};

function setup(opts = {}) {
  const [probeSide, agentSide] = transportPair();
  const link = new AgentLink(probeSide, hello, opts);
  const seen: any[] = [];
  agentSide.onMessage((m) => seen.push(m));
  return { link, agent: agentSide as Transport, seen };
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('AgentLink', () => {
  it('matches responses to requests by id, in any order', async () => {
    const { link, agent, seen } = setup();
    const a = link.request('Lua.getCoroutines', { frames: 2 });
    const b = link.request('FFI.getRuntimes');
    await tick();
    expect(seen.map((m) => m.method)).toEqual(['Lua.getCoroutines', 'FFI.getRuntimes']);
    expect(seen[0].params).toEqual({ frames: 2 });
    agent.send({ id: seen[1].id, result: { runtimes: [] } });
    agent.send({ id: seen[0].id, result: { coroutines: [] } });
    await expect(b).resolves.toEqual({ runtimes: [] });
    await expect(a).resolves.toEqual({ coroutines: [] });
    link.close();
  });

  it('rejects with the agent error, with a stack pointing at the caller', async () => {
    const { link, agent, seen } = setup();
    async function callerOfGetStack() {
      return link.request('Lua.getStack', { coroutine: 9 });
    }
    const p = callerOfGetStack();
    await tick();
    agent.send({ id: seen[0].id, error: { code: -32000, message: 'no coroutine 9' } });
    const err = await p.catch((e: Error) => e);
    expect((err as Error).message).toBe('Lua.getStack in worker 4242: no coroutine 9');
    expect((err as Error).stack).toContain('callerOfGetStack');
    link.close();
  });

  it('times a request out', async () => {
    const { link } = setup({ requestTimeoutMs: 30 });
    await expect(link.request('FFI.getTasks')).rejects.toThrow(/did not answer within 30 ms/);
    link.close();
  });

  it('rejects every pending request when the link closes, and later ones at once', async () => {
    const { link, agent } = setup();
    const pending = [link.request('FFI.getTasks'), link.request('FFI.getRuntimes')];
    await tick();
    agent.dispose();
    for (const p of pending) await expect(p).rejects.toThrow(/link to worker 4242 closed/);
    await expect(link.request('FFI.getTasks')).rejects.toThrow(/is closed/);
    expect(link.closed).toBe(true);
  });

  it('passes events on and ignores responses nobody waits for', async () => {
    const { link, agent } = setup();
    const events: [string, unknown][] = [];
    link.onEvent((m, p) => events.push([m, p]));
    agent.send({ id: 99, result: {} });
    agent.send({ method: 'FFI.taskDone', params: { id: 1 } });
    await tick();
    expect(events).toEqual([['FFI.taskDone', { id: 1 }]]);
    link.close();
  });

  it('counts the agent\'s protocol errors (frames it could not answer by id) and passes them on', async () => {
    const { link, agent } = setup();
    const events: string[] = [];
    link.onEvent((m) => events.push(m));
    agent.send({ method: 'Agent.protocolError', params: { code: -32700, message: 'not valid JSON' } });
    agent.send({ method: 'Agent.protocolError', params: { code: -32600, message: 'a frame must be a JSON object' } });
    await tick();
    expect(link.protocolErrors).toBe(2);
    expect(events).toEqual(['Agent.protocolError', 'Agent.protocolError']);
    link.close();
  });

  it('pings every interval, answers the agent\'s own pings but not its answers', async () => {
    const { link, agent, seen } = setup({ pingIntervalMs: 20 });
    await tick(50);
    const pings = seen.filter((m) => m.method === 'Agent.ping').length;
    expect(pings).toBeGreaterThanOrEqual(2);
    agent.send({ method: 'Agent.ping' }); // an answer, right after our ping: no reply
    await tick(2);
    const afterAnswer = seen.filter((m) => m.method === 'Agent.ping').length;
    expect(afterAnswer).toBeLessThanOrEqual(pings + 1);
    link.close();
  });

  it('treats silence past the timeout as the agent gone', async () => {
    const { link } = setup({ pingIntervalMs: 10, silenceMs: 40 });
    const reason = await new Promise<string>((r) => link.onClose(r));
    expect(reason).toMatch(/no frame from worker 4242 for 40 ms/);
  });

  it('detach sends Agent.detach and closes once answered', async () => {
    const { link, agent } = setup();
    agent.onMessage((m: any) => {
      if (m.method === 'Agent.detach') agent.send({ id: m.id, result: {} });
    });
    await link.detach();
    expect(link.closed).toBe(true);
  });
});
