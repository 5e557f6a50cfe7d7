// Generates probe/protocol-types.ts from probe/protocol.json (the single source of truth for
// messages), the way vscode-js-debug generates types for its custom CDP domains: one
// namespace per domain with its types, `<Command>Params`/`<Command>Result` and
// `<Event>Event` interfaces, plus maps from "Domain.method" to them.
//
//   node dist/scripts/gen-protocol-types.js            write the file when it changed
//   node dist/scripts/gen-protocol-types.js --check    exit 1 when the file is stale
//   node dist/scripts/gen-protocol-types.js --rebuild  write, and re-run tsc when it changed
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../probe/repo-root.js';

export interface Prop {
  name?: string;
  id?: string;
  type?: string;
  $ref?: string;
  items?: Prop;
  enum?: string[];
  optional?: boolean;
  description?: string;
  properties?: Prop[];
  /** A map (an object with arbitrary keys): the type of its values (JSON Schema's word). */
  additionalProperties?: Prop;
}

export interface Member { name: string; description?: string; parameters?: Prop[]; returns?: Prop[] }

export interface Domain {
  domain: string;
  description?: string;
  types?: Prop[];
  commands?: Member[];
  events?: Member[];
}

export interface Descriptor { version: { major: string; minor: string }; domains: Domain[] }

export const PROTOCOL_JSON = (root = repoRoot()): string => join(root, 'probe', 'protocol.json');
export const PROTOCOL_TYPES = (root = repoRoot()): string => join(root, 'probe', 'protocol-types.ts');

const upper = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

function typeOf(p: Prop, indent: string): string {
  if (p.$ref) return p.$ref;
  if (p.enum) return p.enum.map((e) => JSON.stringify(e)).join(' | ');
  switch (p.type) {
    case 'integer':
    case 'number':
      return 'number';
    case 'string':
    case 'boolean':
      return p.type;
    case 'any':
      return 'unknown';
    case 'array':
      return p.items ? `${wrap(typeOf(p.items, indent))}[]` : 'unknown[]';
    case 'object':
      if (p.properties) return objectLiteral(p.properties, indent);
      return `Record<string, ${p.additionalProperties ? typeOf(p.additionalProperties, indent) : 'unknown'}>`;
    default:
      return 'unknown';
  }
}

const wrap = (t: string): string => (t.includes('|') ? `(${t})` : t);

function doc(text: string | undefined, indent: string): string[] {
  return text ? [`${indent}/** ${text.replace(/\*\//g, '*\\/')} */`] : [];
}

function fields(props: Prop[], indent: string): string[] {
  return props.flatMap((p) => [
    ...doc(p.description, indent),
    `${indent}${p.name}${p.optional ? '?' : ''}: ${typeOf(p, indent)};`,
  ]);
}

function objectLiteral(props: Prop[], indent: string): string {
  return ['{', ...fields(props, indent + '  '), `${indent}}`].join('\n');
}

function iface(name: string, props: Prop[] | undefined, indent: string, description?: string): string[] {
  const body = props && props.length ? fields(props, indent + '  ') : [];
  return [
    ...doc(description, indent),
    body.length ? `${indent}export interface ${name} {` : `${indent}export interface ${name} {}`,
    ...(body.length ? [...body, `${indent}}`] : []),
  ];
}

function domainBlock(d: Domain): string[] {
  const out: string[] = [...doc(d.description, ''), `export namespace ${d.domain} {`];
  for (const t of d.types ?? []) {
    if (t.type === 'object') out.push(...iface(t.id!, t.properties, '  ', t.description));
    else out.push(...doc(t.description, '  '), `  export type ${t.id} = ${typeOf(t, '  ')};`);
  }
  for (const c of d.commands ?? []) {
    out.push(...iface(`${upper(c.name)}Params`, c.parameters, '  ', c.description));
    out.push(...iface(`${upper(c.name)}Result`, c.returns, '  '));
  }
  for (const e of d.events ?? []) out.push(...iface(`${upper(e.name)}Event`, e.parameters, '  ', e.description));
  out.push('}');
  return out;
}

export function renderProtocolTypes(desc: Descriptor): string {
  const out = [
    '// generated — do not edit. Source: probe/protocol.json; regenerate with',
    '// `node dist/scripts/gen-protocol-types.js` (npm run build does it).',
    '/* eslint-disable */',
    `export const PROTOCOL_VERSION = '${desc.version.major}.${desc.version.minor}';`,
    '',
  ];
  for (const d of desc.domains) out.push(...domainBlock(d), '');
  out.push('/** Every command: "Domain.method" → its params and result. */', 'export interface Commands {');
  for (const d of desc.domains) {
    for (const c of d.commands ?? []) {
      const n = `${d.domain}.${upper(c.name)}`;
      out.push(`  '${d.domain}.${c.name}': { params: ${n}Params; result: ${n}Result };`);
    }
  }
  out.push('}', '', '/** Every event: "Domain.event" → its params. */', 'export interface Events {');
  for (const d of desc.domains) {
    for (const e of d.events ?? []) out.push(`  '${d.domain}.${e.name}': ${d.domain}.${upper(e.name)}Event;`);
  }
  out.push('}', '');
  return out.join('\n');
}

export function loadDescriptor(root = repoRoot()): Descriptor {
  return JSON.parse(readFileSync(PROTOCOL_JSON(root), 'utf8')) as Descriptor;
}

function current(root: string): string {
  try {
    return readFileSync(PROTOCOL_TYPES(root), 'utf8');
  } catch {
    return '';
  }
}

function main(args: string[]): number {
  const root = repoRoot();
  const fresh = renderProtocolTypes(loadDescriptor(root));
  if (fresh === current(root)) return 0;
  if (args.includes('--check')) {
    process.stderr.write('probe/protocol-types.ts is stale: run node dist/scripts/gen-protocol-types.js\n');
    return 1;
  }
  writeFileSync(PROTOCOL_TYPES(root), fresh);
  process.stderr.write('gen-protocol-types: wrote probe/protocol-types.ts\n');
  if (args.includes('--rebuild')) {
    execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', root], { stdio: 'inherit' });
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
