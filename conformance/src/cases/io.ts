/**
 * The container's stdio and inherited fds: a terminal through --console-socket (the pty
 * master is received on the host by `shoal-probe --recv-console`), /dev/console, consoleSize,
 * --preserve-fds, LISTEN_FDS socket activation, and that no other host fd leaks in.
 */
import * as fs from 'fs';
import { spawn } from 'child_process';
import { Case, CaseContext, parseProbe, Probe } from '../context';
import { Config } from '../bundle';
import { ExecOptions, readText, sleep } from '../runtime';
import { check, checkEqual } from '../tap';

/**
 * Creates and starts a probe container with `create` options, waits until it stopped and
 * returns the probe JSON from the container's stdout.
 */
async function createStartCollect(ctx: CaseContext, mutate: (c: Config) => void, createOpts: { preserveFds?: number } & ExecOptions) {
  const b = ctx.bundle((c) => mutate(c));
  const id = ctx.newId();
  const outFile = ctx.file(`${id}.stdout`);
  const r = await ctx.rt.create(id, b.dir, { ...createOpts, stdoutFile: outFile });
  check(r.code === 0, `create exited ${r.code}`, { stderr: r.stderr });
  const s = await ctx.rt.start(id);
  check(s.code === 0, `start exited ${s.code}`, { stderr: s.stderr });
  const st = await ctx.rt.waitStatus(id, ['stopped']);
  checkEqual(st?.status, 'stopped', 'the probe container did not stop');
  return parseProbe(readText(outFile), r);
}

function openFiles(ctx: CaseContext, names: string[]): number[] {
  return names.map((n) => {
    fs.writeFileSync(ctx.file(n), n);
    const fd = fs.openSync(ctx.file(n), 'r');
    ctx.defer(() => fs.closeSync(fd));
    return fd;
  });
}

const stdFds = (p: Probe) => Object.keys(p.fds).map(Number).sort((a, b) => a - b);

/** I/O cases. */
export const ioCases: Case[] = [
  {
    name: 'io: terminal via --console-socket',
    async run(ctx) {
      const sock = ctx.file('console.sock');
      const outFile = ctx.file('console.out');
      const errFile = ctx.file('console.err');
      const out = fs.openSync(outFile, 'w');
      const err = fs.openSync(errFile, 'w');
      const recv = spawn(ctx.env.probeBin, ['--recv-console', sock], { stdio: ['ignore', out, err] });
      fs.closeSync(out);
      fs.closeSync(err);
      const exited = new Promise<number>((res) => recv.on('exit', (c) => res(c ?? -1)));
      ctx.defer(() => recv.exitCode === null && recv.kill('SIGKILL'));
      for (let i = 0; i < 50 && !readText(errFile).includes('console-listening'); i++) await sleep(50);
      const b = ctx.bundle((c) => {
        c.process!.terminal = true;
        c.process!.consoleSize = { height: 33, width: 111 };
      });
      const id = ctx.newId();
      const r = await ctx.rt.create(id, b.dir, { consoleSocket: sock });
      check(r.code === 0, `create --console-socket exited ${r.code}`, { stderr: r.stderr });
      check((await ctx.rt.start(id)).code === 0, 'start failed');
      await ctx.rt.waitStatus(id, ['stopped']);
      const code = await Promise.race([exited, sleep(10000).then(() => -2)]);
      const info = readText(errFile);
      check(code === 0, `console receiver exited ${code}`, { receiver: info });
      check(/console-isatty: 1/.test(info), 'the fd received over the console socket is not a tty', { receiver: info });
      const p = parseProbe(readText(outFile));
      checkEqual(p.tty, { 0: true, 1: true, 2: true }, 'isatty(0..2) inside');
      checkEqual(p.winsize, [33, 111], 'terminal size from consoleSize');
      const con = p.dev.console;
      check(con && con.type === 'c' && con.major === 136, '/dev/console is not the pty slave', { console: con });
      check(/^\/dev\/pts\/\d+$/.test(p.fds['0'] ?? ''), 'stdin is not a /dev/pts slave', { fds: p.fds });
    },
  },
  {
    name: 'io: --preserve-fds passes extra fds',
    async run(ctx) {
      const fds = openFiles(ctx, ['pres-a', 'pres-b']);
      const p = await createStartCollect(ctx, () => {}, { preserveFds: 2, extraFds: fds });
      checkEqual(stdFds(p), [0, 1, 2, 3, 4], 'fds seen by the process');
      check(String(p.fds['3']).endsWith('pres-a') && String(p.fds['4']).endsWith('pres-b'), 'fds 3 and 4 are not the passed files', { fds: p.fds });
    },
  },
  {
    name: 'io: no host fds leak without --preserve-fds',
    async run(ctx) {
      const fds = openFiles(ctx, ['leak-a', 'leak-b']);
      const p = await createStartCollect(ctx, () => {}, { extraFds: fds });
      checkEqual(stdFds(p), [0, 1, 2], 'fds seen by the process');
    },
  },
  {
    name: 'io: LISTEN_FDS socket activation',
    async run(ctx) {
      const fds = openFiles(ctx, ['listen-a']);
      const p = await createStartCollect(ctx, () => {}, { listenFds: 1, extraFds: fds });
      check(p.env.includes('LISTEN_FDS=1'), 'LISTEN_FDS=1 not in the environment', { env: p.env });
      check(p.env.includes(`LISTEN_PID=${p.pid}`), 'LISTEN_PID is not the process pid', { env: p.env, pid: p.pid });
      check(String(p.fds['3'] ?? '').endsWith('listen-a'), 'fd 3 is not the activated fd', { fds: p.fds });
    },
  },
  {
    name: 'io: stdio of create is handed to the process',
    async run(ctx) {
      const p = await createStartCollect(ctx, (c) => { c.process!.args = ['/probe']; }, {});
      check(String(p.fds['1']).endsWith('.stdout'), 'stdout of the process is not the file given to create', { fds: p.fds });
    },
  },
];
