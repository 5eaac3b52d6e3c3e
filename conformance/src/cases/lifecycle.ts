/**
 * runtime.md lifecycle and state rules, driven only through the CLI: status after each
 * operation, the operations that must fail in each state (and leave the state unchanged), and
 * the failure modes of create (duplicate id, missing bundle, malformed config).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Case, CaseContext } from '../context';
import { sleep } from '../runtime';
import { check, checkEqual } from '../tap';

async function startedSleeper(ctx: CaseContext, args?: string[]) {
  const s = await ctx.createSleeper(() => {}, args);
  const r = await ctx.rt.start(s.id);
  check(r.code === 0, `start exited ${r.code}`, { stderr: r.stderr });
  return s;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Lifecycle and state cases. */
export const lifecycleCases: Case[] = [
  {
    name: 'lifecycle: create gives status created, pid, bundle and pid-file',
    async run(ctx) {
      const s = await ctx.createSleeper();
      const st = await ctx.rt.state(s.id);
      check(st, 'state failed after create');
      checkEqual(st.status, 'created', 'status after create');
      checkEqual(st.id, s.id, 'state id');
      checkEqual(st.pid, s.pid, 'state pid equals --pid-file');
      checkEqual(st.bundle, s.bundle.dir, 'state bundle is the absolute bundle path');
      check(typeof st.ociVersion === 'string' && st.ociVersion.length > 0, 'state has ociVersion', { state: st });
      check(alive(s.pid), 'the container process exists after create');
    },
  },
  {
    name: 'lifecycle: start gives status running',
    async run(ctx) {
      const s = await startedSleeper(ctx);
      const st = await ctx.rt.state(s.id);
      checkEqual(st?.status, 'running', 'status after start');
      checkEqual(st?.pid, s.pid, 'pid unchanged by start');
    },
  },
  {
    name: 'lifecycle: kill KILL then status stopped',
    async run(ctx) {
      const s = await startedSleeper(ctx);
      const k = await ctx.rt.kill(s.id, 'KILL');
      check(k.code === 0, `kill exited ${k.code}`, { stderr: k.stderr });
      const st = await ctx.rt.waitStatus(s.id, ['stopped']);
      checkEqual(st?.status, 'stopped', 'status after kill');
    },
  },
  {
    name: 'lifecycle: kill of a created container',
    async run(ctx) {
      const s = await ctx.createSleeper();
      const k = await ctx.rt.kill(s.id, 'KILL');
      check(k.code === 0, `kill of a created container exited ${k.code}`, { stderr: k.stderr });
      const st = await ctx.rt.waitStatus(s.id, ['stopped']);
      checkEqual(st?.status, 'stopped', 'status after kill');
    },
  },
  {
    name: 'lifecycle: kill by signal name and number (TERM, SIGTERM, 15)',
    async run(ctx) {
      for (const sig of ['TERM', 'SIGTERM', '15']) {
        const s = await startedSleeper(ctx, ['sh', '-c', 'trap "exit 3" TERM; while :; do sleep 0.1; done']);
        await sleep(200); // let the shell install its trap
        const k = await ctx.rt.kill(s.id, sig);
        check(k.code === 0, `kill ${sig} exited ${k.code}`, { stderr: k.stderr });
        const st = await ctx.rt.waitStatus(s.id, ['stopped']);
        checkEqual(st?.status, 'stopped', `status after kill ${sig}`);
      }
    },
  },
  {
    name: 'lifecycle: process exit gives status stopped',
    async run(ctx) {
      const s = await startedSleeper(ctx, ['true']);
      const st = await ctx.rt.waitStatus(s.id, ['stopped']);
      checkEqual(st?.status, 'stopped', 'status after the process exited');
    },
  },
  {
    name: 'lifecycle: start of a running container fails',
    async run(ctx) {
      const s = await startedSleeper(ctx);
      const r = await ctx.rt.start(s.id);
      check(r.code !== 0, 'second start succeeded');
      checkEqual((await ctx.rt.state(s.id))?.status, 'running', 'state unchanged');
    },
  },
  {
    name: 'lifecycle: start of a stopped container fails',
    async run(ctx) {
      const s = await startedSleeper(ctx, ['true']);
      await ctx.rt.waitStatus(s.id, ['stopped']);
      const r = await ctx.rt.start(s.id);
      check(r.code !== 0, 'start of a stopped container succeeded');
      checkEqual((await ctx.rt.state(s.id))?.status, 'stopped', 'state unchanged');
    },
  },
  {
    name: 'lifecycle: delete of a running container fails',
    async run(ctx) {
      const s = await startedSleeper(ctx);
      const r = await ctx.rt.delete(s.id);
      check(r.code !== 0, 'delete of a running container succeeded');
      checkEqual((await ctx.rt.state(s.id))?.status, 'running', 'state unchanged');
      check(alive(s.pid), 'process still alive');
    },
  },
  {
    name: 'lifecycle: kill of a stopped container fails',
    async run(ctx) {
      const s = await startedSleeper(ctx, ['true']);
      await ctx.rt.waitStatus(s.id, ['stopped']);
      const r = await ctx.rt.kill(s.id, 'KILL');
      check(r.code !== 0, 'kill of a stopped container succeeded');
    },
  },
  {
    name: 'lifecycle: delete of a stopped container removes it',
    async run(ctx) {
      const s = await startedSleeper(ctx, ['true']);
      await ctx.rt.waitStatus(s.id, ['stopped']);
      const r = await ctx.rt.delete(s.id);
      check(r.code === 0, `delete exited ${r.code}`, { stderr: r.stderr });
      check((await ctx.rt.state(s.id)) === null, 'state still succeeds after delete');
    },
  },
  {
    name: 'lifecycle: delete --force of a running container',
    async run(ctx) {
      const s = await startedSleeper(ctx);
      const r = await ctx.rt.delete(s.id, true);
      check(r.code === 0, `delete --force exited ${r.code}`, { stderr: r.stderr });
      check((await ctx.rt.state(s.id)) === null, 'state still succeeds after delete --force');
      for (let i = 0; i < 20 && alive(s.pid); i++) await sleep(100);
      check(!alive(s.pid), 'the container process survived delete --force');
    },
  },
  {
    name: 'cli: delete of a created container succeeds (runc behaviour containerd relies on)',
    async run(ctx) {
      const s = await ctx.createSleeper();
      const r = await ctx.rt.delete(s.id);
      check(r.code === 0, `delete exited ${r.code}`, { stderr: r.stderr });
      check((await ctx.rt.state(s.id)) === null, 'state still succeeds after delete');
    },
  },
  {
    name: 'cli: delete --force of a missing container succeeds',
    async run(ctx) {
      const r = await ctx.rt.delete(ctx.newId(), true);
      check(r.code === 0, `delete --force exited ${r.code}`, { stderr: r.stderr });
    },
  },
  {
    name: 'lifecycle: duplicate id fails and leaves the first container',
    async run(ctx) {
      const s = await ctx.createSleeper();
      const b2 = ctx.bundle((c) => { c.process!.args = ['sleep', '600']; }, 'second');
      const r = await ctx.rt.create(s.id, b2.dir, { pidFile: ctx.file('dup.pid') });
      check(r.code !== 0, 'create with a duplicate id succeeded');
      const st = await ctx.rt.state(s.id);
      checkEqual(st?.status, 'created', 'first container state');
      checkEqual(st?.bundle, s.bundle.dir, 'first container bundle');
    },
  },
  {
    name: 'lifecycle: create with a missing bundle fails',
    async run(ctx) {
      const id = ctx.newId();
      const r = await ctx.rt.create(id, ctx.file('no-such-bundle'));
      check(r.code !== 0, 'create with a missing bundle succeeded');
      check((await ctx.rt.state(id)) === null, 'a container exists after the failed create');
    },
  },
  {
    name: 'lifecycle: create with a malformed config.json fails',
    async run(ctx) {
      const b = ctx.bundle();
      fs.writeFileSync(path.join(b.dir, 'config.json'), '{"ociVersion": "1.0.2", "process": {');
      const id = ctx.newId();
      const r = await ctx.rt.create(id, b.dir);
      check(r.code !== 0, 'create with malformed config.json succeeded');
      check((await ctx.rt.state(id)) === null, 'a container exists after the failed create');
    },
  },
  {
    name: 'lifecycle: state of a missing container fails',
    async run(ctx) {
      const r = await ctx.rt.exec(['state', ctx.newId()]);
      check(r.code !== 0, 'state of a missing container succeeded', { stdout: r.stdout });
    },
  },
  {
    name: 'lifecycle: missing executable fails create or start',
    async run(ctx) {
      const b = ctx.bundle((c) => { c.process!.args = ['/no/such/binary']; });
      const id = ctx.newId();
      const r = await ctx.rt.create(id, b.dir);
      if (r.code !== 0) return;
      const s = await ctx.rt.start(id);
      check(s.code !== 0, 'create and start of a missing executable both succeeded');
    },
  },
  {
    name: 'lifecycle: annotations appear in state',
    async run(ctx) {
      const s = await ctx.createSleeper((c) => { c.annotations = { 'org.example.conf': 'yes', 'b': '2' }; });
      const st = await ctx.rt.state(s.id);
      checkEqual(st?.annotations, { 'org.example.conf': 'yes', b: '2' }, 'state annotations');
    },
  },
  {
    name: 'run: exit code passthrough',
    async run(ctx) {
      for (const code of [0, 3, 42]) {
        const b = ctx.bundle((c) => { c.process!.args = ['sh', '-c', `exit ${code}`]; });
        const r = await ctx.rt.run(ctx.newId(), b.dir);
        checkEqual(r.code, code, `run exit code for exit ${code}`, { stderr: r.stderr });
      }
    },
  },
];
