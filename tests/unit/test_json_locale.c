/* The JSON reader and the float writer under a locale whose decimal point is
 * a comma (de_DE): numbers still read and write with '.', as JSON has them.
 * The locale is compiled with localedef into a scratch folder (LOCPATH) and
 * set for this thread only (uselocale); without localedef or its sources
 * the test reports a skip (exit status 77). */
#include <locale.h>
#include <langinfo.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/json.h"
#include "ktest.h"

#define SKIP 77

static char dir[] = "/tmp/kura-locale.XXXXXX";
static locale_t loc = (locale_t)0;

/* glibc keeps the list it makes of LOCPATH's folders to the end: not ours
 * to free. (Read by LeakSanitizer in a sanitizer build; unused otherwise.) */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
  return "leak:__argz_add_sep\n";
}

static int comma_locale(void)
{
  char cmd[256];
  if (!mkdtemp(dir))
    return -1;
  snprintf(cmd, sizeof cmd, "localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 >/dev/null 2>&1", dir);
  if (system(cmd) != 0)
    return -1;
  setenv("LOCPATH", dir, 1);
  loc = newlocale(LC_ALL_MASK, "de_DE.UTF-8", (locale_t)0);
  if (!loc)
    return -1;
  uselocale(loc);
  return strcmp(nl_langinfo(RADIXCHAR), ",") == 0 ? 0 : -1;
}

KTEST(numbers_ignore_the_decimal_comma)
{
  char buf[32];
  kr_json j;
  static const char text[] = "[1.5, -0.25, 2.5e-3, 7]";
  kr_json_init(&j, text, sizeof text - 1);
  KCHECK_EQ(kr_json_next(&j), KR_JSON_ARRAY);
  KCHECK_EQ(kr_json_next(&j), KR_JSON_FLOAT);
  KCHECK(j.d == 1.5);
  KCHECK_EQ(kr_json_next(&j), KR_JSON_FLOAT);
  KCHECK(j.d == -0.25);
  KCHECK_EQ(kr_json_next(&j), KR_JSON_FLOAT);
  KCHECK(j.d == 2.5e-3);
  KCHECK_EQ(kr_json_next(&j), KR_JSON_INT);
  KCHECK_EQ(kr_json_next(&j), KR_JSON_ARRAY_END);
  KCHECK_EQ(kr_json_next(&j), KR_JSON_END);
  kr_json_format_double(1.5, buf);
  KCHECK(strcmp(buf, "1.5") == 0);
  kr_json_format_double(1.0 / 3, buf);
  KCHECK(strcmp(buf, "0.3333333333333333") == 0);
  kr_json_format_double(2.0, buf);
  KCHECK(strcmp(buf, "2.0") == 0);
}

int main(int argc, char **argv)
{
  static const struct ktest tests[] = {KENTRY(numbers_ignore_the_decimal_comma)};
  int ok = comma_locale() == 0;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (!ok) {
    if (loc)
      freelocale(loc);
    if (strcmp(dir + strlen(dir) - 6, "XXXXXX") != 0 && system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", dir);
    printf("skipped: no de_DE locale could be compiled (localedef)\n");
    return SKIP;
  }
  int rc = ktest_run(tests, sizeof tests / sizeof tests[0], argc, argv);
  uselocale(LC_GLOBAL_LOCALE);
  freelocale(loc);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return rc;
}
