// Where the checkout (or installed package) lives. This module runs both as source
// (probe/repo-root.ts under vitest) and compiled (dist/probe/repo-root.js), so walk up to
// the package.json that names us rather than counting '..'.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'nffi-inspect';

let cached: string | undefined;

export function repoRoot(): string {
  cached ??= findRoot(dirname(fileURLToPath(import.meta.url)));
  return cached;
}

function findRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (isOurPackage(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) break;
  }
  throw new Error(`cannot find the ${PACKAGE_NAME} package.json above ${start}`);
}

function isOurPackage(file: string): boolean {
  if (!existsSync(file)) return false;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown }).name === PACKAGE_NAME;
  } catch {
    return false;
  }
}
