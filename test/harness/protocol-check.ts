// Checks a message against probe/protocol.json, strictly: every field it carries is declared,
// every field that is not optional is there, each value has its declared type (integers are
// whole, strings are in their enum), recursively through $ref, items and map values. Pure: a
// descriptor in, a list of problems out ("FFI.getRuntimes result.runtimes[0].live: not
// declared"); an empty list is a message the descriptor describes. It also notes each declared
// field it met ("FFI.RuntimeStats.live"), so a caller can list the declared fields no message
// carried (unsent(): a field declared under a name the sender never uses).
import type { Descriptor, Domain, Prop } from '../../scripts/gen-protocol-types.js';

export type Kind = 'result' | 'event';

export class ProtocolCheck {
  private readonly domains = new Map<string, Domain>();
  /** Declared fields met in the messages checked so far: "Domain.Type.field", "Domain.method result.field". */
  readonly seen = new Set<string>();

  constructor(desc: Descriptor) {
    for (const d of desc.domains) this.domains.set(d.domain, d);
  }

  /** Problems of `result`, the answer of command "Domain.method". */
  result(method: string, result: unknown): string[] {
    return this.message('result', method, result);
  }

  /** Problems of `params`, the params of event "Domain.event". */
  event(method: string, params: unknown): string[] {
    return this.message('event', method, params);
  }

  /**
   * The fields the results of the commands and the params of the events of `domains` can carry
   * (following $ref, items and map values into other domains' types), that no message checked
   * so far carried.
   */
  unsent(domains: string[]): string[] {
    const all = new Set<string>();
    const visited = new Set<string>();
    const walk = (p: Prop, domain: string, owner: string): void => {
      if (p.$ref) {
        const r = this.resolve(p.$ref, domain);
        const key = r && `${r.domain}.${r.prop.id}`;
        if (!r || visited.has(key!)) return;
        visited.add(key!);
        walk(r.prop, r.domain, key!);
        return;
      }
      if (p.items) walk(p.items, domain, owner);
      if (p.additionalProperties) walk(p.additionalProperties, domain, owner);
      for (const q of p.properties ?? []) {
        all.add(`${owner}.${q.name}`);
        walk(q, domain, `${owner}.${q.name}`);
      }
    };
    for (const name of domains) {
      const d = this.domains.get(name);
      for (const c of d?.commands ?? []) walk({ type: 'object', properties: c.returns ?? [] }, name, `${name}.${c.name} result`);
      for (const e of d?.events ?? []) walk({ type: 'object', properties: e.parameters ?? [] }, name, `${name}.${e.name} params`);
    }
    return [...all].filter((k) => !this.seen.has(k));
  }

  /**
   * Fields of the given domains whose values the descriptor leaves untyped: an `object` with
   * neither properties nor additionalProperties, an `array` without items, a field with
   * neither type nor $ref, and $refs that name no type.
   */
  untyped(domains: string[]): string[] {
    const out: string[] = [];
    for (const name of domains) {
      const d = this.domains.get(name);
      if (!d) {
        out.push(`${name}: no such domain`);
        continue;
      }
      for (const t of d.types ?? []) this.lint(t, name, `${name}.${t.id}`, out);
      for (const c of d.commands ?? []) {
        for (const p of c.parameters ?? []) this.lint(p, name, `${name}.${c.name} params.${p.name}`, out);
        for (const p of c.returns ?? []) this.lint(p, name, `${name}.${c.name} result.${p.name}`, out);
      }
      for (const e of d.events ?? []) {
        for (const p of e.parameters ?? []) this.lint(p, name, `${name}.${e.name} params.${p.name}`, out);
      }
    }
    return out;
  }

  private message(kind: Kind, method: string, value: unknown): string[] {
    const dot = method.indexOf('.');
    const domain = method.slice(0, dot);
    const name = method.slice(dot + 1);
    const d = this.domains.get(domain);
    const member = kind === 'result'
      ? d?.commands?.find((c) => c.name === name)
      : d?.events?.find((e) => e.name === name);
    if (!member) return [`${method}: no such ${kind === 'result' ? 'command' : 'event'} in the descriptor`];
    const props = (kind === 'result' ? member.returns : member.parameters) ?? [];
    const out: string[] = [];
    const where = `${method} ${kind === 'result' ? 'result' : 'params'}`;
    this.object(value, props, domain, where, where, out);
    return out;
  }

  /** The type a $ref names: "Type" in `domain`, or "Domain.Type". */
  private resolve(ref: string, domain: string): { prop: Prop; domain: string } | undefined {
    const dot = ref.indexOf('.');
    const dom = dot < 0 ? domain : ref.slice(0, dot);
    const id = dot < 0 ? ref : ref.slice(dot + 1);
    const t = this.domains.get(dom)?.types?.find((x) => x.id === id);
    return t ? { prop: t, domain: dom } : undefined;
  }

  /** owner: the type or message whose field `p` is, or the type `p` is ("Domain.Type"). */
  private check(v: unknown, p: Prop, domain: string, owner: string, path: string, out: string[]): void {
    if (p.$ref) {
      const r = this.resolve(p.$ref, domain);
      if (!r) out.push(`${path}: $ref ${p.$ref} names no type`);
      else this.check(v, r.prop, r.domain, `${r.domain}.${r.prop.id}`, path, out);
      return;
    }
    const got = typeName(v);
    const bad = (want: string): void => void out.push(`${path}: expected ${want}, got ${got} ${short(v)}`);
    switch (p.type) {
      case 'any':
        return;
      case 'integer':
        if (got !== 'number' || !Number.isInteger(v)) bad('an integer');
        return;
      case 'number':
        if (got !== 'number') bad('a number');
        return;
      case 'boolean':
        if (got !== 'boolean') bad('a boolean');
        return;
      case 'string':
        if (got !== 'string') bad('a string');
        else if (p.enum && !p.enum.includes(v as string)) out.push(`${path}: ${JSON.stringify(v)} is not one of ${p.enum.join(', ')}`);
        return;
      case 'array':
        if (got !== 'array') return bad('an array');
        if (p.items) (v as unknown[]).forEach((x, i) => this.check(x, p.items!, domain, owner, `${path}[${i}]`, out));
        return;
      case 'object':
        if (got !== 'object') return bad('an object');
        if (p.properties) this.object(v, p.properties, domain, owner, path, out);
        else if (p.additionalProperties) {
          for (const [k, x] of Object.entries(v as object)) this.check(x, p.additionalProperties, domain, owner, `${path}.${k}`, out);
        }
        return;
      default:
        out.push(`${path}: the descriptor gives no type (${JSON.stringify(p.type)})`);
    }
  }

  private object(v: unknown, props: Prop[], domain: string, owner: string, path: string, out: string[]): void {
    if (typeName(v) !== 'object') {
      out.push(`${path}: expected an object, got ${typeName(v)} ${short(v)}`);
      return;
    }
    const o = v as Record<string, unknown>;
    const declared = new Set(props.map((p) => p.name));
    for (const k of Object.keys(o)) if (!declared.has(k)) out.push(`${path}.${k}: not declared (value ${short(o[k])})`);
    for (const p of props) {
      if (!(p.name! in o)) {
        if (!p.optional) out.push(`${path}.${p.name}: missing (not optional)`);
        continue;
      }
      this.seen.add(`${owner}.${p.name}`);
      this.check(o[p.name!], p, domain, `${owner}.${p.name}`, `${path}.${p.name}`, out);
    }
  }

  private lint(p: Prop, domain: string, path: string, out: string[]): void {
    if (p.$ref) {
      if (!this.resolve(p.$ref, domain)) out.push(`${path}: $ref ${p.$ref} names no type`);
      return;
    }
    switch (p.type) {
      case 'object':
        if (p.properties) for (const q of p.properties) this.lint(q, domain, `${path}.${q.name}`, out);
        else if (p.additionalProperties) this.lint(p.additionalProperties, domain, `${path}{}`, out);
        else out.push(`${path}: an object with neither properties nor additionalProperties`);
        return;
      case 'array':
        if (p.items) this.lint(p.items, domain, `${path}[]`, out);
        else out.push(`${path}: an array without items`);
        return;
      case 'integer':
      case 'number':
      case 'string':
      case 'boolean':
      case 'any':
        return;
      default:
        out.push(`${path}: neither a known type nor a $ref (${JSON.stringify(p.type)})`);
    }
  }
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function short(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
