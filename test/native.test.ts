// libnffi's own C tests (queue, abandon in every state, spin races, wake socket)
// under ASan/UBSan, TSan and the no-instrumentation build.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const NATIVE = fileURLToPath(new URL('../native', import.meta.url));

describe('libnffi C tests', () => {
  it('pass under every sanitizer build', async () => {
    const { stdout } = await run('make', ['-s', '-C', NATIVE, 'test'], { maxBuffer: 16 << 20 });
    const summaries = stdout.split('\n').filter((l) => /^\d+ passed, \d+ failed$/.test(l.trim()));
    expect(summaries).toHaveLength(3);
    for (const line of summaries) expect(line).toMatch(/^\d+ passed, 0 failed$/);
  }, 180_000);
});
