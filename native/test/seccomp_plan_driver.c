/*
 * Test driver for the TypeScript -> C seccomp path: reads a plan (as PlanWriter.encode() writes
 * it) from stdin with plan_read, builds and loads its seccomp filter exactly as shoal-init does,
 * then execs argv[1...]; with the single argument --dump it prints the decoded plan instead, one
 * record per line ("op argc" then each argument in brackets). Used by
 * test/unit/plan-seccomp.test.ts, which compiles it with
 *   gcc -std=gnu11 -Inative/helper native/test/seccomp_plan_driver.c native/helper/seccomp.c \
 *       native/helper/plan.c native/helper/util.c -ldl
 * Exit status 120 + message on stderr when the plan or filter is rejected.
 */
#include "helper.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Print an err like the runtime would ("seccomp <path>: <detail>: <errno>") and exit 120. */
static int die(const struct err *e) {
  fprintf(stderr, "%s %s: %s: %s\n", e->stage, e->path, e->detail, e->errnum ? strerror(e->errnum) : "-");
  return 120;
}

/* Order as in init.c: read plan, prepare (library still reachable), load, exec. */
int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s cmd [args...] < plan\n", argv[0]);
    return 2;
  }
  struct plan p;
  struct err e = {0};
  if (plan_read(0, &p) < 0) {
    fprintf(stderr, "plan_read: %s\n", strerror(errno));
    return 120;
  }
  if (argc == 2 && strcmp(argv[1], "--dump") == 0) {
    for (uint32_t i = 0; i < p.n; i++) {
      printf("%u %u", p.recs[i].op, p.recs[i].argc);
      for (uint32_t a = 0; a < p.recs[i].argc; a++) printf(" [%s]", p.recs[i].argv[a]);
      printf("\n");
    }
    return 0;
  }
  if (seccomp_prepare(&p, &e) < 0) return die(&e);
  if (seccomp_load_prepared(&e) < 0) return die(&e);
  execvp(argv[1], argv + 1);
  fprintf(stderr, "exec %s: %s\n", argv[1], strerror(errno));
  return 127;
}
