#!/usr/bin/env node
/**
 * shoal: a runc-compatible OCI runtime. Parses the global flags, then loads only the module of
 * the subcommand (start-up time is what callers feel), which makes one call into runtime/.
 */
import { parseArgs, str, bool, GLOBAL_FLAGS, CACHED_COMMANDS } from './args';
import { makeContext, Context } from './context';
import { ShoalError } from '../runtime/errors';
import { SPEC_VERSION, VERSION } from '../version';
import { trace } from '../runtime/trace';
import { stdout, stderr } from '../runtime/fdwrite';
import { native, nativeLoaded } from '../native';

type Command = { run(ctx: Context, argv: string[]): Promise<number> };

const COMMANDS: Record<string, () => Command> = {
  create: () => require('./create'),
  start: () => require('./start'),
  run: () => require('./run'),
  state: () => require('./state'),
  kill: () => require('./kill'),
  delete: () => require('./delete'),
  list: () => require('./list'),
  spec: () => require('./spec'),
  features: () => require('./features'),
  exec: () => require('./exec'),
  pause: () => require('./pause'),
  resume: () => require('./resume'),
  ps: () => require('./ps'),
  layer: () => require('./layer'),
  gen: () => require('./gen'),
  update: () => require('./update'),
  events: () => require('./events'),
  checkpoint: () => require('./checkpoint'),
  restore: () => require('./restore'),
};

const NOT_YET: string[] = [];

/** The hot commands (see CACHED_COMMANDS): each covered by its own code cache. */
const CACHED = new Set(CACHED_COMMANDS);

/** The loader's code-cache control; absent when main.js runs unbundled. */
const codeCache = (globalThis as { [k: symbol]: { cover(name: string): void; flush(): void } | undefined })[Symbol.for('shoal.codeCache')];

/**
 * What a cache must hold for this call: the command, the flags that take it down another path
 * (`run -d` starts the container through `start`'s code, `exec -t` through the console's), and
 * a pure cgroup v2 host (other cgroup code than a v1 or hybrid one). A call of a kind the cache
 * does not cover yet rewrites it, and the cache grows to the union of the kinds run: one
 * written by `run -d` (or in a VM sharing this build) no longer leaves every foreground `run`
 * compiling its own path.
 */
function callKind(cmd: string, args: string[]): string {
  let kind = cmd;
  if (args.some((a) => a === '-d' || a === '--detach' || a === '--detach=true')) kind += '+d';
  if (args.some((a) => a === '-t' || a === '--tty' || a === '--tty=true')) kind += '+t';
  if (require('fs').existsSync('/sys/fs/cgroup/cgroup.controllers')) kind += '@v2';
  return kind;
}

/** Set when a hot command runs: it writes all its output synchronously, so it may end with _exit. */
let fastExit = false;

const USAGE = `shoal: an OCI container runtime

usage: shoal [global options] command [command options] [arguments...]

commands: ${[...Object.keys(COMMANDS), ...NOT_YET].join(', ')}

global options:
  --root DIR          state directory (default /run/shoal)
  --log FILE          log file
  --log-format FMT    text or json
  --debug             debug logging
  --systemd-cgroup    use the systemd cgroup driver
  --rootless VALUE    true, false or auto
  --version, -v       print the version
`;

async function main(argv: string[]): Promise<number> {
  trace('node started, cli loaded');
  const g = parseArgs(argv, GLOBAL_FLAGS);
  if (bool(g, 'version')) {
    stdout(`shoal version ${VERSION}\nspec: ${SPEC_VERSION}\n`);
    return 0;
  }
  // checkpoint/restore read the CRIU binary from $SHOAL_CRIU; --criu sets it, as runc's flag.
  if (str(g, 'criu')) process.env.SHOAL_CRIU = str(g, 'criu');
  const ctx = makeContext({ root: str(g, 'root'), log: str(g, 'log'), logFormat: str(g, 'log-format'), debug: bool(g, 'debug'), systemdCgroup: bool(g, 'systemd-cgroup') });
  trace('arguments parsed');
  const [cmd, ...rest] = g.args;
  if (!cmd || bool(g, 'help') || cmd === 'help') {
    stdout(USAGE);
    return cmd || bool(g, 'help') ? 0 : 1;
  }
  try {
    if (ctx.systemdCgroup && !require('fs').existsSync('/run/systemd/system'))
      throw new ShoalError('UNSUPPORTED', 'systemd cgroup driver requested (--systemd-cgroup) but systemd is not running on this host');
    const load = COMMANDS[cmd];
    if (!load) {
      if (NOT_YET.includes(cmd)) throw new ShoalError('UNSUPPORTED', `${cmd}: not implemented yet`);
      throw new ShoalError('INVALID_ARGUMENT', `command ${JSON.stringify(cmd)} does not exist`);
    }
    if (CACHED.has(cmd)) fastExit = true;
    const command = load();
    trace(`${cmd}: module loaded`);
    const code = await command.run(ctx, rest);
    // The command's code cache is written by a call that went through (whatever its exit code):
    // one that failed early (an invalid config.json, an unknown id) compiled little of the
    // command, and a cache written then would leave every later call compiling the rest.
    if (CACHED.has(cmd)) codeCache?.cover(callKind(cmd, rest));
    return code;
  } catch (e) {
    const msg = e instanceof ShoalError ? e.message : e instanceof Error ? e.stack ?? e.message : String(e);
    ctx.log('error', msg);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Node's own exit (V8 and platform teardown, joining its threads) is 3-4 ms of every call,
    // and so is the kernel's freeing of its memory (exitNow leaves that to a process that
    // outlives this one by a moment). The hot commands have written everything (write(2),
    // *Sync) and keep nothing running that needs this process: end with _exit, once the code
    // cache is written if it is due.
    if (fastExit && nativeLoaded()) {
      codeCache?.flush();
      // SHOAL_EXIT_HOLD=0: no exit-hold process (it is an orphan for a moment, and a pid 1 that
      // never reaps orphans would keep one zombie per call).
      native().exitNow(code, process.env.SHOAL_EXIT_HOLD !== '0');
    }
  },
  (e) => {
    stderr(`shoal: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
