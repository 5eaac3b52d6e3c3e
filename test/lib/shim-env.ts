/*
 * Shared set-up of the tests that drive containerd-shim-shoal-v2 through a real containerd:
 * containerd in its sandbox with build/Release on its PATH (so io.containerd.shoal.v2 resolves
 * to our launcher), the busybox image imported, and the small ctr helpers the tests use.
 */
import { suite, Test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as path from 'path';
import { cannotRun, CmdResult, Containerd, skip, startContainerd } from './daemons';
import { ociImageTar } from './image';
import { TtrpcClient } from '../../shim/src/ttrpc/client';
export { alive } from './shoal';
import { RELEASES, usableRelease } from './containerd-releases';

/** The runtime name containerd resolves to containerd-shim-shoal-v2. */
export const SHIM_RUNTIME = 'io.containerd.shoal.v2';
const RELEASE = path.resolve(__dirname, '../../Release');

/** containerd for a shim test file: either running, unavailable here (skip), or failed (fail). */
export interface ShimContainerd {
  cd?: Containerd;
  image: string;
  unavailable?: string;
  startError?: Error;
}

/**
 * Start containerd with the shim on its PATH and import the test image (for test.before). `bin`:
 * the directory of another containerd and ctr (test/lib/containerd-releases.ts).
 */
export async function startShimContainerd(namespace: string, env?: NodeJS.ProcessEnv, bin?: string): Promise<ShimContainerd> {
  let unavailable = cannotRun(bin ? [] : ['containerd', 'ctr']);
  if (!unavailable && !fs.existsSync(path.join(RELEASE, 'containerd-shim-shoal-v2'))) unavailable = 'containerd-shim-shoal-v2 is not built';
  if (unavailable) return { image: '', unavailable };
  if (!(process.env.PATH ?? '').split(':').includes(RELEASE)) process.env.PATH = `${RELEASE}:${process.env.PATH}`;
  let cd: Containerd | undefined;
  try {
    cd = await startContainerd({ namespace, env, bin });
    const oci = ociImageTar();
    const r = cd.ctr(['images', 'import', oci.tar]);
    if (r.code !== 0) throw new Error(`ctr images import: ${r.stderr}`);
    return { cd, image: oci.name };
  } catch (e) {
    return { cd, image: '', startError: e as Error };
  }
}

/**
 * Defines and runs a test file's tests once per containerd: the installed one (Debian 12's), then
 * each release of containerd-releases.ts, a uvu suite each. `define` registers the tests on `test`;
 * `start` starts that containerd (or says why there is none: a skip); `version` is how `ctr
 * version` shows a release's version.
 */
export function perContainerd(namespacePrefix: string, define: (test: Test, start: () => Promise<ShimContainerd>, version?: string) => void): void {
  const installed = suite('containerd (installed)');
  define(installed, () => startShimContainerd(`${namespacePrefix}-${process.pid}`));
  installed.run();
  for (const release of RELEASES) {
    const s = suite(release.name);
    define(s, async () => {
      const r = usableRelease(release);
      if ('unavailable' in r) return { image: '', unavailable: r.unavailable };
      return startShimContainerd(`${namespacePrefix}-${release.suite}-${process.pid}`, undefined, r.bin);
    }, release.version);
    s.run();
  }
}

/** The running containerd, or undefined after printing a skip; throws when it failed to start. */
export function ready(s: ShimContainerd | undefined): Containerd | undefined {
  if (!s) throw new Error('containerd was not started');
  if (s.unavailable) return void skip(s.unavailable);
  if (s.startError) throw s.startError;
  return s.cd!;
}

/** Assert a command succeeded; its trimmed stdout. */
export function ok(r: CmdResult, what: string): string {
  assert.is(r.code, 0, `${what} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}

/** Task status by id, from `ctr tasks ls`. */
export function taskStatuses(c: Containerd): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of c.ctr(['tasks', 'ls']).stdout.split('\n').slice(1)) {
    const [id, , status] = line.trim().split(/\s+/);
    if (id) out.set(id, status);
  }
  return out;
}

/** Kill (SIGKILL), then delete the tasks and containers `ids`, whatever state they are in. */
export async function removeAll(c: Containerd, ids: string[]): Promise<void> {
  for (const id of ids) {
    c.ctr(['tasks', 'kill', '-s', 'SIGKILL', id]);
    await waitFor(`${id} stopped`, () => taskStatuses(c).get(id) !== 'RUNNING', 10_000).catch(() => undefined);
    c.ctr(['tasks', 'delete', '-f', id]);
    c.ctr(['containers', 'delete', id]);
  }
}

/** Poll fn every 100 ms until it holds; throws naming `what` after timeoutMs. */
export async function waitFor(what: string, fn: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The bundle containerd made for a task (host path: the sandbox does not hide its temp dir). */
export function bundleOf(c: Containerd, id: string): string {
  return path.join(c.sandbox.dir, 'containerd', 'state', 'io.containerd.runtime.v2.task', c.namespace, id);
}

/** The shim's socket as seen from the host (/run in the sandbox is <dir>/run). */
export function shimSocket(c: Containerd, id: string): string {
  const address = fs.readFileSync(path.join(bundleOf(c, id), 'address'), 'utf8').trim();
  return path.join(c.sandbox.dir, address.replace(/^unix:\/\//, ''));
}

/** The pid of the shim serving task `id`, as its Connect answers. */
export async function shimPid(c: Containerd, id: string): Promise<number> {
  const client = await TtrpcClient.connect(shimSocket(c, id));
  try {
    return (await client.invoke('containerd.task.v2.Task', 'Connect', { id })).shim_pid;
  } finally {
    client.close();
  }
}
