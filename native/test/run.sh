#!/bin/sh
# Build and run the standalone C tests of the helper's seccomp and capability code.
# Links native/helper/util.c (for fail()) when it compiles on its own, otherwise a local stub,
# so the test does not depend on the state of the rest of the helper. Needs root.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
helper="$here/../helper"
out=${TMPDIR:-/tmp}/shoal-native-test.$$
mkdir -p "$out"
trap 'rm -rf "$out"' EXIT
CFLAGS="-std=gnu11 -Wall -Wextra -O2 -g"
extra="$helper/util.c"
if ! gcc $CFLAGS -c "$helper/util.c" -o "$out/util.o" 2>/dev/null; then
  cat > "$out/stub.c" <<'STUB'
#include "helper.h"
#include <stdio.h>
int fail(struct err *e, const char *stage, int errnum, const char *path, const char *detail) {
  snprintf(e->stage, sizeof e->stage, "%s", stage ? stage : "");
  e->errnum = errnum;
  snprintf(e->path, sizeof e->path, "%s", path ? path : "");
  snprintf(e->detail, sizeof e->detail, "%s", detail ? detail : "");
  return -1;
}
STUB
  extra="$out/stub.c"
fi
gcc $CFLAGS -I"$helper" -o "$out/seccomp_caps_test" "$here/seccomp_caps_test.c" \
  "$helper/seccomp.c" "$helper/caps.c" "$extra" -ldl
"$out/seccomp_caps_test"
