import { ShoalError } from '../runtime/errors';

/** One flag a command accepts. Boolean flags take no value ("--detach" or "--detach=true"). */
export interface FlagSpec {
  name: string;
  alias?: string;
  type: 'bool' | 'string' | 'number' | 'list';
}

/** Parsed flags (by long name) and positional arguments. */
export interface Parsed {
  flags: Record<string, string | boolean | number | string[]>;
  args: string[];
}

/**
 * Parse argv the way runc's CLI does: `--flag value`, `--flag=value`, single-dash long flags
 * (`-no-pivot`), one-letter aliases (`-b dir`), `--` ends the flags. Flags may follow positional
 * arguments (runc accepts `kill ID --all`? no: urfave stops at the first positional) — like
 * urfave/cli, parsing stops at the first positional argument unless interspersed is set.
 */
export function parseArgs(argv: string[], specs: FlagSpec[], opts: { interspersed?: boolean } = {}): Parsed {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) {
    byName.set(s.name, s);
    if (s.alias) byName.set(s.alias, s);
  }
  const flags: Parsed['flags'] = {};
  const args: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      if (!opts.interspersed) break;
      args.push(a);
      continue;
    }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const spec = byName.get(name);
    if (!spec) throw new ShoalError('INVALID_ARGUMENT', `flag provided but not defined: -${name}`);
    let value: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined;
    if (spec.type === 'bool') {
      flags[spec.name] = value === undefined ? true : !/^(false|0|)$/i.test(value);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new ShoalError('INVALID_ARGUMENT', `flag needs an argument: -${name}`);
      value = argv[++i];
    }
    if (spec.type === 'number') {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw new ShoalError('INVALID_ARGUMENT', `invalid value ${JSON.stringify(value)} for flag -${name}: parse error`);
      flags[spec.name] = n;
    } else if (spec.type === 'list') {
      const prev = (flags[spec.name] as string[] | undefined) ?? [];
      flags[spec.name] = [...prev, value];
    } else {
      flags[spec.name] = value;
    }
  }
  args.push(...argv.slice(i));
  return { flags, args };
}

/** A string flag or undefined. */
export const str = (p: Parsed, n: string): string | undefined => (typeof p.flags[n] === 'string' ? (p.flags[n] as string) : undefined);
/** A boolean flag. */
export const bool = (p: Parsed, n: string): boolean => p.flags[n] === true;
/** A number flag or the default. */
export const num = (p: Parsed, n: string, d = 0): number => (typeof p.flags[n] === 'number' ? (p.flags[n] as number) : d);

/** Exactly one positional argument: the container id. */
export function requireId(p: Parsed, cmd: string): string {
  if (p.args.length < 1) throw new ShoalError('INVALID_ARGUMENT', `"${cmd}" requires a container id`);
  return p.args[0];
}

/** shoal's global flags (before the command). */
export const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'root', type: 'string' },
  { name: 'log', type: 'string' },
  { name: 'log-format', type: 'string' },
  { name: 'debug', type: 'bool' },
  { name: 'systemd-cgroup', type: 'bool' },
  { name: 'rootless', type: 'string' },
  { name: 'criu', type: 'string' },
  { name: 'version', alias: 'v', type: 'bool' },
  { name: 'help', alias: 'h', type: 'bool' },
];

/**
 * The commands on the hot path of docker, containerd's runc shim and podman: each has a code
 * cache of its own (scripts/bundle.js --slots, in package.json with the string-valued global
 * flags; a unit test keeps the three in step), extended to cover the command the first time it
 * runs, so it starts with its functions already compiled. Other commands share one cache.
 */
export const CACHED_COMMANDS: readonly string[] = ['create', 'start', 'run', 'state', 'kill', 'delete', 'exec'];
