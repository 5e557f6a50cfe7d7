// tui/term.ts: the terminal description picked for each TERM (no terminfo error or dump reaches
// the user), NO_COLOR, and the terminal coming back on every way out: dispose, an exception in
// guarded code, and — in a child process with the real process hooks — an uncaught exception,
// SIGTERM, SIGINT and process.exit().
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { line, span } from '../tui/style.js';
import blessed from 'blessed';
import { createTerm, keyName, pickTerminal, TermError, type BlessedUnicode, type Term } from '../tui/term.js';
import { fakeTty, testTerm } from '../tui/testing.js';

const LEAVE_ALT = '\x1b[?1049l';
const SHOW_CURSOR = '\x1b[?25h';
// SGR colour parameters: 30–39, 40–49, 90–97, 100–107 (38;5;n and 48;5;n start with 38/48).
const COLOUR_SGR = /\x1b\[(?:[\d;]*;)?(?:3\d|4\d|9[0-7]|10[0-7])(?:;[\d;]*)?m/;

const terms: Term[] = [];
afterEach(() => {
  for (const t of terms.splice(0)) t.dispose();
  vi.restoreAllMocks();
});

describe('pickTerminal', () => {
  it.each([
    ['xterm-256color', 'xterm-256color', true],
    ['tmux-256color', 'xterm-256color', true],
    ['screen-256color', 'xterm-256color', true],
    ['rxvt-unicode-256color', 'xterm-256color', true],
    ['xterm', 'xterm', true],
    ['screen', 'screen', true],
    ['tmux', 'tmux', true],
    ['linux', 'linux', true],
    ['vt100', 'vt100', false],
    ['xterm-kitty', 'xterm', true],
    ['alacritty', 'xterm', true],
  ])('TERM=%s → %s (colour %s)', (TERM, terminal, color) => {
    expect(pickTerminal({ TERM, LANG: 'C.UTF-8' })).toEqual({ terminal, color, unicode: TERM !== 'linux' });
  });

  it('takes 256 colours from COLORTERM=truecolor', () => {
    expect(pickTerminal({ TERM: 'xterm-kitty', COLORTERM: 'truecolor' }).terminal).toBe('xterm-256color');
  });

  it('honours NO_COLOR (any non-empty value) and a non-UTF-8 locale', () => {
    expect(pickTerminal({ TERM: 'xterm-256color', NO_COLOR: '1', LANG: 'C.UTF-8' }).color).toBe(false);
    expect(pickTerminal({ TERM: 'xterm-256color', NO_COLOR: '', LANG: 'C.UTF-8' }).color).toBe(true);
    expect(pickTerminal({ TERM: 'xterm-256color', LANG: 'C' }).unicode).toBe(false);
    expect(pickTerminal({ TERM: 'xterm', LC_ALL: 'en_US.utf8', LANG: 'C' }).unicode).toBe(true);
  });

  it.each([undefined, '', 'dumb'])('refuses TERM=%j with a sentence, not a crash', (TERM) => {
    expect(() => pickTerminal({ TERM })).toThrow(TermError);
    expect(() => pickTerminal({ TERM })).toThrow(/one-shot commands/);
  });
});

describe('createTerm', () => {
  it.each(['tmux-256color', 'screen-256color', 'xterm-256color', 'xterm', 'linux'])(
    'TERM=%s: builds the screen without a word on stderr or in the frame', (TERM) => {
      const errors: string[] = [];
      vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { errors.push(String(chunk)); return true; });
      vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => { errors.push(args.join(' ')); });
      vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => { errors.push(args.join(' ')); });
      const tty = fakeTty(80, 24);
      const term = createTerm({ env: { TERM, LANG: 'C.UTF-8' }, processHooks: false, input: tty.input, output: tty.output });
      terms.push(term);
      const s = term.surface();
      s.place({ x: 0, y: 0, width: 80, height: 1 });
      s.setLines([line('hello')]);
      term.render();
      vi.restoreAllMocks();
      expect(errors).toEqual([]);
      expect(term.frame().split('\n')).toEqual(['hello', ...new Array<string>(23).fill('')]);
      expect(tty.written()).not.toMatch(/terminfo|error/i);
    });

  it('answers blessed\'s width question for printable ASCII itself, with blessed\'s answer for every character', () => {
    const tty = fakeTty(20, 2);
    const term = createTerm({ env: { TERM: 'xterm', LANG: 'C.UTF-8' }, processHooks: false, input: tty.input, output: tty.output });
    terms.push(term);
    const u = (blessed as unknown as { unicode: BlessedUnicode }).unicode;
    const own = u.blessedCharWidth!;
    expect(u.charWidth).not.toBe(own);
    const differ: number[] = [];
    for (let cp = 0; cp < 0x3100; cp++) {
      const ch = String.fromCodePoint(cp);
      if (u.charWidth(ch) !== own(ch) || u.charWidth(`x${ch}`, 1) !== own(`x${ch}`, 1)) differ.push(cp);
    }
    expect(differ).toEqual([]);
    const s = term.surface();
    s.place({ x: 0, y: 0, width: 20, height: 1 });
    s.setLines([line('ab中c─d')]);
    term.render();
    expect(term.frame().split('\n')[0]).toBe('ab中c─d');
  });

  it('refuses a stream that is not a TTY', () => {
    const tty = fakeTty(80, 24);
    tty.output.isTTY = false;
    expect(() => createTerm({ env: { TERM: 'xterm' }, processHooks: false, input: tty.input, output: tty.output })).toThrow(TermError);
  });

  it('does not run tmux -V when the injected environment has no TMUX', () => {
    const before = process.env.TMUX;
    process.env.TMUX = '/tmp/nonexistent-tmux-socket,1,0';
    try {
      const { term } = testTerm(80, 24);
      terms.push(term);
      expect(process.env.TMUX).toBe('/tmp/nonexistent-tmux-socket,1,0');
    } finally {
      if (before === undefined) delete process.env.TMUX;
      else process.env.TMUX = before;
    }
  });

  it('paints colour roles as colour SGR, and none at all under NO_COLOR', () => {
    const row = line([span('ok', 'ok'), span(' warn', 'warn'), span(' bad', 'bad'), span(' key', 'key')], 'titleFocus');
    for (const [env, coloured] of [[{}, true], [{ NO_COLOR: '1' }, false]] as const) {
      const { term } = testTerm(40, 3, { env: { TERM: 'xterm-256color', LANG: 'C.UTF-8', ...env } });
      terms.push(term);
      const s = term.surface();
      s.place({ x: 0, y: 0, width: 40, height: 2 });
      s.setLines([row, line('sel', 'selected')]);
      term.render();
      const shot = term.screenshot();
      expect(COLOUR_SGR.test(shot)).toBe(coloured);
      expect(shot).toContain('\x1b[');
      expect(term.frame().split('\n')[0]).toBe('ok warn bad key');
    }
  });

  it('a --no-color option does what NO_COLOR does', () => {
    const { term } = testTerm(20, 2, { color: false });
    terms.push(term);
    expect(term.theme.color).toBe(false);
  });
});

describe('restoring the terminal', () => {
  it('dispose leaves the alternate screen, shows the cursor and ends raw mode, once', async () => {
    const { term, tty } = testTerm(80, 24);
    term.onKey(() => {});
    term.render();
    await new Promise((resolve) => setImmediate(resolve)); // blessed flushes on the next tick
    expect(tty.written()).toContain('\x1b[?1049h');
    expect(tty.input.isRaw).toBe(true);
    const before = tty.written().length;
    term.dispose();
    const after = tty.written().slice(before);
    expect(after).toContain(LEAVE_ALT);
    expect(after).toContain(SHOW_CURSOR);
    expect(tty.input.isRaw).toBe(false);
    term.dispose();
    expect(tty.written().length).toBe(before + after.length);
    expect(term.disposed).toBe(true);
  });

  it('guard restores the terminal before an exception goes on', () => {
    const { term, tty } = testTerm(80, 24);
    terms.push(term);
    expect(() => term.guard(() => { throw new Error('boom'); })).toThrow('boom');
    expect(term.disposed).toBe(true);
    expect(tty.written()).toContain(LEAVE_ALT);
    expect(tty.written()).toContain(SHOW_CURSOR);
  });

  it('leaves no process listeners behind', () => {
    const counts = () => ['exit', 'uncaughtException', 'uncaughtExceptionMonitor', 'SIGINT', 'SIGTERM']
      .map((e) => process.listenerCount(e));
    const before = counts();
    const tty = fakeTty(80, 24);
    const term = createTerm({ env: { TERM: 'xterm', LANG: 'C.UTF-8' }, input: tty.input, output: tty.output });
    expect(process.listenerCount('uncaughtExceptionMonitor')).toBe(before[2]! + 1);
    term.dispose();
    expect(counts()).toEqual(before);
  });

  // The real hooks, in a child (dist/ is compiled by the global setup).
  const child = (how: string) => {
    const dist = (p: string) => fileURLToPath(new URL(`../dist/tui/${p}`, import.meta.url));
    const script = `
      const { createTerm } = await import(${JSON.stringify(dist('term.js'))});
      const { fakeTty } = await import(${JSON.stringify(dist('testing.js'))});
      const tty = fakeTty(80, 24);
      tty.output.on('data', (d) => process.stdout.write(d));
      createTerm({ env: { TERM: 'xterm-256color', LANG: 'C.UTF-8' }, input: tty.input, output: tty.output });
      process.stdout.write('<ready>');
      setTimeout(() => { ${how} }, 20);
      setTimeout(() => {}, 5000);
    `;
    return spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, TMUX: '' } });
  };
  const restoredAfterReady = (out: string) => {
    const tail = out.slice(out.indexOf('<ready>'));
    return tail.includes(LEAVE_ALT) && tail.includes(SHOW_CURSOR);
  };

  it('an uncaught exception: restored, then Node reports it and exits 1', () => {
    const r = child(`throw new Error('boom in a timer')`);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('boom in a timer');
    expect(restoredAfterReady(r.stdout)).toBe(true);
  });

  it('an unhandled rejection: the same', () => {
    const r = child(`Promise.reject(new Error('rejected'))`);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('rejected');
    expect(restoredAfterReady(r.stdout)).toBe(true);
  });

  it.each(['SIGTERM', 'SIGINT'])('%s: restored, then the process ends by the signal', (sig) => {
    const r = child(`process.kill(process.pid, '${sig}')`);
    expect(r.signal).toBe(sig);
    expect(restoredAfterReady(r.stdout)).toBe(true);
  });

  it('process.exit(): restored on the way out', () => {
    const r = child('process.exit(3)');
    expect(r.status).toBe(3);
    expect(restoredAfterReady(r.stdout)).toBe(true);
  });
});

describe('keyName', () => {
  it.each<[string | undefined, Record<string, unknown> | undefined, string | undefined]>([
    ['j', { name: 'j', full: 'j' }, 'j'],
    ['G', { name: 'g', full: 'S-g', shift: true }, 'G'],
    ['?', { full: '?' }, '?'],
    ['日', { full: '日' }, '日'],
    [' ', { name: 'space', full: 'space' }, 'space'],
    ['\r', { name: 'enter', full: 'enter' }, 'enter'],
    ['\r', { name: 'return', full: 'return' }, undefined],
    ['\n', { name: 'linefeed', full: 'linefeed' }, undefined],
    [undefined, { name: 'up', full: 'up' }, 'up'],
    [undefined, { name: 'tab', full: 'S-tab', shift: true }, 'S-tab'],
    ['\x03', { name: 'c', full: 'C-c', ctrl: true }, 'C-c'],
    ['\x1b', { name: 'escape', full: 'escape' }, 'escape'],
  ])('%j %j → %j', (ch, key, out) => expect(keyName(ch, key)).toBe(out));
});
