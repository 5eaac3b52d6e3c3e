/*
 * `start` and the long-lived daemon. `start` answers with the group's socket address: an
 * existing shim's when one listens, otherwise it spawns this script again detached (its own
 * session) as `serve`, with stdio on /dev/null except stderr on the bundle's `log` fifo, waits
 * for the daemon to report that it listens (over fd 3), and prints `unix://<socket>`.
 *
 * The daemon becomes a child subreaper (the containers' inits are re-parented to it), listens on
 * the socket (0600 in the 0700 /run/containerd/s), serves the Task service over ttrpc, publishes
 * events to $TTRPC_ADDRESS, and exits when Shutdown finds no container left.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { native } from '../native';
import { groupId, socketPath, SOCKET_DIR } from './address';
import { canConnect, stateRoot } from './cleanup';
import { formatFlags, ShimFlags } from './flags';
import { parseStartOptions } from './options';
import { TaskService } from './service';
import { trace } from '../runtime/trace';
import { DAEMON_NODE_FLAGS } from './daemon-flags';

export { DAEMON_NODE_FLAGS };

/** How long `start` waits for the daemon to listen. */
const START_TIMEOUT_MS = 20_000;
/** Env var carrying containerd's stdin (runtime options Any or BootstrapParams), base64. */
export const OPTIONS_ENV = 'SHOAL_SHIM_OPTIONS';

/** Reads all of stdin unless it is a terminal (containerd writes the options, then closes it). */
function readStdin(): Buffer {
  try {
    return fs.fstatSync(0).isCharacterDevice() ? Buffer.alloc(0) : fs.readFileSync(0);
  } catch {
    return Buffer.alloc(0);
  }
}

/** The shim log: the bundle's `log` fifo (containerd reads it) opened write-only, else null. */
function openLog(bundle: string): number | 'ignore' {
  const p = process.env.SHOAL_SHIM_LOG || path.join(bundle, 'log');
  try {
    const st = fs.statSync(p);
    // O_NONBLOCK: a fifo without a reader fails with ENXIO instead of hanging `start`.
    return fs.openSync(p, st.isFIFO() ? fs.constants.O_WRONLY | fs.constants.O_NONBLOCK : fs.constants.O_WRONLY | fs.constants.O_APPEND);
  } catch {
    return 'ignore';
  }
}

/** `start`: prints the address of the group's shim, starting the daemon when needed. */
export async function start(f: ShimFlags): Promise<string> {
  const bundle = process.cwd();
  if (!f.namespace || !f.id) throw new Error('start needs -namespace and -id');
  const sock = socketPath(f.address, f.namespace, groupId(f.id, bundle));
  const options = readStdin();
  const address = `unix://${sock}`;
  if (!(await canConnect(sock))) {
    fs.mkdirSync(SOCKET_DIR, { recursive: true, mode: 0o700 });
    const log = openLog(bundle);
    const flags = process.env.SHOAL_SHIM_NODE_FLAGS !== undefined ? process.env.SHOAL_SHIM_NODE_FLAGS.split(/\s+/).filter(Boolean) : DAEMON_NODE_FLAGS;
    // The daemon runs the same script as this `start` (build/shim.js, or main.js in tests).
    const child = spawn(process.execPath, [...flags, process.argv[1], ...formatFlags({ ...f, socket: sock }, 'serve')], {
      stdio: ['ignore', 'ignore', log, 'pipe'],
      detached: true,
      cwd: bundle,
      env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '2', [OPTIONS_ENV]: options.toString('base64') },
    });
    if (typeof log === 'number') fs.closeSync(log);
    const report = await new Promise<string>((resolve) => {
      let out = '';
      const timer = setTimeout(() => resolve('timeout'), START_TIMEOUT_MS);
      const ready = child.stdio[3] as net.Socket;
      ready.setEncoding('utf8');
      ready.on('data', (d) => (out += d));
      ready.on('close', () => (clearTimeout(timer), resolve(out.trim() || 'exited')));
      child.once('error', (e) => (clearTimeout(timer), resolve(e.message)));
    });
    child.unref();
    trace(`start: daemon reported ${report}`);
    // "in use": a concurrent start for the same group won; its shim serves this container too.
    if (report !== 'ok' && !(report === 'in use' && (await canConnect(sock)))) throw new Error(`shim daemon did not start: ${report}`);
  }
  // Atomically, as the runc shim's WriteAddress: containerd reads it to reconnect after a restart.
  fs.writeFileSync(path.join(bundle, '.address'), address);
  fs.renameSync(path.join(bundle, '.address'), path.join(bundle, 'address'));
  return address;
}

/** Listens on `sock`, replacing a stale socket file; "in use" when a live shim owns it. */
async function listenSocket(listen: (p: string) => Promise<void>, sock: string): Promise<void> {
  try {
    await listen(sock);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || (await canConnect(sock))) throw new Error('in use');
    fs.rmSync(sock, { force: true });
    await listen(sock);
  }
  fs.chmodSync(sock, 0o600);
}

/** `serve`: the daemon. Resolves once listening; the process exits after Shutdown. */
export async function serve(f: ShimFlags): Promise<void> {
  const readyFd = 3;
  const report = (msg: string) => {
    try {
      fs.writeSync(readyFd, `${msg}\n`);
      fs.closeSync(readyFd);
    } catch {
      // start gave up waiting
    }
  };
  try {
    native().setChildSubreaper(true);
    // Loaded here: `start` and `delete` need no protobuf runtime.
    const { TtrpcServer } = await import('../ttrpc/server');
    const { EventPublisher } = await import('../ttrpc/events');
    trace('serve: modules loaded');
    const events = process.env.TTRPC_ADDRESS ? new EventPublisher(process.env.TTRPC_ADDRESS) : null;
    const server = new TtrpcServer();
    const startOptions = parseStartOptions(Buffer.from(process.env[OPTIONS_ENV] ?? '', 'base64'));
    delete process.env[OPTIONS_ENV];
    const service = new TaskService({
      namespace: f.namespace,
      defaultOptions: startOptions,
      stateRoot: stateRoot(f.namespace),
      publish: (_topic, type, event) => {
        events?.publish(f.namespace, type.replace('containerd.events.', '') as never, event).catch((e) => process.stderr.write(`shoal-shim: event: ${e.message}\n`));
      },
      onShutdown: () => {
        const wait = events ? Promise.race([new Promise((r) => setTimeout(r, 2000)), (async () => { while (events.pending) await new Promise((r) => setTimeout(r, 20)); })()]) : Promise.resolve();
        // server.close() also unlinks the socket; do not let a slow peer hold the exit.
        void wait
          .then(() => Promise.race([server.close(), new Promise((r) => setTimeout(r, 200))]))
          .finally(() => {
            // The launcher's start lock for this socket (native/launcher): gone with the daemon.
            fs.rmSync(`${f.socket}.lock`, { force: true });
            process.exit(0);
          });
      },
    });
    const handlers = service.handlers();
    server.register('containerd.task.v2.Task', handlers);
    try {
      server.register('containerd.task.v3.Task', handlers);
    } catch {
      // descriptors without v3
    }
    await listenSocket((p) => server.listen(p), f.socket);
    trace('serve: listening');
    report('ok');
  } catch (e) {
    report((e as Error).message);
    process.exit(1);
  }
}
