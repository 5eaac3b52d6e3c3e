/**
 * Loading and validating a bundle's config.json.
 *
 * Schema checks run the validator that spec/build-validator.js compiled ahead of time into
 * build/spec/validate-config.js; nothing is compiled when a container starts. On top of the
 * schema come the semantic checks a JSON schema cannot express (duplicates, cross-field rules).
 * Every problem becomes one line naming the JSON path in dotted form, e.g.
 * `linux.namespaces[2].type: must be one of pid, network, ...`.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ShoalError } from '../../shim/src/runtime/errors';
import type { Spec } from './config';

/** The subset of an ajv error object that the standalone validator produces. */
export interface SchemaError {
  instancePath: string;
  schemaPath: string;
  keyword: string;
  params: Record<string, any>;
  /** Set for errors about a property name (propertyNames keyword). */
  propertyName?: string;
}

/** Messages attached to schema nodes, keyed by instance-path pattern ("[]" = any index or key). */
export type MessageTable = Record<string, { invalid?: string; missing?: string }>;

interface CompiledValidator {
  (data: unknown): boolean;
  errors?: SchemaError[] | null;
  messages?: MessageTable;
}

let compiled: CompiledValidator | undefined;

/** The precompiled validator, loaded on first use (build/spec/validate-config.js). */
function validator(): CompiledValidator {
  if (!compiled) {
    try {
      compiled = require('../validate-config.js') as CompiledValidator;
    } catch (err) {
      throw new ShoalError(
        'INTERNAL',
        `config validator missing (run "node spec/build-validator.js"): ${(err as Error).message}`,
      );
    }
  }
  return compiled;
}

/**
 * Read, parse and validate `<bundleDir>/config.json`.
 * Throws ShoalError INVALID_CONFIG naming the first problem, e.g.
 * `config.json: process.args: must be a non-empty array`.
 */
export function loadConfig(bundleDir: string): Spec {
  return checkConfig(readConfig(bundleDir), bundleDir);
}

/** config.json of a bundle, read and parsed but not validated (see checkConfig). */
export function readConfig(bundleDir: string): unknown {
  const file = path.join(bundleDir, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new ShoalError('INVALID_CONFIG', `bundle ${bundleDir}: config.json not found`, { errno: code, path: file });
    }
    throw new ShoalError('INVALID_CONFIG', `bundle ${bundleDir}: cannot read config.json: ${code ?? err}`, {
      errno: code,
      path: file,
    });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ShoalError('INVALID_CONFIG', `config.json: invalid JSON: ${describeJsonError(text, err as Error)}`, {
      path: file,
    });
  }
}

/** The parsed config.json of bundleDir as a Spec, or INVALID_CONFIG naming the first problem. */
export function checkConfig(raw: unknown, bundleDir: string): Spec {
  const problems = validateConfig(raw);
  if (problems.length > 0) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more: ${problems.slice(1).join('; ')})` : '';
    throw new ShoalError('INVALID_CONFIG', `config.json: ${problems[0]}${more}`, { path: path.join(bundleDir, 'config.json') });
  }
  return raw as Spec;
}

/**
 * Validate an already-parsed config.json. Returns one-line problems (empty = valid), each
 * "dotted.path: what is wrong"; schema problems come first, then semantic ones.
 */
export function validateConfig(raw: unknown): string[] {
  const v = validator();
  const out = v(raw) ? [] : formatSchemaErrors(v.errors ?? [], v.messages ?? {});
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
    // A value the schema already rejected is not reported twice.
    const reported = new Set(out.map((line) => line.slice(0, line.indexOf(': '))));
    for (const line of semanticErrors(raw as Spec)) {
      if (!reported.has(line.slice(0, line.indexOf(': ')))) out.push(line);
    }
  }
  return out;
}

/**
 * Non-fatal remarks about a valid config (deprecated forms the runtime still accepts),
 * e.g. relative mount destinations, which the spec allows but deprecates.
 */
export function configWarnings(spec: Spec): string[] {
  const out: string[] = [];
  (spec.mounts ?? []).forEach((m, i) => {
    if (m && typeof m.destination === 'string' && !m.destination.startsWith('/')) {
      out.push(`mounts[${i}].destination: relative path "${m.destination}" is deprecated; taken relative to "/"`);
    }
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Schema errors -> one-line messages

/** Split an ajv instancePath ("/linux/namespaces/2") into unescaped segments. */
function segments(instancePath: string): string[] {
  if (instancePath === '') return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Render path segments in dotted form: linux.namespaces[2].type, annotations["a.b"]. */
export function dottedPath(segs: string[]): string {
  let out = '';
  for (const s of segs) {
    if (/^(0|[1-9][0-9]*)$/.test(s)) out += `[${s}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(s)) out += out ? `.${s}` : s;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out || '(root)';
}

/** Find the schema's custom message for a value at `segs`, "[]" matching any segment. */
function lookup(table: MessageTable, segs: string[]): { invalid?: string; missing?: string } | undefined {
  for (const [pattern, msg] of Object.entries(table)) {
    const p = pattern === '' ? [] : pattern.split('/');
    if (p.length === segs.length && p.every((seg, i) => seg === '[]' || seg === segs[i])) return msg;
  }
  return undefined;
}

const ARTICLE: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean',
  object: 'an object',
  array: 'an array',
  null: 'null',
};

/** The generic text for one ajv error when the schema has no custom message. */
function genericText(e: SchemaError): string {
  const p = e.params;
  switch (e.keyword) {
    case 'required':
      return 'is required';
    case 'type': {
      const types = String(p.type).split(',');
      return `must be ${types.map((t) => ARTICLE[t] ?? t).join(' or ')}`;
    }
    case 'enum':
      return `must be one of ${(p.allowedValues as unknown[]).map(String).join(', ')}`;
    case 'const':
      return `must be ${JSON.stringify(p.allowedValue)}`;
    case 'pattern':
      return `must match /${p.pattern}/`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `must be ${p.comparison} ${p.limit}`;
    case 'minItems':
      return p.limit === 1 ? 'must be a non-empty array' : `must have at least ${p.limit} items`;
    case 'maxItems':
      return `must have at most ${p.limit} items`;
    case 'minLength':
      return p.limit === 1 ? 'must not be empty' : `must be at least ${p.limit} characters`;
    case 'uniqueItems':
      return `must not contain duplicates (items ${p.j} and ${p.i} are equal)`;
    case 'anyOf':
    case 'oneOf':
      return 'does not match any allowed form';
    default:
      return `fails "${e.keyword}"`;
  }
}

/** One line for one ajv error. */
function formatOne(e: SchemaError, table: MessageTable): string {
  const segs = segments(e.instancePath);
  if (e.keyword === 'required') {
    const target = [...segs, String(e.params.missingProperty)];
    return `${dottedPath(target)}: ${lookup(table, target)?.missing ?? 'is required'}`;
  }
  if (e.propertyName !== undefined) {
    return `${dottedPath(segs)}: key ${JSON.stringify(e.propertyName)} is not allowed (${genericText(e)})`;
  }
  return `${dottedPath(segs)}: ${lookup(table, segs)?.invalid ?? genericText(e)}`;
}

/**
 * Pick the most useful error among the branches of a failed anyOf/oneOf: the branch whose
 * first failure lies deepest in the data (it matched the most before failing), ties broken
 * by fewest errors. A branch rejected only by `type` at the union's own path ranks last.
 */
function pickBranch(union: SchemaError, branchErrors: SchemaError[]): SchemaError[] {
  const byBranch = new Map<string, SchemaError[]>();
  const prefix = `${union.schemaPath}/`;
  for (const e of branchErrors) {
    const branch = e.schemaPath.slice(prefix.length).split('/')[0];
    if (!byBranch.has(branch)) byBranch.set(branch, []);
    byBranch.get(branch)!.push(e);
  }
  let best: SchemaError[] | undefined;
  let bestScore = -Infinity;
  for (const errs of byBranch.values()) {
    const typeOnly = errs.every((e) => e.keyword === 'type' && e.instancePath === union.instancePath);
    const depth = Math.max(...errs.map((e) => segments(e.instancePath).length + (e.keyword === 'required' ? 1 : 0)));
    const score = (typeOnly ? -1000 : 0) + depth * 100 - errs.length;
    if (score > bestScore) {
      bestScore = score;
      best = errs;
    }
  }
  if (!best || bestScore < -500) return [union]; // every branch failed on type: report the union
  return best;
}

/**
 * Turn ajv errors into one-line messages (deduplicated, in data order). Errors produced inside
 * anyOf/oneOf branches are collapsed to the most useful branch (see pickBranch).
 */
export function formatSchemaErrors(errors: SchemaError[], table: MessageTable = {}): string[] {
  let list = errors.filter((e) => e.keyword !== 'propertyNames' && e.keyword !== 'if');
  // Process unions innermost first (longest schemaPath) so nested unions collapse correctly.
  const unions = list.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
  unions.sort((a, b) => b.schemaPath.length - a.schemaPath.length);
  for (const u of unions) {
    if (!list.includes(u)) continue;
    const prefix = `${u.schemaPath}/`;
    const inside = list.filter((e) => e !== u && e.schemaPath.startsWith(prefix));
    if (inside.length === 0) continue;
    const keep = pickBranch(u, inside);
    const at = list.indexOf(u);
    list = [...list.slice(0, at).filter((e) => !inside.includes(e)), ...keep, ...list.slice(at + 1)];
    if (!keep.includes(u)) list = list.filter((e) => e !== u);
  }
  const seen = new Set<string>();
  const out: string[] = [];
  for (const e of list) {
    const line = formatOne(e, table);
    if (!seen.has(line)) {
      seen.add(line);
      out.push(line);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Semantic checks (run defensively: the input may also have failed the schema)

const isArr = Array.isArray;
const isObj = (v: unknown): v is Record<string, any> => v !== null && typeof v === 'object' && !isArr(v);

/** Checks the schema cannot express. Returns one-line problems. */
export function semanticErrors(spec: Spec): string[] {
  const out: string[] = [];
  const proc: any = spec.process;
  if (isObj(proc) && isArr(proc.rlimits)) {
    const seen = new Map<string, number>();
    proc.rlimits.forEach((r: any, i: number) => {
      if (!isObj(r) || typeof r.type !== 'string') return;
      if (seen.has(r.type)) {
        out.push(`process.rlimits[${i}].type: duplicate rlimit ${r.type} (also process.rlimits[${seen.get(r.type)}])`);
      } else seen.set(r.type, i);
      if (typeof r.soft === 'number' && typeof r.hard === 'number' && r.soft > r.hard) {
        out.push(`process.rlimits[${i}]: soft limit ${r.soft} exceeds hard limit ${r.hard}`);
      }
    });
  }
  if (isArr(spec.mounts)) {
    spec.mounts.forEach((m: any, i: number) => {
      if (!isObj(m)) return;
      const hasU = isArr(m.uidMappings) && m.uidMappings.length > 0;
      const hasG = isArr(m.gidMappings) && m.gidMappings.length > 0;
      if (hasU !== hasG) out.push(`mounts[${i}]: idmapped mount needs both uidMappings and gidMappings`);
    });
  }
  const linux: any = spec.linux;
  if (!isObj(linux)) return out;
  const nsTypes = new Set<string>();
  if (isArr(linux.namespaces)) {
    linux.namespaces.forEach((ns: any, i: number) => {
      if (!isObj(ns) || typeof ns.type !== 'string') return;
      if (nsTypes.has(ns.type)) out.push(`linux.namespaces[${i}].type: duplicate namespace type "${ns.type}"`);
      nsTypes.add(ns.type);
    });
  }
  for (const key of ['uidMappings', 'gidMappings']) {
    if (isArr(linux[key]) && linux[key].length > 0 && !nsTypes.has('user')) {
      out.push(`linux.${key}: requires a user namespace in linux.namespaces`);
    }
  }
  for (const key of ['hostname', 'domainname'] as const) {
    if (typeof spec[key] === 'string' && spec[key] !== '' && !nsTypes.has('uts')) {
      out.push(`${key}: cannot be set without a uts namespace in linux.namespaces`);
    }
  }
  if (isObj(linux.timeOffsets) && Object.keys(linux.timeOffsets).length > 0 && !nsTypes.has('time')) {
    out.push('linux.timeOffsets: requires a time namespace in linux.namespaces');
  }
  const seccomp: any = linux.seccomp;
  if (isObj(seccomp) && isArr(seccomp.syscalls)) {
    seccomp.syscalls.forEach((sc: any, i: number) => {
      if (!isObj(sc)) return;
      const names = sc.names;
      if (!isArr(names) || names.length === 0) return; // reported by the schema
      names.forEach((n: unknown, j: number) => {
        if (typeof n === 'string' && n.trim() === '') {
          out.push(`linux.seccomp.syscalls[${i}].names[${j}]: must not be empty`);
        }
      });
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// JSON syntax errors

/** "Unexpected token ..." with the position turned into "at line L column C". */
function describeJsonError(text: string, err: Error): string {
  let msg = String(err.message);
  let pos: number | undefined;
  const m = /( in JSON)? at position (\d+)/.exec(msg);
  if (m) {
    pos = Number(m[2]);
    msg = msg.slice(0, m.index) + msg.slice(m.index + m[0].length);
  } else {
    // V8 11+ omits the position for unexpected tokens and quotes the source instead.
    msg = msg.replace(/, (\.\.\.)?".*"(\.\.\.)? is not valid JSON$/s, '');
    pos = scanJson(text);
  }
  msg = msg.replace(/ \(line \d+ column \d+\)$/, '');
  if (pos === undefined || pos > text.length) return msg;
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  return `${msg} at line ${line} column ${column}`;
}

/** Offset of the first JSON syntax error in `text` (undefined if it parses). Error path only. */
function scanJson(text: string): number | undefined {
  let i = 0;
  const fail = (): never => {
    throw i;
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const lit = (word: string) => {
    for (const ch of word) {
      if (text[i] !== ch) fail();
      i++;
    }
  };
  const str = () => {
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) fail();
      i += text[i] === '\\' ? 2 : 1;
    }
    if (i >= text.length) fail();
    i++;
  };
  const num = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) fail();
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (text[i] === close) return void i++;
      for (;;) {
        if (c === '{') {
          ws();
          if (text[i] !== '"') fail();
          str();
          ws();
          if (text[i] !== ':') fail();
          i++;
        }
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === close) return void i++;
        else fail();
      }
    } else if (c === '"') str();
    else if (c === 't') lit('true');
    else if (c === 'f') lit('false');
    else if (c === 'n') lit('null');
    else num();
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
    return undefined;
  } catch (at) {
    return typeof at === 'number' ? at : undefined;
  }
}
