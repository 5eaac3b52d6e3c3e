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
import { check, checkEqual } from '../tap';

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

/** Hook cases. */
export const hookCases: Case[] = [
  {
    name: 'hooks: order across create, start and delete',
    async run(ctx) {
      const dir = hookDir(ctx);
      const s = await ctx.createSleeper((c) => addHooks(c, dir), ['sh', '-c', 'echo process >> /hooklog/log; exec sleep 600']);
      checkEqual(logLines(dir), ['prestart', 'createRuntime', 'createContainer'], 'hooks run by create');
      const r = await ctx.rt.start(s.id);
      check(r.code === 0, `start exited ${r.code}`, { stderr: r.stderr });
      for (let i = 0; i < 50 && !logLines(dir).includes('process'); i++) await new Promise((res) => setTimeout(res, 100));
      const afterStart = logLines(dir);
      checkEqual(afterStart.slice(0, 4), ['prestart', 'createRuntime', 'createContainer', 'startContainer'], 'startContainer runs at start, first');
      checkEqual(afterStart.slice(4).sort(), ['process', 'poststart'].sort(), 'the process and poststart after startContainer');
      await ctx.rt.kill(s.id, 'KILL');
      await ctx.rt.waitStatus(s.id, ['stopped']);
      const d = await ctx.rt.delete(s.id);
      check(d.code === 0, `delete exited ${d.code}`, { stderr: d.stderr });
      checkEqual(logLines(dir).slice(6), ['poststop'], 'poststop runs at delete, last');
    },
  },
  {
    name: 'hooks: state on stdin, args and env',
    async run(ctx) {
      const dir = hookDir(ctx);
      const s = await ctx.createSleeper((c) => addHooks(c, dir));
      check((await ctx.rt.start(s.id)).code === 0, 'start failed');
      await ctx.rt.kill(s.id, 'KILL');
      await ctx.rt.waitStatus(s.id, ['stopped']);
      check((await ctx.rt.delete(s.id)).code === 0, 'delete failed');
      for (const h of ALL) {
        const raw = readText(path.join(dir, `${h}.json`));
        let st: Record<string, any>;
        try {
          st = JSON.parse(raw);
        } catch {
          check(false, `${h} hook got no state JSON on stdin`, { stdin: raw });
        }
        checkEqual(st.id, s.id, `${h}: state id`);
        checkEqual(st.bundle, s.bundle.dir, `${h}: state bundle`);
        check(STATUSES.includes(st.status), `${h}: state status ${st.status}`, { state: st });
        if (h !== 'poststop') checkEqual(st.pid, s.pid, `${h}: state pid`);
        checkEqual(readText(path.join(dir, `${h}.env`)).trim(), `env-ok ${h}`, `${h}: hook env and args`);
      }
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
        c.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', 'sleep 20'], timeout: 1 }] };
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
