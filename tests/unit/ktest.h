/* A tiny C test harness: each tests/unit/test_*.c defines its tests with
 * KTEST(name) and lists them once in KTEST_MAIN(...). The runner prints one
 * line per test and the closing line "N passed, N failed, N skipped", and
 * exits 1 on any failure, else 77 (ctest's SKIP_RETURN_CODE: the run is
 * reported as skipped, not passed) when a test could not run (KSKIP), else
 * 0. Run one test by naming it: unit_test_store expiry. */
#ifndef KTEST_H
#define KTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ktest {
  const char *name;
  void (*fn)(int *failed);
};

#define KTEST(name) static void ktest_##name(int *ktest_failed_)

#define KCHECK(cond)                                                         \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__,    \
              #cond);                                                        \
      *ktest_failed_ = 1;                                                    \
      return;                                                                \
    }                                                                        \
  } while (0)

#define KCHECK_EQ(a, b)                                                      \
  do {                                                                       \
    long long ka_ = (long long)(a), kb_ = (long long)(b);                    \
    if (ka_ != kb_) {                                                        \
      fprintf(stderr, "  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__, \
              __LINE__, #a, #b, ka_, kb_);                                   \
      *ktest_failed_ = 1;                                                    \
      return;                                                                \
    }                                                                        \
  } while (0)

/* The test cannot run here (a program it needs is missing): says why and
 * returns; the run then exits 77 unless a test failed. */
#define KSKIP(why)                                                           \
  do {                                                                       \
    fprintf(stderr, "  skip: %s\n", (why));                                  \
    *ktest_failed_ = -1;                                                     \
    return;                                                                  \
  } while (0)

#define KENTRY(name) {#name, ktest_##name}

static inline int ktest_run(const struct ktest *tests, size_t n, int argc, char **argv)
{
  int passed = 0, failed = 0, skipped = 0;
  for (size_t i = 0; i < n; i++) {
    if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
      continue;
    int f = 0;
    tests[i].fn(&f);
    printf("%s %s\n", f < 0 ? "skip" : f ? "FAIL" : "ok  ", tests[i].name);
    fflush(stdout);
    if (f < 0)
      skipped++;
    else if (f)
      failed++;
    else
      passed++;
  }
  printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed ? 1 : skipped ? 77 : 0;
}

#define KTEST_MAIN(...)                                                      \
  int main(int argc, char **argv)                                            \
  {                                                                          \
    static const struct ktest tests_[] = {__VA_ARGS__};                      \
    return ktest_run(tests_, sizeof tests_ / sizeof tests_[0], argc, argv);  \
  }

#endif
