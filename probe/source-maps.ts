// Source maps for generated Lua (TypeScriptToLua and the like): a breakpoint's FILE:LINE may
// name the original source (`handler.ts:12`), and hits show original positions beside the Lua
// ones. The map of a chunk is `<file>.map` next to it, or the file named by a
// `--# sourceMappingURL=<path>` / `-- sourceMappingURL=<path>` comment at the end of the Lua
// file (relative to it). Maps are read with the `source-map` package once per file and mtime and
// kept as two line tables, so lookups on the hit path are synchronous and cheap.
import { readFileSync, statSync, openSync, readSync, closeSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { debuglog } from 'node:util';
import { SourceMapConsumer, type RawSourceMap } from 'source-map';
import type { Debugger } from './protocol-types.js';

const trace = debuglog('nffi');

/** How much of a Lua file's end is searched for a sourceMappingURL comment. */
const TAIL_BYTES = 1024;
const URL_COMMENT = /--#?\s*sourceMappingURL=(\S+)\s*$/;

/** One mapping, lines 1-based (the `source-map` package's convention). */
export interface LineMapping {
  generatedLine: number;
  generatedColumn: number;
  source: string | null;
  originalLine: number | null;
}

/** Where an original FILE:LINE runs in the generated Lua. */
export interface GeneratedTarget {
  line: number;
  /** The original line it comes from: the requested one, or the next one with code. */
  original: number;
  /** The requested original line, when it has no code. */
  moved_from?: number;
}

/** Does FILE (a path suffix, as for chunk sources) name `path`? */
export function matchesPath(url: string, path: string): boolean {
  if (url === path) return true;
  return path.length > url.length && path.endsWith(url) && path[path.length - url.length - 1] === '/';
}

/** A FILE that cannot be a Lua chunk's own name (nor a chunk name, nor a task breakpoint's
 * ffi:RUNTIME.METHOD): it may name an original source. */
export function mayBeOriginal(url: string): boolean {
  return !url.endsWith('.lua') && !url.startsWith('=') && !url.startsWith('ffi:');
}

/** The line tables of one map: generated line -> original position (the line's first mapping
 * with a source), and per original source, original line -> first generated line. */
export class LineMap {
  private readonly toOrig = new Map<number, Debugger.OriginalPosition>();
  private readonly toGen = new Map<string, Map<number, number>>();

  /** `sources`: the map's sources resolved to paths; mappings name them as given there. */
  constructor(mappings: Iterable<LineMapping>, resolveSource: (s: string) => string = (s) => s) {
    const firstCol = new Map<number, number>();
    for (const m of mappings) {
      if (m.source === null || m.originalLine === null) continue;
      const source = resolveSource(m.source);
      const col = firstCol.get(m.generatedLine);
      if (col === undefined || m.generatedColumn < col) {
        firstCol.set(m.generatedLine, m.generatedColumn);
        this.toOrig.set(m.generatedLine, { source, line: m.originalLine });
      }
      let lines = this.toGen.get(source);
      if (!lines) this.toGen.set(source, (lines = new Map()));
      const g = lines.get(m.originalLine);
      if (g === undefined || m.generatedLine < g) lines.set(m.originalLine, m.generatedLine);
    }
  }

  /** The original sources (resolved paths). */
  sources(): string[] {
    return [...this.toGen.keys()];
  }

  /** The original position of a generated line, if the map covers it. */
  original(line: number): Debugger.OriginalPosition | undefined {
    return this.toOrig.get(line);
  }

  /** The first generated line of `source`:`line`, or of the next original line that has one. */
  generated(source: string, line: number): GeneratedTarget | undefined {
    const lines = this.toGen.get(source);
    if (!lines) return undefined;
    const exact = lines.get(line);
    if (exact !== undefined) return { line: exact, original: line };
    let next: number | undefined;
    for (const l of lines.keys()) if (l > line && (next === undefined || l < next)) next = l;
    if (next === undefined) return undefined;
    return { line: lines.get(next)!, original: next, moved_from: line };
  }
}

/** Parse a map (the `source-map` package's consumer, released at once) into line tables. */
export async function parseMap(raw: RawSourceMap | string, mapPath: string): Promise<LineMap> {
  const json: RawSourceMap = typeof raw === 'string' ? JSON.parse(raw) : raw;
  const consumer = await new SourceMapConsumer(json, pathToFileURL(mapPath).href);
  try {
    const list: LineMapping[] = [];
    consumer.eachMapping((m) => list.push({ generatedLine: m.generatedLine, generatedColumn: m.generatedColumn, source: m.source, originalLine: m.originalLine }));
    // Given the map's URL, the consumer resolves sources (and sourceRoot) to file: URLs.
    return new LineMap(list, (s) => (s.startsWith('file:') ? fileURLToPath(s) : resolve(dirname(mapPath), s)));
  } finally {
    consumer.destroy();
  }
}

/** The map file of a Lua file: `<file>.map`, else its trailing sourceMappingURL comment. */
export function findMapFile(luaPath: string): string | undefined {
  const beside = `${luaPath}.map`;
  if (isFile(beside)) return beside;
  let tail: string;
  try {
    const fd = openSync(luaPath, 'r');
    try {
      const size = statSync(luaPath).size;
      const buf = Buffer.alloc(Math.min(TAIL_BYTES, size));
      readSync(fd, buf, 0, buf.length, size - buf.length);
      tail = buf.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const m = URL_COMMENT.exec(tail.trimEnd());
  if (!m || m[1]!.startsWith('data:')) return undefined;
  const file = resolve(dirname(luaPath), decodeURIComponent(m[1]!.replace(/^file:\/\//, '')));
  return isFile(file) ? file : undefined;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

interface Cached {
  key: string;
  map: LineMap | undefined;
}

/** Where an original FILE:LINE was found: the generated chunk and line to arm. */
export interface Resolution {
  /** The chunk source to give the agent (as getScripts named it). */
  url: string;
  line: number;
  original: Debugger.OriginalPosition;
  moved_from?: number;
}

/** The maps of the chunks a session has seen, by chunk source (a path). */
export class SourceMaps {
  private readonly cache = new Map<string, Cached>();
  private readonly loading = new Set<string>();

  /** The map of chunk `source` (relative sources are resolved against `cwd`), loaded or reloaded
   * when the Lua or map file changed; undefined when it has none. */
  async load(source: string, cwd?: string): Promise<LineMap | undefined> {
    if (source.startsWith('=')) return undefined;
    const file = isAbsolute(source) || !cwd ? source : resolve(cwd, source);
    const mapFile = findMapFile(file);
    const key = mapFile ? `${mapFile}@${mtime(file)}:${mtime(mapFile)}` : '';
    const hit = this.cache.get(source);
    if (hit && hit.key === key) return hit.map;
    let map: LineMap | undefined;
    if (mapFile) {
      try {
        map = await parseMap(readFileSync(mapFile, 'utf8'), mapFile);
      } catch (err) {
        trace('source map %s: %s', mapFile, (err as Error).message);
      }
    }
    this.cache.set(source, { key, map });
    return map;
  }

  /** The map of `source` if loaded already (the hit path: no I/O). */
  peek(source: string): LineMap | undefined {
    return this.cache.get(source)?.map;
  }

  /** The original position of a generated chunk line, from the loaded maps. A chunk not looked
   * at yet has its map loaded in the background, for the next hits. */
  original(source: string, line: number, cwd?: string): Debugger.OriginalPosition | undefined {
    if (!this.cache.has(source) && !this.loading.has(source) && !source.startsWith('=')) {
      this.loading.add(source);
      void this.load(source, cwd).catch(() => undefined).finally(() => this.loading.delete(source));
    }
    return this.peek(source)?.original(line);
  }

  /** Map FILE:LINE on an original source to the generated chunk among `scripts` (loading their
   * maps). Undefined when no map names FILE; an error when several do or the line has no code. */
  async resolve(url: string, line: number, scripts: { source: string; cwd?: string }[]): Promise<Resolution | undefined> {
    const found: { chunk: string; source: string; map: LineMap }[] = [];
    for (const s of scripts) {
      const map = await this.load(s.source, s.cwd);
      for (const src of map?.sources() ?? []) {
        if (matchesPath(url, src) && !found.some((f) => f.chunk === s.source && f.source === src)) found.push({ chunk: s.source, source: src, map: map! });
      }
    }
    if (found.length === 0) return undefined;
    if (found.length > 1) {
      throw new Error(`${url} is ambiguous: it names ${found.map((f) => `${f.source} (${f.chunk})`).join(', ')}`);
    }
    const f = found[0]!;
    const g = f.map.generated(f.source, line);
    if (!g) throw new Error(`${f.source} has no code at or after line ${line} in ${f.chunk}'s source map`);
    const r: Resolution = { url: f.chunk, line: g.line, original: { source: f.source, line: g.original } };
    if (g.moved_from !== undefined) r.moved_from = g.moved_from;
    return r;
  }
}

function mtime(p: string): number {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return 0;
  }
}
