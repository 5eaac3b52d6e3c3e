/**
 * config.json `hooks`: order across the lifecycle (every hook appends its name to one log
 * file, shared with the container through a bind mount for the in-container startContainer
 * hook), the state JSON each hook gets on stdin, hook args/env, and failure semantics.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Case, CaseContext } from '../context';
import { Config, Hook } from '../bundle';
import { readText } from '../runtime';
import { CaseFailure, check, checkEqual } from '../tap';

const ALL = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
const STATUSES = ['creating', 'created', 'running', 'stopped'];

/** Makes a hook that logs `name` to `log` and saves its stdin to `<dir>/<name>.json` (paths as seen by the hook). */
function logHook(name: string, dir: string, sh = '/bin/sh'): Hook {
  return {
    path: sh,
    args: ['sh', '-c', `echo ${name} >> ${dir}/log; cat > ${dir}/${name}.json; echo "$CONF_HOOK $1" > ${dir}/${name}.env`, 'hook', name],
    env: ['CONF_HOOK=env-ok', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
  };
}

/** Adds all six hooks to `c`; the host-side log dir is bind-mounted at /hooklog. */
function addHooks(c: Config, hostDir: string): void {
  c.mounts!.push({ destination: '/hooklog', type: 'bind', source: hostDir, options: ['rbind', 'rw'] });
  c.hooks = {};
  for (const h of ALL) c.hooks[h] = [h === 'startContainer' ? logHook(h, '/hooklog') : logHook(h, hostDir)];
}

function hookDir(ctx: CaseContext): string {
  const d = ctx.file('hooks');
  fs.mkdirSync(d, { recursive: true });
  fs.chmodSync(d, 0o777);
  return d;
}

function logLines(dir: string): string[] {
  return readText(path.join(dir, 'log')).split('\n').filter(Boolean);
}

/** Runs a container with all hooks through create, start, kill and delete; returns the log dir. */
async function fullLifecycle(ctx: CaseContext) {
  const dir = hookDir(ctx);
  const s = await ctx.createSleeper((c) => addHooks(c, dir));
  check((await ctx.rt.start(s.id)).code === 0, 'start failed');
  await ctx.rt.kill(s.id, 'KILL');
  await ctx.rt.waitStatus(s.id, ['stopped']);
  const d = await ctx.rt.delete(s.id);
  check(d.code === 0, `delete exited ${d.code}`, { stderr: d.stderr });
  return { dir, s };
}

/** The state JSON hook `h` saved from its stdin. */
function hookState(dir: string, h: string): Record<string, any> {
  const raw = readText(path.join(dir, `${h}.json`));
  try {
    return JSON.parse(raw);
  } catch {
    throw new CaseFailure(`${h} hook got no state JSON on stdin`, { stdin: raw });
  }
}

/** Hook cases. */
export const hookCases: Case[] = [
  {
    name: 'hooks: create runs prestart, createRuntime, createContainer in order (and nothing else)',
    async run(ctx) {
      const dir = hookDir(ctx);
      await ctx.createSleeper((c) => addHooks(c, dir));
      checkEqual(logLines(dir), ['prestart', 'createRuntime', 'createContainer'], 'hooks run by create');
    },
  },
  {
    name: 'hooks: start runs startContainer before the process, and poststart',
    async run(ctx) {
      const dir = hookDir(ctx);
      const s = await ctx.createSleeper((c) => addHooks(c, dir), ['sh', '-c', 'echo process >> /hooklog/log; exec sleep 600']);
      const before = logLines(dir).length;
      const r = await ctx.rt.start(s.id);
      check(r.code === 0, `start exited ${r.code}`, { stderr: r.stderr });
      check(logLines(dir).slice(before).includes('poststart'), 'poststart did not run during start', { log: logLines(dir) });
      for (let i = 0; i < 50 && !logLines(dir).includes('process'); i++) await new Promise((res) => setTimeout(res, 100));
      const atStart = logLines(dir).slice(before).filter((l) => l !== 'poststart');
      checkEqual(atStart, ['startContainer', 'process'], 'startContainer runs at start, before the process');
    },
  },
  {
    name: 'hooks: delete runs poststop, last',
    async run(ctx) {
      const { dir } = await fullLifecycle(ctx);
      const log = logLines(dir);
      checkEqual(log[log.length - 1], 'poststop', 'last hook');
      checkEqual(log.filter((l) => l === 'poststop').length, 1, 'poststop runs once');
    },
  },
  {
    name: 'hooks: state on stdin (id, bundle, status)',
    async run(ctx) {
      const { dir, s } = await fullLifecycle(ctx);
      for (const h of ALL) {
        const st = hookState(dir, h);
        checkEqual(st.id, s.id, `${h}: state id`);
        checkEqual(st.bundle, s.bundle.dir, `${h}: state bundle`);
        check(STATUSES.includes(st.status), `${h}: state status ${st.status}`, { state: st });
      }
    },
  },
  {
    name: 'hooks: state pid is the host pid of the container process',
    async run(ctx) {
      const { dir, s } = await fullLifecycle(ctx);
      const bad = ALL.filter((h) => h !== 'poststop').map((h) => [h, hookState(dir, h).pid]).filter(([, pid]) => pid !== s.pid);
      checkEqual(bad, [], `hooks given a pid other than ${s.pid}`);
    },
  },
  {
    name: 'hooks: args and env',
    async run(ctx) {
      const { dir } = await fullLifecycle(ctx);
      for (const h of ALL) checkEqual(readText(path.join(dir, `${h}.env`)).trim(), `env-ok ${h}`, `${h}: hook env and args`);
    },
  },
  {
    name: 'hooks: failing createRuntime hook fails create and leaves no container',
    async run(ctx) {
      const b = ctx.bundle((c) => {
        c.process!.args = ['sleep', '600'];
        c.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', 'exit 7'] }] };
      });
      const id = ctx.newId();
      const r = await ctx.rt.create(id, b.dir);
      check(r.code !== 0, 'create succeeded although a createRuntime hook failed');
      check((await ctx.rt.state(id)) === null, 'a container exists after the failed create');
    },
  },
  {
    name: 'hooks: failing prestart hook fails create',
    async run(ctx) {
      const b = ctx.bundle((c) => {
        c.process!.args = ['sleep', '600'];
        c.hooks = { prestart: [{ path: '/bin/false' }] };
      });
      const id = ctx.newId();
      const r = await ctx.rt.create(id, b.dir);
      check(r.code !== 0, 'create succeeded although a prestart hook failed');
      check((await ctx.rt.state(id)) === null, 'a container exists after the failed create');
    },
  },
  {
    name: 'hooks: hook timeout fails create',
    async run(ctx) {
      const b = ctx.bundle((c) => {
        c.process!.args = ['sleep', '600'];
        c.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', 'exec sleep 20'], timeout: 1 }] };
      });
      const id = ctx.newId();
      const t0 = Date.now();
      const r = await ctx.rt.create(id, b.dir, { timeoutMs: 25000 });
      check(r.code !== 0, 'create succeeded although the hook timed out');
      check(Date.now() - t0 < 15000, `create took ${Date.now() - t0} ms with a 1 s hook timeout`);
    },
  },
  {
    name: 'hooks: failing poststop hook is only a warning',
    async run(ctx) {
      const s = await ctx.createSleeper((c) => {
        c.hooks = { poststop: [{ path: '/bin/false' }] };
      }, ['true']);
      check((await ctx.rt.start(s.id)).code === 0, 'start failed');
      await ctx.rt.waitStatus(s.id, ['stopped']);
      const d = await ctx.rt.delete(s.id);
      check(d.code === 0, `delete exited ${d.code} because of a failing poststop hook`, { stderr: d.stderr });
      check((await ctx.rt.state(s.id)) === null, 'the container still exists after delete');
    },
  },
  {
    name: 'hooks: failing poststart hook is only a warning',
    async run(ctx) {
      const s = await ctx.createSleeper((c) => {
        c.hooks = { poststart: [{ path: '/bin/false' }] };
      });
      const r = await ctx.rt.start(s.id);
      check(r.code === 0, `start exited ${r.code} because of a failing poststart hook`, { stderr: r.stderr });
      checkEqual((await ctx.rt.state(s.id))?.status, 'running', 'status after start');
    },
  },
];
