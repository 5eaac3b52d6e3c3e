/*
 * The protobuf layer's start-up work: codecs generated at build time (build/proto/codecs.js,
 * from the same protobufjs generators) instead of new Function at run time, and packages built
 * into the Root only when first used. Each test file runs in its own process, so the first
 * test sees the state a fresh shim daemon has.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs/light';
import { decode, descriptorPath, encode, hasMethod, lookupType, methodTypes, precompiledSetups, types } from '../../shim/src/ttrpc/proto';
import * as proto from '../../shim/src/ttrpc/proto';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const build = require('../../../shim/proto/build-proto.js');
const codecsFile = path.join(path.dirname(descriptorPath()), 'codecs.js');

test('deferred packages: task v3 and the cgroup metrics are built on first use', () => {
  const root = types().root;
  assert.is(root.lookup('containerd.task.v3.Task'), null, 'v3 not built at start');
  assert.is(root.lookup('io.containerd.cgroups.v1.Metrics'), null, 'metrics not built at start');
  assert.ok(hasMethod('containerd.task.v3.Task', 'Create'), 'hasMethod sees the deferred service');
  assert.not.ok(hasMethod('containerd.task.v3.Task', 'Nope'));
  assert.is(root.lookup('containerd.task.v3.Task'), null, 'hasMethod does not build it');
  const mt = methodTypes('containerd.task.v3.Task', 'Create');
  assert.ok(mt, 'methodTypes builds it');
  const bytes = encode(mt!.request, { id: 'a', bundle: '/b', rootfs: [{ type: 'overlay', source: 'overlay', options: ['x'] }] });
  const back = decode(mt!.request, bytes);
  assert.is(back.id, 'a');
  assert.is(back.rootfs[0].options[0], 'x');
  assert.ok(types().cgroupsV1.Metrics, 'the metrics table builds its package');
  assert.ok(lookupType('io.containerd.cgroups.v2.Metrics'), 'and lookupType the other');
});

test('precompiled codecs serve the shim types, and are what protobufjs generates now', () => {
  assert.ok(fs.existsSync(codecsFile), `${codecsFile} is built`);
  const before = precompiledSetups;
  const mt = methodTypes('containerd.task.v2.Task', 'State')!;
  const out = decode(mt.response, encode(mt.response, { id: 'x', pid: 42, status: 2, exited_at: { seconds: 5, nanos: 6 } }));
  assert.equal([out.id, out.pid, out.status, out.exited_at.seconds], ['x', 42, 2, 5]);
  assert.ok(proto.precompiledSetups > before, 'the State types were set up from codecs.js');
  // The build's sources against the generators of the installed protobufjs, type by type.
  const mod = require(codecsFile);
  const root = protobuf.Root.fromJSON(JSON.parse(fs.readFileSync(descriptorPath(), 'utf8')));
  let checked = 0;
  for (const t of build.allTypes(protobuf, root)) {
    const factory = mod.codecs[t.fullName];
    if (!factory) continue;
    t.fieldsArray.forEach((f: protobuf.Field) => f.resolve());
    const src = factory.toString();
    for (const s of build.codecSources(protobuf, t)) assert.ok(src.includes(s.replace(/\n\s+/g, '\n')), `${t.fullName}: ${s.slice(0, 40)}`);
    checked++;
  }
  assert.ok(checked > 50, `${checked} types checked`);
  assert.is(mod.descriptorHash, build.textHash(fs.readFileSync(descriptorPath(), 'utf8')));
});

test('Any keeps its protobufjs wrapper (type_url and value survive fromObject / toObject)', () => {
  const any = lookupType('google.protobuf.Any')!;
  const o = decode(any, encode(any, { type_url: 'containerd.runc.v1.Options', value: Buffer.from([8, 1]) }));
  assert.is(o.type_url, 'containerd.runc.v1.Options');
  assert.equal([...o.value], [8, 1]);
});

test.run();
