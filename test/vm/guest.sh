#!/usr/bin/env bash
# Runs inside the pure cgroup v2 VM (see run.sh): the focused cgroup tests of shoal, compiled
# under build/. Fails if the guest is not pure v2, so a wrong VM never passes silently.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [[ ! -e /sys/fs/cgroup/cgroup.controllers ]]; then
  echo "guest: /sys/fs/cgroup is not a cgroup2 mount" >&2
  exit 2
fi
echo "guest: kernel $(uname -r), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
rc=0
export SHOAL_VM_FOCUS=1
for t in ${CGROUP_VM_TESTS:-build/test/integration/cgroup-bpf.test.js build/test/integration/cgroup.test.js build/test/integration/cgroup-limits.test.js}; do
  echo "guest: == $t"
  start=$SECONDS
  node "$t" || rc=1
  echo "guest: $t took $((SECONDS - start)) s"
done
# The conformance suite's cgroup cases against shoal, on pure v2 (issue 3).
if [[ -z "${CGROUP_VM_TESTS:-}" ]]; then
  echo "guest: == conformance --cgroup-only (shoal)"
  start=$SECONDS
  node build/conformance/src/runner.js -r build/shoal.js --cgroup-only || rc=1
  echo "guest: conformance took $((SECONDS - start)) s"
fi
exit $rc
