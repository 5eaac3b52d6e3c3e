/*
 * The command line containerd gives a shim: Go flag syntax (-name value, --name value,
 * -name=value, boolean -debug), then the action: delete, or the hidden `serve` of the daemon
 * (`start` is the C launcher's).
 */

/** The parsed flags of containerd-shim-shoal-v2. */
export interface ShimFlags {
  namespace: string;
  /** containerd's GRPC socket path. */
  address: string;
  publishBinary: string;
  id: string;
  /** Bundle directory (delete); otherwise the cwd. */
  bundle: string;
  /** Socket path the daemon listens on (serve). */
  socket: string;
  debug: boolean;
  version: boolean;
  /** start | delete | serve | "" */
  action: string;
}

const VALUED: Record<string, keyof ShimFlags> = {
  namespace: 'namespace',
  address: 'address',
  'publish-binary': 'publishBinary',
  id: 'id',
  bundle: 'bundle',
  socket: 'socket',
};

/** Parses argv (without node and the script). Unknown valued flags are skipped with their value. */
export function parseFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): ShimFlags {
  const f: ShimFlags = { namespace: env.NAMESPACE ?? '', address: env.GRPC_ADDRESS ?? '', publishBinary: '', id: '', bundle: '', socket: '', debug: false, version: false, action: '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      f.action = argv[i + 1] ?? '';
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      f.action = a;
      break;
    }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    if (name === 'debug') f.debug = eq < 0 || body.slice(eq + 1) !== 'false';
    else if (name === 'v' || name === 'version') f.version = true;
    else {
      const value = eq >= 0 ? body.slice(eq + 1) : argv[++i] ?? '';
      const key = VALUED[name];
      if (key) (f as unknown as Record<string, string>)[key] = value;
    }
  }
  return f;
}
