#!/usr/bin/env bash
# Runs inside the pure cgroup v2 VM (/work/shared/vm/run-in-vm.sh; see test/integration/criu.test.ts):
# checkpoint and restore of a busybox container whose counter loop appends to a file in a
# bind-mounted host dir, with the host's /dev/null as its stdio (files outside the container: dumped
# as external, re-plumbed at restore). Checks: checkpoint stops it, restore continues the count (not from 0),
# state says running, kill + delete leave no cgroup, state dir or process behind.
# Needs a prior build (tsc + bundle). Env: SHOAL (default build/shoal.js; a scratch entry
# dispatching checkpoint/restore works too), CRIU_TEST_DIR (default a fresh dir under /tmp).
# Exit: 0 passed, 1 failed, 77 CRIU itself is unusable in this guest (criu check output printed).
set -uo pipefail
cd "$(dirname "$0")/../.."
SHOAL=${SHOAL:-build/shoal.js}
SHOAL=$(cd "$(dirname "$SHOAL")" && pwd)/$(basename "$SHOAL")
ID=criu-t$$
T=${CRIU_TEST_DIR:-$(mktemp -d /tmp/shoal-criu.XXXXXX)}
R=$T/state B=$T/bundle D=$T/data IMG=$T/image
fail() { echo "criu-guest: FAIL: $*" >&2; echo "--- container log:"; tail -5 "$D/log" 2>/dev/null; exit 1; }
sh_() { node "$SHOAL" --root "$R" "$@"; }
status() { sh_ state "$ID" 2>/dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p'; }
last() { tail -n1 "$D/log" 2>/dev/null || echo 0; }
cleanup() { node "$SHOAL" --root "$R" delete --force "$ID" >/dev/null 2>&1; }
trap cleanup EXIT

[[ -e /sys/fs/cgroup/cgroup.controllers ]] || { echo "criu-guest: /sys/fs/cgroup is not cgroup2" >&2; exit 2; }
command -v criu >/dev/null || { echo "criu-guest: criu not installed (apt-get install criu on the host)" >&2; exit 77; }
echo "criu-guest: kernel $(uname -r), $(criu --version | head -1)"
if ! criu check >"$T.check" 2>&1; then
  echo "criu-guest: note: 'criu check' reports problems:"; tail -5 "$T.check"
fi

mkdir -p "$R" "$B" "$D"
node -e "require('./build/conformance/src/rootfs').buildBusyboxRootfs(process.argv[1])" "$B/rootfs" || fail "rootfs"
( cd "$B" && node "$SHOAL" spec ) || fail "spec"
node -e '
const fs = require("fs"); const f = process.argv[1] + "/config.json"; const c = JSON.parse(fs.readFileSync(f));
c.process.terminal = false;
// stdio stays the host'"'"'s /dev/null (run -d below): files outside the container, dumped as external.
c.process.args = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i >> /data/log; sleep 0.2; done"];
c.mounts.push({ destination: "/data", type: "bind", source: process.argv[2], options: ["rbind", "rw"] });
fs.writeFileSync(f, JSON.stringify(c, null, 2));' "$B" "$D" || fail "config"

start=$SECONDS
sh_ run -d --bundle "$B" "$ID" </dev/null >/dev/null 2>&1 || fail "run -d"
for _ in $(seq 100); do (( $(last) >= 5 )) && break; sleep 0.2; done
(( $(last) >= 5 )) || fail "counter did not start"
[[ $(status) == running ]] || fail "not running before checkpoint: $(status)"

sh_ checkpoint --image-path "$IMG" "$ID" || fail "checkpoint"
[[ $(status) == stopped ]] || fail "status after checkpoint: $(status), want stopped"
n1=$(last); sleep 1; n2=$(last)
[[ $n1 == "$n2" ]] || fail "counter still moves after checkpoint ($n1 -> $n2)"
echo "criu-guest: checkpointed at $n1 ($((SECONDS - start)) s)"
grep -q '"file\[' "$IMG/shoal-checkpoint.json" || fail "the host stdio was not dumped as external files: $(grep -A4 stdioKeys "$IMG/shoal-checkpoint.json")"

sh_ restore --detach --image-path "$IMG" --pid-file "$T/pid" "$ID" </dev/null >/dev/null 2>"$T/restore.err" || fail "restore: $(tail -20 "$T/restore.err")"
[[ $(status) == running ]] || fail "status after restore: $(status), want running"
pid=$(cat "$T/pid"); [[ -d /proc/$pid ]] || fail "pid file $pid: no such process"
for _ in $(seq 100); do (( $(last) >= n1 + 3 )) && break; sleep 0.2; done
(( $(last) >= n1 + 3 )) || fail "counter did not continue after restore (last $(last), checkpoint $n1)"
# The count continues: the line after n1 is n1+1, and nothing restarted from 1.
next=$(awk -v n="$n1" 'prev == n { print; exit } { prev = $0 }' "$D/log")
[[ $next == $((n1 + 1)) ]] || fail "after $n1 came '$next'"
(( $(grep -cx 1 "$D/log") == 1 )) || fail "the counter restarted from 1"
echo "criu-guest: restored, counter went on to $(last) ($((SECONDS - start)) s)"

sh_ kill "$ID" KILL || fail "kill"
for _ in $(seq 50); do [[ $(status) == stopped ]] && break; sleep 0.2; done
[[ $(status) == stopped ]] || fail "status after kill: $(status)"
sh_ delete "$ID" || fail "delete"
trap - EXIT
[[ ! -e $R/$ID ]] || fail "state dir $R/$ID left"
[[ ! -e /sys/fs/cgroup/shoal/$ID ]] || fail "cgroup /shoal/$ID left"
[[ ! -d /proc/$pid ]] || fail "restored init $pid still alive"
pgrep -f 'while :; do i=' >/dev/null && fail "container processes left"
echo "criu-guest: PASS ($((SECONDS - start)) s)"
exit 0
