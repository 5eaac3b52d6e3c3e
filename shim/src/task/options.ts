/*
 * Runtime options of a container, from the Create request's `options` Any, else from what
 * containerd wrote on the `start` stdin (the daemon gets it base64 in $SHOAL_SHIM_OPTIONS):
 *
 *   containerd.runc.v1.Options          ctr, CRI with runtime_type io.containerd.runc.v2-style options
 *   runtimeoptions.v1.Options           CRI (containerd 1.7+/2.x): config_body = the runtime's TOML
 *   cri.runtimeoptions.v1.Options       CRI (containerd 1.6): usually config_path = a TOML file
 *
 * The TOML keys are the Go field names of runc's Options (SystemdCgroup, NoPivotRoot, IoUid ...),
 * snake_case is accepted too. The start stdin of containerd 2.3+ is a BootstrapParams, not an
 * Any: it carries no runtime options and is ignored here.
 */
import * as fs from 'fs';
import { ShoalError } from '../runtime/errors';

/** What shoal's shim honours of runc's options. */
export interface RuntimeOptions {
  /** Use chroot instead of pivot_root (runc --no-pivot). */
  noPivotRoot: boolean;
  /** runc --no-new-keyring; shoal never creates a session keyring, so this is always the case. */
  noNewKeyring: boolean;
  /** Owner given to the container's stdio fifos and pipes (for non-root container users). */
  ioUid: number;
  ioGid: number;
  /** Base of the runtime state (runc --root); the namespace is appended. "" = the shim's default. */
  root: string;
  /** The systemd cgroup driver: refused with FailedPrecondition (no systemd here). */
  systemdCgroup: boolean;
  /** Where CRIU's work files and logs go for a restore (runc's criu_work_path); "" = a temp dir in the bundle. */
  criuWorkPath: string;
}

/** The options when containerd sent none. */
export const DEFAULT_OPTIONS: Readonly<RuntimeOptions> = { noPivotRoot: false, noNewKeyring: false, ioUid: 0, ioGid: 0, root: '', systemdCgroup: false, criuWorkPath: '' };

/** An Any in plain-object form. */
interface AnyLike {
  type_url?: string;
  value?: Uint8Array | null;
}

/** TOML / proto key spellings -> RuntimeOptions field. */
const KEYS: Record<string, keyof RuntimeOptions> = {
  nopivotroot: 'noPivotRoot', no_pivot_root: 'noPivotRoot',
  nonewkeyring: 'noNewKeyring', no_new_keyring: 'noNewKeyring',
  iouid: 'ioUid', io_uid: 'ioUid', iogid: 'ioGid', io_gid: 'ioGid',
  root: 'root', systemdcgroup: 'systemdCgroup', systemd_cgroup: 'systemdCgroup',
  criuworkpath: 'criuWorkPath', criu_work_path: 'criuWorkPath',
};

/** Applies `key = value` pairs (TOML or a decoded proto message) over the defaults. */
function fromPairs(pairs: Iterable<[string, unknown]>): RuntimeOptions {
  const o: RuntimeOptions = { ...DEFAULT_OPTIONS };
  for (const [k, v] of pairs) {
    const field = KEYS[k.toLowerCase()] ?? KEYS[k];
    if (!field) continue;
    const cur = o[field];
    if (typeof cur === 'boolean') (o as unknown as Record<string, unknown>)[field] = v === true || v === 'true';
    else if (typeof cur === 'number') (o as unknown as Record<string, unknown>)[field] = Number(v) || 0;
    else (o as unknown as Record<string, unknown>)[field] = v == null ? '' : String(v);
  }
  return o;
}

/**
 * The top-level `key = value` pairs of a TOML document (what go-toml writes for the options
 * table): strings (basic and literal), booleans, integers. Tables and arrays are skipped.
 */
export function parseTomlPairs(text: string): [string, unknown][] {
  const out: [string, unknown][] = [];
  let inTable = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    if (line.startsWith('[')) {
      inTable = true; // keys of sub-tables are not runc options
      continue;
    }
    const m = /^("?)([A-Za-z0-9_.-]+)\1\s*=\s*(.*)$/.exec(line);
    if (!m || inTable) continue;
    let v = m[3].trim();
    let value: unknown;
    if (v.startsWith('"')) {
      const end = v.indexOf('"', 1);
      try {
        value = JSON.parse(v.slice(0, end + 1));
      } catch {
        value = v.slice(1, end);
      }
    } else if (v.startsWith("'")) {
      value = v.slice(1, v.indexOf("'", 1));
    } else {
      v = v.replace(/\s*#.*$/, '');
      value = v === 'true' ? true : v === 'false' ? false : /^[+-]?\d[\d_]*$/.test(v) ? Number(v.replace(/_/g, '')) : v;
    }
    out.push([m[2], value]);
  }
  return out;
}

/** The message name of an Any's type URL (what follows its last "/"). */
function anyName(any: AnyLike): string {
  const url = any.type_url ?? '';
  return url.slice(url.lastIndexOf('/') + 1);
}

/** An Any's value decoded as message `type`; INVALID_ARGUMENT naming `what` when it is not one. */
function decodeAs(type: string, any: AnyLike, what: string): Record<string, unknown> {
  // Loaded here: `start` must not pay for protobufjs.
  const { unpackAny } = require('../ttrpc/proto') as typeof import('../ttrpc/proto');
  try {
    return unpackAny({ type_url: type, value: any.value ?? new Uint8Array(0) })?.message ?? {};
  } catch (e) {
    throw new ShoalError('INVALID_ARGUMENT', `${what}: ${(e as Error).message}`);
  }
}

/** Decodes a runtime options Any; null when it is absent, empty or of a type shoal ignores. */
export function parseOptionsAny(any: AnyLike | null | undefined): RuntimeOptions | null {
  if (!any || !any.type_url) return null;
  const name = anyName(any);
  if (name !== 'containerd.runc.v1.Options' && name !== 'runtimeoptions.v1.Options' && name !== 'cri.runtimeoptions.v1.Options') return null;
  const msg = decodeAs(name, any, `runtime options ${name}`);
  if (name === 'containerd.runc.v1.Options') return fromPairs(Object.entries(msg));
  const body = msg.config_body as Uint8Array | undefined;
  let toml = body && body.length ? Buffer.from(body).toString('utf8') : '';
  if (!toml && msg.config_path) {
    try {
      toml = fs.readFileSync(String(msg.config_path), 'utf8');
    } catch (e) {
      throw new ShoalError('INVALID_ARGUMENT', `runtime options file ${msg.config_path}: ${(e as Error).message}`);
    }
  }
  return fromPairs(parseTomlPairs(toml));
}

/** The checkpoint option types shoal reads; both have CheckpointOptions' field numbers. */
const CHECKPOINT_OPTION_TYPES = ['containerd.runc.v1.CheckpointOptions', 'containerd.linux.runc.CheckpointOptions'];

/**
 * A Checkpoint request's options Any, decoded (snake_case fields; {} when absent): a
 * containerd.runc.v1.CheckpointOptions, or containerd.linux.runc.CheckpointOptions (what
 * containerd 1.6/1.7's client sends to runtimes not named io.containerd.runc*). Another type is
 * INVALID_ARGUMENT.
 */
export function parseCheckpointOptions(any: AnyLike | null | undefined): Record<string, unknown> {
  if (!any?.type_url) return {};
  if (!CHECKPOINT_OPTION_TYPES.includes(anyName(any))) throw new ShoalError('INVALID_ARGUMENT', `checkpoint options: unsupported type ${any.type_url}`);
  return decodeAs(CHECKPOINT_OPTION_TYPES[0], any, 'checkpoint options');
}

/** The options from the start stdin bytes (a protobuf Any), or null (none, BootstrapParams, garbage). */
export function parseStartOptions(stdin: Buffer): RuntimeOptions | null {
  if (stdin.length === 0) return null;
  try {
    const { decode, types } = require('../ttrpc/proto') as typeof import('../ttrpc/proto');
    return parseOptionsAny(decode(types().protobuf.Any, stdin));
  } catch {
    return null;
  }
}

/**
 * Checks the options shoal cannot honour: FailedPrecondition for the systemd cgroup driver
 * (there is no systemd to create the scope).
 */
export function checkOptions(o: RuntimeOptions): void {
  if (o.systemdCgroup) {
    throw new ShoalError('INVALID_STATE', 'SystemdCgroup=true is not supported by containerd-shim-shoal-v2: no systemd on this host; use the cgroupfs driver (SystemdCgroup = false)');
  }
}
