/*
 * The long-lived daemon (`serve`). The C launcher answers containerd's `start`: it spawns this
 * daemon in its own session, with stdio on /dev/null except stderr on the bundle's `log` fifo,
 * and waits for the report on fd 3 ("ok" once listening).
 *
 * The daemon becomes a child subreaper (the containers' inits are re-parented to it), listens on
 * the socket (0600 in the 0700 /run/containerd/s), serves the Task service over ttrpc, publishes
 * events to $TTRPC_ADDRESS, and exits when Shutdown finds no container left. A namespace's shim
 * (the launcher sets SHOAL_SHIM_NAMESPACE_GROUP) lingers instead: it ends after SHOAL_SHIM_LINGER
 * seconds (default 10; 0 = at Shutdown) without a container or a call, so that the next container
 * of the namespace (a loop of `ctr run --rm`, `docker run --rm`) finds it running. A sandbox's
 * shim never lingers: its group does not come back.
 */
import * as fs from 'fs';
import * as path from 'path';
import { native } from '../native';
import { canConnect, stateRoot } from './cleanup';
import type { ShimFlags } from './flags';
import { parseStartOptions } from './options';
import { TaskService } from './service';
import { trace } from '../runtime/trace';
import { detectCgroups } from '../runtime/cgroup/detect';
import type * as Proto from '../ttrpc/proto';

/** Env var carrying containerd's stdin (runtime options Any or BootstrapParams), base64: the C
 * launcher (native/launcher), which answers `start` and spawns this daemon, sets it. */
export const OPTIONS_ENV = 'SHOAL_SHIM_OPTIONS';

/** Default linger of an idle namespace shim, in seconds. */
export const DEFAULT_LINGER_S = 10;

/** The linger for this daemon in ms, from its environment (see above). */
export function lingerMs(env: NodeJS.ProcessEnv = process.env): number {
  if (env.SHOAL_SHIM_NAMESPACE_GROUP !== '1') return 0;
  const raw = env.SHOAL_SHIM_LINGER;
  const s = raw === undefined || raw.trim() === '' ? DEFAULT_LINGER_S : Number(raw);
  return Number.isFinite(s) && s > 0 ? Math.round(s * 1000) : 0;
}

/**
 * Removes the launcher's start lock of this daemon's socket (native/launcher/launcher.c,
 * lock_group) as the launcher does: under the lock, and only the file this daemon's lock was on
 * (a launcher that held a lock file which is no longer at the path locks again).
 */
function removeStartLock(sock: string): void {
  const lockPath = `${sock}.lock`;
  let fd = -1;
  try {
    fd = fs.openSync(lockPath, 'r+');
    if (native().flockExclusive(fd) === 0 && fs.fstatSync(fd).ino === fs.statSync(lockPath).ino) fs.unlinkSync(lockPath);
  } catch {
    // no lock file (or it went meanwhile)
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
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

/**
 * Runs, ahead of the first Create, the one-time work its path would do: the protobuf codecs of
 * the calls and events of a container's life (protobufjs generates them on first use) and the
 * cgroup layout.
 */
function warmUp({ decode, encode, methodTypes, types }: typeof Proto): void {
  for (const m of ['Create', 'Start', 'Wait', 'State', 'Delete', 'Connect', 'Shutdown', 'Kill']) {
    const mt = methodTypes('containerd.task.v2.Task', m);
    if (!mt) continue;
    decode(mt.request, new Uint8Array(0));
    encode(mt.response, {});
  }
  const t = types();
  for (const e of ['TaskCreate', 'TaskStart', 'TaskExit', 'TaskDelete']) if (t.events[e]) encode(t.events[e], {});
  encode(t.eventsService.ForwardRequest, {});
  detectCgroups();
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
    const proto = await import('../ttrpc/proto');
    trace('serve: modules loaded');
    const events = process.env.TTRPC_ADDRESS ? new EventPublisher(process.env.TTRPC_ADDRESS) : null;
    const server = new TtrpcServer();
    // Listening and reported first: the launcher's exit and containerd's connect take ~10 ms
    // before the first Create arrives, and the set-up below (protobuf types, handlers, codecs)
    // fills that time. It is synchronous, so no request is read before it is done.
    await listenSocket((p) => server.listen(p), f.socket);
    report('ok');
    trace('serve: listening');
    const startOptions = parseStartOptions(Buffer.from(process.env[OPTIONS_ENV] ?? '', 'base64'));
    delete process.env[OPTIONS_ENV];
    const service = new TaskService({
      namespace: f.namespace,
      defaultOptions: startOptions,
      stateRoot: stateRoot(f.namespace),
      publish: (_topic, type, event) => {
        events?.publish(f.namespace, type.replace('containerd.events.', '') as never, event).catch((e) => process.stderr.write(`shoal-shim: event: ${e.message}\n`));
      },
      lingerMs: lingerMs(),
      onShutdown: () => {
        // Stop listening first (server.close() unlinks the socket at once): a `start` probing
        // from now on finds no shim and starts another instead of handing containerd this one.
        const closed = Promise.race([server.close(), new Promise((r) => setTimeout(r, 200))]);
        const wait = events ? Promise.race([new Promise((r) => setTimeout(r, 2000)), (async () => { while (events.pending) await new Promise((r) => setTimeout(r, 20)); })()]) : Promise.resolve();
        void Promise.all([closed, wait])
          .finally(() => {
            removeStartLock(f.socket);
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
    warmUp(proto);
    trace('serve: warmed up');
    service.armLinger(); // a daemon no Create ever reaches ends too
  } catch (e) {
    report((e as Error).message);
    process.exit(1);
  }
}
