#!/usr/bin/env node
/*
 * Compile shim/proto/**.proto into one protobufjs JSON descriptor, so the shim never parses
 * .proto text at run time (shim/src/ttrpc/proto.ts loads it with protobufjs/light).
 *
 *   node shim/proto/build-proto.js [out.json]      default out: build/proto/descriptors.json
 *
 * Field names keep the .proto spelling (snake_case: exec_id, exit_status, type_url), the same
 * as protobufjs' built-in google.protobuf types. The containerd.task.v3 package is generated
 * here as a copy of containerd.task.v2 (containerd defines the two identically).
 * Plain JavaScript on purpose: it runs before tsc. proto.ts also require()s buildDescriptor()
 * as a fallback when the JSON file is missing (tests from a tree built without this step).
 */
'use strict';
const fs = require('fs');
const path = require('path');

const PROTO_DIR = __dirname;

/** Every .proto file under dir, sorted, as paths relative to dir. */
function listProtos(dir, rel = '') {
  const out = [];
  for (const ent of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${ent.name}` : ent.name;
    if (ent.isDirectory()) out.push(...listProtos(dir, r));
    else if (ent.name.endsWith('.proto')) out.push(r);
  }
  return out.sort();
}

/** Load all .proto files and return the descriptor object (Root#toJSON plus task v3). */
function buildDescriptor(protoDir = PROTO_DIR) {
  const protobuf = require('protobufjs');
  const root = new protobuf.Root();
  // Imports are written relative to protoDir ("containerd/types/mount.proto"); the
  // google/protobuf ones are bundled with protobufjs and never reach this function.
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(protoDir, target));
  root.loadSync(listProtos(protoDir), { keepCase: true });
  root.resolveAll(); // fails loudly on an unknown type name

  const json = root.toJSON();
  const containerd = json.nested.containerd.nested;
  const v2 = containerd.task.nested.v2;
  containerd.task.nested.v3 = JSON.parse(JSON.stringify(v2));

  // Check the result loads back with every reference resolvable from its new place.
  protobuf.Root.fromJSON(json).resolveAll();
  return json;
}

if (require.main === module) {
  const out = path.resolve(process.argv[2] || path.join(PROTO_DIR, '..', '..', 'build', 'proto', 'descriptors.json'));
  const json = buildDescriptor();
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(json));
  fs.renameSync(tmp, out);
  process.stdout.write(`wrote ${path.relative(process.cwd(), out)}\n`);
}

module.exports = { buildDescriptor, listProtos };
