/*
 * The stdio strings containerd passes in Create and Exec, parsed the way containerd-shim-runc-v2
 * does: an empty string is /dev/null, a string without a scheme (or fifo://) is a fifo path,
 * `file:///path` appends to a file, `binary:///path?k=v` starts a logging binary with the query
 * as arguments `k v ...` (fd 3 stdout, 4 stderr, 5 a pipe it closes once ready).
 */
import { ShoalError } from '../runtime/errors';

/** Where one stdio stream goes. */
export type IoTarget =
  | { kind: 'null' }
  | { kind: 'fifo'; path: string }
  | { kind: 'file'; path: string }
  | { kind: 'binary'; path: string; args: string[] };

const SCHEME_RE = /^([a-zA-Z][a-zA-Z0-9+.-]*):/;

/** Parses one of stdin, stdout, stderr. Throws INVALID_ARGUMENT for an unknown scheme. */
export function parseIoUri(s: string | undefined | null): IoTarget {
  if (!s) return { kind: 'null' };
  const m = SCHEME_RE.exec(s);
  if (!m) return { kind: 'fifo', path: s };
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new ShoalError('INVALID_ARGUMENT', `invalid stdio uri: ${s}`);
  }
  // A host ("file://relative/x") would silently drop part of the path: refuse it.
  const p = url.host ? '' : decodeURIComponent(url.pathname);
  switch (m[1].toLowerCase()) {
    case 'fifo':
      return { kind: 'fifo', path: p };
    case 'file':
      if (!p.startsWith('/')) throw new ShoalError('INVALID_ARGUMENT', `file stdio uri needs an absolute path: ${s}`);
      return { kind: 'file', path: p };
    case 'binary': {
      if (!p.startsWith('/')) throw new ShoalError('INVALID_ARGUMENT', `binary stdio uri needs an absolute path: ${s}`);
      const args: string[] = [];
      for (const [k, v] of url.searchParams) {
        // Go's url.Query() always has a value, "" for `?k`: runc's shim passes it on as an argument.
        args.push(k, v);
      }
      return { kind: 'binary', path: p, args };
    }
    default:
      throw new ShoalError('INVALID_ARGUMENT', `unknown STDIO scheme ${m[1]}`);
  }
}

/** The three streams of a process as containerd passed them. */
export interface StdioConfig {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

/** Parses a process's stdio; stdin can only be a fifo or nothing, as with runc's shim. */
export function parseStdio(c: StdioConfig): { stdin: IoTarget; stdout: IoTarget; stderr: IoTarget } {
  const stdin = parseIoUri(c.stdin);
  if (stdin.kind !== 'null' && stdin.kind !== 'fifo') throw new ShoalError('INVALID_ARGUMENT', `stdin must be a fifo: ${c.stdin}`);
  return { stdin, stdout: parseIoUri(c.stdout), stderr: parseIoUri(c.terminal ? '' : c.stderr) };
}
