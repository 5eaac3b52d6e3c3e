#!/usr/bin/env bash
# test/vm/run.sh: run shoal's focused cgroup v2 tests (limits, OOM events, pids, cpu throttling,
# freezer, update, the eBPF device filter) inside a throw-away pure cgroup v2 VM
# (/work/shared/vm/run-in-vm.sh, override with RUN_IN_VM). Needs a prior build (tsc + addon).
#   Usage: test/vm/run.sh            env: CGROUP_VM_TESTS="build/test/...js ..." to narrow.
# Exit status: the tests' (0 = all passed); 125 = the VM could not run.
set -euo pipefail
cd "$(dirname "$0")/../.."
VM=${RUN_IN_VM:-/work/shared/vm/run-in-vm.sh}
[[ -x $VM ]] || { echo "run.sh: $VM not found" >&2; exit 125; }
[[ -e build/Release/shoal_native.node ]] || { echo "run.sh: build first (addon missing)" >&2; exit 125; }
export CGROUP_VM_TESTS=${CGROUP_VM_TESTS:-}
[[ -n $CGROUP_VM_TESTS ]] || unset CGROUP_VM_TESTS
exec "$VM" --mem 2G --cpus 2 -- bash test/vm/guest.sh
