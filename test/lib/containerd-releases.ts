/*
 * Newer containerd releases for the shim tests, from Debian's own archive: Debian 12's containerd
 * is 1.6; trixie carries 1.7 and sid 2.x. Their `containerd` and `ctr` are fetched with apt-get
 * into a cache of their own (a private sources list and package lists: the host's apt set-up and
 * installed packages are not touched) and unpacked with dpkg-deb -x, never installed. The test
 * harness fetches them before the suites run; a test uses a release that is there and runs.
 */
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';

/** A containerd release other than the installed one. */
export interface ContainerdRelease {
  /** What the tests call it. */
  name: string;
  /** The Debian suite it comes from. */
  suite: string;
  /** How `ctr version` starts its version lines (client and server). */
  version: string;
}

export const RELEASES: ContainerdRelease[] = [
  { name: 'containerd 1.7', suite: 'trixie', version: 'Version:  1.7.' },
  { name: 'containerd 2', suite: 'sid', version: 'Version:  2.' },
];

const CACHE = '/var/cache/shoal-test';

/** Where a release's binaries are unpacked (containerd, ctr). */
export function releaseBin(r: ContainerdRelease): string {
  return path.join(CACHE, `containerd-${r.suite}`, 'usr', 'bin');
}

/**
 * The release's bin directory when its containerd runs here, else why not (not fetched, or a
 * binary that needs a newer C library than this Debian's).
 */
export function usableRelease(r: ContainerdRelease): { bin: string } | { unavailable: string } {
  const bin = releaseBin(r);
  if (!fs.existsSync(path.join(bin, 'containerd')) || !fs.existsSync(path.join(bin, 'ctr')))
    return { unavailable: `${r.name} (Debian ${r.suite}) is not fetched: run the tests through test/harness.js` };
  const v = spawnSync(path.join(bin, 'containerd'), ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (v.status !== 0) return { unavailable: `${r.name} (Debian ${r.suite}) does not run here: ${(v.stderr || v.error?.message || '').trim().split('\n')[0]}` };
  return { bin };
}

/**
 * Fetches every release that is not cached yet. Returns the failures (empty when all are there);
 * `log` hears each step.
 */
export function fetchReleases(log: (msg: string) => void): string[] {
  const failures: string[] = [];
  const missing = RELEASES.filter((r) => !fs.existsSync(path.join(releaseBin(r), 'containerd')));
  if (missing.length === 0) return failures;
  const apt = path.join(CACHE, 'apt');
  for (const d of ['lists/partial', 'cache/archives/partial', 'debs']) fs.mkdirSync(path.join(apt, d), { recursive: true });
  const sources = path.join(apt, 'sources.list');
  fs.writeFileSync(sources, missing.map((r) => `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian ${r.suite} main\n`).join(''));
  const opts = [
    '-o', `Dir::Etc::sourcelist=${sources}`, '-o', 'Dir::Etc::sourceparts=-',
    '-o', `Dir::State::Lists=${path.join(apt, 'lists')}`, '-o', `Dir::Cache=${path.join(apt, 'cache')}`,
    // (root's download into a directory the _apt user cannot write: no sandbox warning)
    '-o', 'APT::Sandbox::User=root',
  ];
  const step = (what: string, cmd: string, args: string[], cwd?: string): boolean => {
    log(`$ ${cmd} ${args.join(' ')}`);
    const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 10 * 60 * 1000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.status === 0) return true;
    failures.push(`${what}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(-2).join(' | ')}`);
    return false;
  };
  if (!step('apt-get update (Debian trixie/sid lists)', 'apt-get', [...opts, 'update'])) return failures;
  for (const r of missing) {
    const debs = path.join(apt, 'debs', r.suite);
    fs.rmSync(debs, { recursive: true, force: true });
    fs.mkdirSync(debs, { recursive: true });
    if (!step(`apt-get download containerd/${r.suite}`, 'apt-get', [...opts, 'download', `containerd/${r.suite}`], debs)) continue;
    const deb = fs.readdirSync(debs).find((f) => f.endsWith('.deb'));
    const into = path.dirname(path.dirname(releaseBin(r)));
    const tmp = `${into}.tmp`;
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!deb || !step(`dpkg-deb -x containerd/${r.suite}`, 'dpkg-deb', ['-x', path.join(debs, deb), tmp])) continue;
    fs.rmSync(into, { recursive: true, force: true });
    fs.renameSync(tmp, into);
    fs.rmSync(debs, { recursive: true, force: true });
    log(`${r.name}: ${deb}`);
  }
  return failures;
}
