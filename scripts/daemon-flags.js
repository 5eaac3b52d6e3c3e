#!/usr/bin/env node
// Writes build/shim-daemon.flags from shim/src/task/daemon-flags.ts (compiled): the V8 flags the
// C launcher (native/launcher) starts the shim daemon with.
'use strict';
const fs = require('fs');
const path = require('path');
const build = path.join(__dirname, '..', 'build');
const { DAEMON_NODE_FLAGS } = require(path.join(build, 'shim', 'src', 'task', 'daemon-flags.js'));
fs.writeFileSync(path.join(build, 'shim-daemon.flags'), DAEMON_NODE_FLAGS.join(' ') + '\n');
