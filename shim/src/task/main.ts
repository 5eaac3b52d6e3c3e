/*
 * containerd-shim-shoal-v2's JavaScript side. The C launcher (native/launcher) answers `start`
 * (spawning the daemon, `serve`, when the group has none) and a `delete` with nothing to clean;
 * otherwise it execs `node build/shim.js <args>` (this module and everything it loads in one file
 * with a V8 code cache, from bin.ts).
 *
 *   -namespace NS -address GRPC -publish-binary P -id ID -bundle B delete   clean up a dead shim
 *   ... -socket PATH serve                                                 the daemon (internal)
 *   -v | --version
 *
 * The runtime state of the containers lives under /run/containerd/shoal/<namespace>.
 */
import { VERSION } from '../version';
import { cleanupDeadShim } from './cleanup';
import { serve } from './daemon';
import { parseFlags } from './flags';
import { trace } from '../runtime/trace';

/** Runs one invocation; resolves with the exit code (serve never resolves to an exit). */
export async function main(argv: string[]): Promise<number | null> {
  const f = parseFlags(argv);
  trace(`shim ${f.action}: loaded`);
  if (f.version) {
    process.stdout.write(`containerd-shim-shoal-v2:\n  Version:  ${VERSION}\n  Node:     ${process.version}\n`);
    return 0;
  }
  switch (f.action) {
    case 'delete': {
      const out = await cleanupDeadShim({ id: f.id, namespace: f.namespace, bundle: f.bundle || process.cwd(), warn: (m) => process.stderr.write(`shoal-shim: ${m}\n`) });
      process.stdout.write(out);
      return 0;
    }
    case 'serve':
      await serve(f);
      return null;
    default:
      process.stderr.write(`containerd-shim-shoal-v2: unknown action ${JSON.stringify(f.action)}\n`);
      return 1;
  }
}

/** Runs `main` on this process's arguments and sets the exit code (the executable's entry). */
export function run(): void {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code !== null) process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`containerd-shim-shoal-v2: ${(e as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}

if (require.main === module) run();
