/*
 * `containerd-shim-shoal-v2 ... -bundle B delete`: containerd runs it when the shim is gone
 * (crashed, killed) to clean up after it. Force-kill the container through the runtime engine
 * (state root /run/containerd/shoal/<namespace>), unmount B/rootfs, remove the runtime state, and
 * print a containerd.task.v2.DeleteResponse on stdout. (The launcher removed the dead shim's
 * socket before it ran this.)
 */
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import type { Spec } from '../../../spec/src/config';
import { readConfig } from '../../../spec/src/validate';
import { containerCgroupOptions } from '../runtime/create';
import { deleteContainer } from '../runtime/delete';
import { ShoalError } from '../runtime/errors';
import { planCgroup } from '../runtime/cgroup/manager';
import { StateStore } from '../runtime/state';
import { unmountRootfs } from './rootfs';
import { varint } from './service';

/** The runtime engine's state root of a namespace (SHOAL_SHIM_STATE_ROOT overrides the base). */
export function stateRoot(namespace: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.SHOAL_SHIM_STATE_ROOT || '/run/containerd/shoal', namespace);
}

/** Encodes DeleteResponse{pid 1, exit_status 2, exited_at 3 (Timestamp{seconds 1, nanos 2})}. */
export function encodeDeleteResponse(pid: number, exitStatus: number, exitedAt: Date): Buffer {
  const ms = exitedAt.getTime();
  const ts = Buffer.concat([Buffer.from([0x08]), varint(Math.floor(ms / 1000)), Buffer.from([0x10]), varint((ms % 1000) * 1e6)]);
  const parts: Buffer[] = [];
  if (pid) parts.push(Buffer.from([0x08]), varint(pid));
  if (exitStatus) parts.push(Buffer.from([0x10]), varint(exitStatus));
  parts.push(Buffer.from([0x1a]), varint(ts.length), ts);
  return Buffer.concat(parts);
}

/** Whether something accepts connections on a unix socket path. */
export function canConnect(socketPath: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Kill and remove the cgroup the bundle's config.json gives the container (missing is fine). */
async function removePlannedCgroup(bundle: string, id: string, warn: (m: string) => void): Promise<void> {
  let config: Spec;
  try {
    config = readConfig(bundle) as Spec;
  } catch {
    return; // no config: Create never got that far
  }
  try {
    await planCgroup(containerCgroupOptions(id, config)).destroy();
  } catch (e) {
    warn(`remove cgroup of ${id}: ${(e as Error).message}`);
  }
}

/** Cleans up after a dead shim and returns the DeleteResponse bytes. */
export async function cleanupDeadShim(o: { id: string; namespace: string; bundle: string; warn: (m: string) => void }): Promise<Buffer> {
  // A container created with runc's `root` option recorded its state root in the bundle.
  let root = stateRoot(o.namespace);
  try {
    root = fs.readFileSync(path.join(o.bundle, 'shoal-state-root'), 'utf8').trim() || root;
  } catch {
    // the default root
  }
  const store = new StateStore(root);
  // The shim writes a container's state once it is created, with the init's pid (reported here,
  // as runc's shim reports its init.pid): a create the shim did not finish left none, and its
  // cgroup (which kills whatever of it runs) is found from the bundle.
  let pid = 0;
  try {
    pid = store.load(o.id).pid || 0;
  } catch (e) {
    // No state: the cgroup from the bundle. A corrupt one: deleteContainer below handles it.
    if (e instanceof ShoalError && e.code === 'NOT_FOUND') await removePlannedCgroup(o.bundle, o.id, o.warn);
  }
  try {
    await deleteContainer(store, o.id, true, o.warn);
  } catch (e) {
    o.warn(`delete ${o.id}: ${(e as Error).message}`);
  }
  try {
    await unmountRootfs(path.join(o.bundle, 'rootfs'));
  } catch (e) {
    o.warn(`unmount rootfs: ${(e as Error).message}`);
  }
  // (init.pid: what shims before the state carried the pid left)
  for (const f of ['init.pid', 'shoal-state-root']) fs.rmSync(path.join(o.bundle, f), { force: true });
  // (the dead shim's socket and start lock are removed by the launcher, under that lock: a
  // `start` may just have brought up the group's next daemon on the same path)
  return encodeDeleteResponse(pid, 128 + 9, new Date());
}
