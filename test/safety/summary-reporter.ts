// The summary `npm run test:safety` ends with (test/safety/vitest.config.ts): per test file, how
// many tests passed and failed and how long it took; the corpora condensed (cases, worst answer
// and worst event-loop hold); the soak's and the faults' own `[safety]` lines; and the known
// bugs, each failing until it is fixed. The tests' full output (the corpus tables) comes before.
import type { Reporter, TestModule } from 'vitest/node';

interface ConsoleLog { content: string; type: 'stdout' | 'stderr' }

interface FramesRow { name: string; outcome: string; ping: number; hold: number }

const KNOWN_BUGS = 'known-bugs.spec.ts';

export default class SafetySummary implements Reporter {
  private readonly safety: string[] = [];
  private readonly cond: string[] = [];
  private readonly frames: FramesRow[] = [];

  onUserConsoleLog(log: ConsoleLog): void {
    const lines = log.content.split('\n');
    if (lines[0]?.startsWith('case ') && /outcome .*worst \/ping ms .*worst hold ms/.test(lines[0])) {
      for (const line of lines.slice(1)) {
        const cols = line.trim().split(/\s{2,}/);
        if (cols.length < 5) continue;
        const [wall, hold, ping] = cols.slice(-3).reverse().map(Number);
        if (wall === undefined || Number.isNaN(hold!)) continue;
        this.frames.push({ name: cols[0]!, outcome: cols[1]!, ping: ping!, hold: hold! });
      }
      return;
    }
    for (const line of lines) {
      if (line.startsWith('[safety] ')) this.safety.push(line.slice('[safety] '.length));
      else if (line.startsWith('[cond] ')) this.cond.push(line.slice('[cond] '.length));
    }
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const out: string[] = ['', '== nffi-inspect safety summary (issue 11; docs/safety.md) =='];
    const rows = modules.map((m) => {
      const tests = [...m.children.allTests()];
      const count = (s: string): number => tests.filter((t) => t.result().state === s).length;
      const file = m.moduleId.replace(/^.*?\/test\//, 'test/');
      return [file, String(tests.length), String(count('passed')), String(count('failed')), `${(m.diagnostic().duration / 1000).toFixed(0)} s`];
    }).sort((a, b) => a[0]!.localeCompare(b[0]!));
    const head = ['file', 'tests', 'passed', 'failed', 'time'];
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const r of [head, ...rows]) out.push(r.map((c, i) => (i ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  '));

    out.push('', 'corpora:');
    if (this.frames.length) {
      const worstPing = this.frames.reduce((a, b) => (b.ping > a.ping ? b : a));
      const worstHold = this.frames.reduce((a, b) => (b.hold > a.hold ? b : a));
      out.push(`  hostile frames: ${this.frames.length} runs; worst /ping ${worstPing.ping.toFixed(1)} ms (${worstPing.name}); `
        + `worst event-loop hold ${worstHold.hold.toFixed(2)} ms CPU (${worstHold.name})`);
    } else out.push('  hostile frames: no table printed (test/hostile-frames.test.ts did not run to its end)');
    const condFile = modules.find((m) => m.moduleId.endsWith('/conditions.test.ts'));
    if (condFile) {
      const cases = [...condFile.children.allTests()];
      const failed = cases.filter((t) => t.result().state === 'failed').length;
      const worst = Math.max(0, ...this.cond.map((l) => Number(/worst request (\d+) µs CPU/.exec(l)?.[1] ?? 0)));
      out.push(`  conditions: ${cases.length} tests (each corpus case run twice), ${failed} failed; `
        + `worst request with a budget-overrunning condition ${worst} µs CPU`);
    }

    const soak = this.safety.filter((l) => l.startsWith('soak ') && !l.startsWith('soak detail'));
    out.push('', 'soak:', ...(soak.length ? soak.map((l) => `  ${l}`) : ['  (did not report)']));
    const faults = this.safety.filter((l) => l.startsWith('fault '));
    out.push('', 'faults:', ...(faults.length ? faults.map((l) => `  ${l.slice('fault '.length)}`) : ['  (did not report)']));

    const bugs = modules.find((m) => m.moduleId.endsWith(KNOWN_BUGS));
    if (bugs) {
      out.push('', `known product bugs (${KNOWN_BUGS}; each fails until fixed):`);
      for (const t of bugs.children.allTests()) out.push(`  ${t.result().state === 'passed' ? 'FIXED ' : 'open  '} ${t.name}`);
      for (const l of this.safety.filter((x) => x.startsWith('known bug '))) out.push(`    ${l}`);
    }
    const failedElsewhere = modules.filter((m) => !m.moduleId.endsWith(KNOWN_BUGS))
      .flatMap((m) => [...m.children.allTests()].filter((t) => t.result().state === 'failed').map((t) => `  ${t.fullName}`));
    out.push('', failedElsewhere.length ? `FAILED outside the known bugs (${failedElsewhere.length}):` : 'every guarantee test passed', ...failedElsewhere);
    console.log(out.join('\n'));
  }
}
