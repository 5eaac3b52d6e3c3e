/**
 * docker benchmark for shoal (issue 5): `docker run --rm IMG /bin/true` with `--runtime shoal`
 * (dockerd `--add-runtime shoal=<abs build/shoal.js>`: containerd-shim-runc-v2 drives shoal's
 * runc-compatible CLI) against docker's default runc, in the same dockerd; and the same path one
 * level down, `ctr run --rm --runc-binary build/shoal.js` against plain `ctr run --rm` (runc), in
 * the same containerd. Not a test: `npm test` never runs it.
 *
 *   npx tsc -p bench && node build/bench/docker.js [--iterations N] [--warmup N] [--variants LIST]
 *
 * Variants, interleaved (every iteration runs each once, in a fresh random order), medians and
 * ratios to runc:
 *   docker-runc     docker run --rm IMG /bin/true                      (default runtime runc)
 *   docker-shoal    docker run --rm --runtime shoal IMG /bin/true
 *   ctr-runc        ctr run --rm --runtime io.containerd.runc.v2 IMG ID /bin/true
 *   ctr-shoalbin    ctr run --rm --runtime io.containerd.runc.v2 --runc-binary build/shoal.js ...
 *
 * Must run as root. containerd and dockerd run in a private mount namespace (test/lib/daemons.ts);
 * everything is removed at the end, also after a failure or on SIGINT/SIGTERM.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Containerd, Dockerd, cannotRun, startContainerd, startDockerd } from '../test/lib/daemons';
import { ociImageTar, rootfsTar } from '../test/lib/image';
import { timeCommand } from './lib/exec';
import { CtrNamespace, CommonOptions, checkVariants, commonFlag, loadavg, onSignals, parseArgs, record, repoRoot, Samples, shuffle, stripEnv, summaries, table, versions, writeJson } from './lib/daemon';
import { ms } from './lib/stats';

const VARIANTS = ['docker-runc', 'docker-shoal', 'ctr-runc', 'ctr-shoalbin'];
const IMAGE = 'shoalbench:latest';

type Options = CommonOptions;

const USAGE = `usage: node build/bench/docker.js [options]
  --iterations N     measured iterations (default 20)
  --warmup N         unmeasured iterations first (default 2)
  --variants LIST    subset of ${VARIANTS.join(',')} (default all)
  --out FILE         JSON results (default bench/results/docker-<date>.json)
  --no-json          do not write JSON
  --keep-env         keep NODE_EXTRA_CA_CERTS, NODE_OPTIONS, ... (stripped by default)
`;

function parseOptions(argv: string[]): Options {
  const o: Options = { iterations: 20, warmup: 2, variants: VARIANTS, out: '', keepEnv: false };
  parseArgs(argv, (flag, value, count) => commonFlag(o, flag, value, count), USAGE);
  checkVariants(o, VARIANTS);
  return o;
}

class Bench {
  readonly repo = repoRoot();
  readonly shoalCli = path.join(this.repo, 'build', 'shoal.js');
  readonly tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bench-dk-'));
  cd: Containerd | null = null;
  dd: Dockerd | null = null;
  ctrNs: CtrNamespace | null = null;
  ctrImage = '';
  samples: Samples = {};
  errors: string[] = [];
  info: Record<string, unknown> = {};
  state = { stopping: false };

  constructor(readonly o: Options, readonly stripped: string[]) {}

  async setup(): Promise<void> {
    if (process.getuid?.() !== 0) throw new Error('run as root');
    const why = cannotRun(['containerd', 'ctr', 'containerd-shim-runc-v2', 'runc', 'dockerd', 'docker']);
    if (why) throw new Error(why);
    if (!fs.existsSync(this.shoalCli)) throw new Error(`${this.shoalCli} missing: build shoal first (see bench/README.md)`);
    this.cd = await startContainerd({ namespace: `bd${process.pid}` });
    this.dd = await startDockerd(this.cd, { runtimes: { shoal: this.shoalCli } });
    const r = this.dd.docker(['import', '--change', 'CMD ["sh"]', rootfsTar(), IMAGE]);
    if (r.code !== 0) throw new Error(`docker import: ${r.stderr}`);
    if (this.o.variants.some((v) => v.startsWith('ctr-'))) {
      this.ctrNs = new CtrNamespace(this.cd, `bd${process.pid}-ctr`, this.tmp);
      this.ctrNs.importImage(ociImageTar().tar);
      this.ctrImage = ociImageTar().name;
    }
    const v = versions(this.cd.sandbox);
    v.docker = this.dd.docker(['version', '--format', '{{.Server.Version}}']).stdout.trim();
    this.info.versions = v;
  }

  argv(variant: string, name: string): string[] {
    switch (variant) {
      case 'docker-runc': return this.dd!.dockerArgv(['run', '--rm', '--name', name, IMAGE, '/bin/true']);
      case 'docker-shoal': return this.dd!.dockerArgv(['run', '--rm', '--runtime', 'shoal', '--name', name, IMAGE, '/bin/true']);
      case 'ctr-runc': return this.ctrNs!.argv(['run', '--rm', '--runtime', 'io.containerd.runc.v2', this.ctrImage, name, '/bin/true']);
      case 'ctr-shoalbin': return this.ctrNs!.argv(['run', '--rm', '--runtime', 'io.containerd.runc.v2', '--runc-binary', this.shoalCli, this.ctrImage, name, '/bin/true']);
      default: throw new Error(variant);
    }
  }

  run(): void {
    this.info.loadavgBefore = loadavg();
    const total = this.o.warmup + this.o.iterations;
    const log = path.join(this.tmp, 'cmd.log');
    for (let i = 0; i < total && !this.state.stopping; i++) {
      for (const v of shuffle([...this.o.variants])) {
        if (this.state.stopping) break;
        const name = `bd${i}-${v}`;
        const t = timeCommand(this.argv(v, name), log, process.env, 60_000);
        if (t.status === 0) {
          if (i >= this.o.warmup) record(this.samples, 'run --rm /bin/true', v, t.ns / 1e6);
        } else {
          const msg = `${v} ${name}: exit ${t.status ?? t.signal}: ${t.log.trim().split('\n').slice(-3).join(' | ')}`;
          this.errors.push(msg);
          process.stderr.write(`\nfailed (sample dropped): ${msg}\n`);
          if (v.startsWith('docker')) this.dd!.docker(['rm', '-f', name]);
          else {
            this.ctrNs!.run(['tasks', 'delete', '-f', name]);
            this.ctrNs!.run(['containers', 'delete', name]);
          }
        }
      }
      process.stderr.write(`\r${i + 1}/${total}`);
    }
    process.stderr.write('\n');
    this.info.loadavgAfter = loadavg();
  }

  async cleanup(): Promise<void> {
    try {
      if (this.ctrNs) {
        const rm = await this.ctrNs.removeAll();
        for (const l of rm.left) this.errors.push(`cleanup: could not remove ${l}`);
      }
      if (this.dd) await this.dd.stop();
    } catch (e) {
      this.errors.push(`cleanup: ${(e as Error).message}`);
    }
    try {
      await this.cd?.stop();
    } catch (e) {
      this.errors.push(`cleanup: ${(e as Error).message}`);
    }
    this.dd = null;
    this.cd = null;
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }

  report(): unknown {
    const sum = summaries(this.samples)['run --rm /bin/true'] ?? {};
    const lines: string[] = [`\n## run --rm /bin/true (ms; ${this.o.iterations} iterations after ${this.o.warmup} warm-up, interleaved)\n`];
    lines.push(table(['variant', 'n', 'min', 'median', 'p90', 'max'], this.o.variants.filter((v) => sum[v]).map((v) => [v, String(sum[v].n), ms(sum[v].min), `**${ms(sum[v].median)}**`, ms(sum[v].p90), ms(sum[v].max)])));
    const ratios: Record<string, number> = {};
    const ratio = (a: string, b: string) => {
      if (!sum[a] || !sum[b]) return;
      const r = sum[a].median / sum[b].median;
      ratios[`${a}/${b}`] = r;
      lines.push(`${a} / ${b}: median ${r.toFixed(2)}x (+${ms(sum[a].median - sum[b].median)} ms), min ${(sum[a].min / sum[b].min).toFixed(2)}x`);
    };
    lines.push('');
    ratio('docker-shoal', 'docker-runc');
    ratio('ctr-shoalbin', 'ctr-runc');
    ratio('docker-runc', 'ctr-runc');
    lines.push(`\nload average: before ${this.info.loadavgBefore}, after ${this.info.loadavgAfter}`);
    if (this.stripped.length) lines.push(`stripped from the environment: ${this.stripped.join(', ')}`);
    if (this.errors.length) lines.push(`\nerrors (${this.errors.length}):\n  ${this.errors.join('\n  ')}`);
    process.stdout.write(lines.join('\n') + '\n');
    return { summaries: sum, ratios };
  }
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const stripped = o.keepEnv ? [] : stripEnv();
  const b = new Bench(o, stripped);
  onSignals(b.state, () => b.cd?.sandbox.killAllSync());
  const started = new Date().toISOString();
  const loadAtStart = loadavg();
  try {
    await b.setup();
    process.stderr.write(`containerd + dockerd up (load ${loadAtStart}); ${JSON.stringify(b.info.versions)}\n`);
    b.run();
  } catch (e) {
    b.errors.push(`fatal: ${(e as Error).stack ?? e}`);
  } finally {
    await b.cleanup();
  }
  const result = b.report();
  const file = writeJson(o.out, 'docker-', {
    benchmark: 'docker', started, options: o, strippedEnv: stripped, loadavgAtStart: loadAtStart, loadavgAtEnd: loadavg(), info: b.info,
    ...(result as object), samples: b.samples, errors: b.errors,
  });
  if (file) process.stdout.write(`\nresults: ${path.relative(process.cwd(), file)}\n`);
  return b.errors.length ? 1 : 0;
}

main().then((c) => process.exit(c), (e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
