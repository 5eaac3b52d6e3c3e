#!/usr/bin/env node
/**
 * OCI runtime conformance runner.
 *
 *   node build/conformance/src/runner.js [-r RUNTIME] [--filter SUBSTR]... [--cgroup-only]
 *        [--jobs N] [--keep] [--name NAME] [--list]
 *
 * Builds a busybox+probe rootfs once, runs every selected case (a few at a time) against the
 * runtime's CLI, prints TAP and ends with `N passed, N failed, N skipped`. Cases named in
 * conformance/known-failures/<NAME>.txt count as skipped with the listed reason; if one of them
 * passes, that is reported so the list can shrink. Exits 1 when any case failed.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { randomBytes } from 'crypto';
import { buildBusyboxRootfs, findBusybox } from './rootfs';
import { Runtime } from './runtime';
import { detectHost } from './host';
import { Case, CaseContext, RunEnv } from './context';
import { CaseFailure, CaseSkip, Outcome, TapWriter } from './tap';
import { allCases } from './cases';

/** The repository root (build/conformance/src/runner.js -> three levels up from build/). */
export const REPO = path.resolve(__dirname, '..', '..', '..');

/** Parsed command line. */
export interface Options {
  runtime: string;
  name: string;
  filters: string[];
  jobs: number;
  keep: boolean;
  list: boolean;
}

/** Parses argv (without node and script). Exits with usage on errors. */
export function parseArgs(argv: string[]): Options {
  const o: Options = {
    runtime: path.join(REPO, 'build/shim/src/cli/main.js'),
    name: '',
    filters: [],
    jobs: Math.max(2, Math.min(4, os.cpus().length)),
    keep: false,
    list: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const val = () => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case '-r': case '--runtime': o.runtime = path.resolve(val()); break;
      case '--name': o.name = val(); break;
      case '--filter': o.filters.push(val()); break;
      case '--cgroup-only': o.filters.push('cgroup'); break;
      case '-j': case '--jobs': o.jobs = Math.max(1, parseInt(val(), 10) || 1); break;
      case '--keep': o.keep = true; break;
      case '--list': o.list = true; break;
      case '-h': case '--help':
        process.stdout.write('usage: runner.js [-r RUNTIME] [--name NAME] [--filter SUBSTR]... [--cgroup-only] [-j N] [--keep] [--list]\n');
        process.exit(0);
      default:
        process.stderr.write(`runner: unknown argument ${argv[i]}\n`);
        process.exit(2);
    }
  }
  if (!o.name) {
    const base = path.basename(o.runtime).replace(/\.js$/, '');
    o.name = base === 'main' ? 'shoal' : base;
  }
  return o;
}

/** Reads known-failures/<name>.txt: case name -> reason (from the `# reason` comment). */
export function loadKnownFailures(name: string): Map<string, string> {
  const file = path.join(REPO, 'conformance/known-failures', `${name}.txt`);
  const out = new Map<string, string>();
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return out;
  }
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const hash = line.indexOf(' #');
    const caseName = (hash >= 0 ? line.slice(0, hash) : line).trim();
    out.set(caseName, hash >= 0 ? line.slice(hash + 2).trim() : 'listed in known-failures');
  }
  return out;
}

/** Locates the static probe (build/Release/shoal-probe), compiling it with gcc into `tmp` if missing. */
export function locateProbe(tmp: string): string {
  const built = path.join(REPO, 'build/Release/shoal-probe');
  if (fs.existsSync(built)) return built;
  const out = path.join(tmp, 'shoal-probe');
  execFileSync('gcc', ['-std=gnu11', '-O2', '-static', '-o', out, path.join(REPO, 'native/probe/probe.c')], { stdio: ['ignore', 'ignore', 'pipe'] });
  process.stdout.write(`# ${built} missing; compiled the probe with gcc into ${out}\n`);
  return out;
}

/** Upper bound for one case (each runtime command also has its own 30 s limit). */
const CASE_TIMEOUT_MS = 90000;

/** Runs one case with its own context and always cleans up. */
async function runCase(c: Case, env: RunEnv, known: Map<string, string>): Promise<Outcome> {
  const t0 = Date.now();
  const ctx = new CaseContext(env, c.name);
  let outcome: Outcome;
  try {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new CaseFailure(`case timed out after ${CASE_TIMEOUT_MS / 1000} s`)), CASE_TIMEOUT_MS);
    });
    await Promise.race([c.run(ctx), limit]).finally(() => clearTimeout(timer));
    outcome = { name: c.name, status: 'pass', ms: 0 };
  } catch (e) {
    if (e instanceof CaseSkip) outcome = { name: c.name, status: 'skip', reason: e.message, ms: 0 };
    else if (e instanceof CaseFailure) outcome = { name: c.name, status: 'fail', reason: e.message, diag: e.diag, ms: 0 };
    else outcome = { name: c.name, status: 'fail', reason: `exception: ${(e as Error)?.stack ?? e}`, ms: 0 };
  } finally {
    try {
      await ctx.cleanup();
    } catch (e) {
      process.stderr.write(`# cleanup of ${c.name} failed: ${e}\n`);
    }
  }
  const reason = known.get(c.name);
  if (reason !== undefined) {
    if (outcome.status === 'fail') outcome = { ...outcome, status: 'known-failure', diag: { message: outcome.reason }, reason };
    else if (outcome.status === 'pass') outcome = { ...outcome, status: 'unexpected-pass', reason };
  }
  outcome.ms = Date.now() - t0;
  return outcome;
}

/** Entry point. */
export async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  // A closed stdout (e.g. `| head`) must not abort the run before cleanup.
  process.stdout.on('error', () => {});
  let cases = allCases();
  if (o.filters.length) {
    cases = cases.filter((c) => o.filters.some((f) => c.name.includes(f) || (c.tags ?? []).some((t) => t.includes(f))));
  }
  if (o.list) {
    for (const c of cases) process.stdout.write(`${c.name}\n`);
    return 0;
  }
  if (process.getuid && process.getuid() !== 0) {
    process.stderr.write('runner: must run as root\n');
    return 2;
  }
  if (!fs.existsSync(o.runtime)) {
    process.stderr.write(`runner: runtime ${o.runtime} not found\n`);
    return 2;
  }
  if (!findBusybox()) {
    process.stderr.write('runner: busybox not found (apt-get install busybox-static)\n');
    return 2;
  }
  const tag = randomBytes(3).toString('hex');
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), `conf-${tag}-`));
  fs.chmodSync(workDir, 0o755);
  const tap = new TapWriter();
  const known = loadKnownFailures(o.name);
  try {
    const probeBin = locateProbe(workDir);
    const baseRootfs = buildBusyboxRootfs(path.join(workDir, 'base-rootfs'), { probe: probeBin });
    const host = detectHost();
    const rt = new Runtime(o.runtime, path.join(workDir, 'state'), path.join(workDir, 'logs'));
    const env: RunEnv = { rt, host, baseRootfs, probeBin, workDir, tag, keep: o.keep };
    process.stdout.write(`# runtime ${o.runtime} (known-failures: ${o.name}.txt, ${known.size} listed), cgroup ${host.cgroup}, ${cases.length} cases, ${o.jobs} jobs, work dir ${workDir}\n`);
    tap.plan(cases.length);
    // Run up to o.jobs cases at once but print outcomes in case order.
    const results: Array<Outcome | undefined> = new Array(cases.length);
    let next = 0;
    let printed = 0;
    const flush = () => {
      while (printed < cases.length && results[printed]) tap.report(results[printed++]!);
    };
    // On SIGINT/SIGTERM stop scheduling; running cases still clean up (containers, cgroups).
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`runner: ${sig}: finishing running cases and cleaning up\n`);
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    const worker = async () => {
      while (next < cases.length && !stopping) {
        const i = next++;
        results[i] = await runCase(cases[i], env, known);
        flush();
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.jobs, cases.length) }, worker));
    flush();
  } finally {
    if (!o.keep) {
      await new Promise((r) => setTimeout(r, 100));
      fs.rmSync(workDir, { recursive: true, force: true });
    } else {
      process.stdout.write(`# kept ${workDir}\n`);
    }
  }
  tap.finish();
  return tap.failed > 0 ? 1 : 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`runner: ${e?.stack ?? e}\n`);
      process.exit(2);
    },
  );
}
