/* The JSON reader (core/json.h) from C: the token stream of a document, the
 * exact integers, string spans and their unescaping (NUL included), error
 * offsets, the depth limit, the UTF-8 check and the shortest float text;
 * and readers on several threads at once, directly and through Momento
 * credentials, good and malformed (no shared state: a build with
 * -DKURA_SANITIZE=thread reports a race if one comes back; cJSON's global
 * error position was one). The locale's decimal point is tested in
 * test_json_locale.c. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/credential.h"
#include "core/json.h"
#include "ktest.h"

static kr_json_tok read_one(kr_json *j, const char *text)
{
  kr_json_init(j, text, strlen(text));
  return kr_json_next(j);
}

KTEST(token_stream)
{
  static const char text[] = " {\"a\": [1, -2.5, \"x\", true, false, null], \"b\": {}} ";
  static const kr_json_tok want[] = {
    KR_JSON_OBJECT, KR_JSON_KEY, KR_JSON_ARRAY, KR_JSON_INT, KR_JSON_FLOAT, KR_JSON_STRING,
    KR_JSON_TRUE, KR_JSON_FALSE, KR_JSON_NULL, KR_JSON_ARRAY_END, KR_JSON_KEY, KR_JSON_OBJECT,
    KR_JSON_OBJECT_END, KR_JSON_OBJECT_END, KR_JSON_END, KR_JSON_END};
  static const int depth[] = {1, 1, 2, 2, 2, 2, 2, 2, 2, 1, 1, 2, 1, 0, 0, 0};
  kr_json j;
  kr_json_init(&j, text, sizeof text - 1);
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    KCHECK_EQ(kr_json_next(&j), want[i]);
    KCHECK_EQ(j.depth, depth[i]);
    if (want[i] == KR_JSON_INT)
      KCHECK_EQ(j.i, 1);
    if (want[i] == KR_JSON_FLOAT)
      KCHECK(j.d == -2.5);
  }
}

KTEST(integers_exact)
{
  kr_json j;
  KCHECK_EQ(read_one(&j, "9223372036854775807"), KR_JSON_INT);
  KCHECK(j.i == INT64_MAX);
  KCHECK_EQ(read_one(&j, "-9223372036854775808"), KR_JSON_INT);
  KCHECK(j.i == INT64_MIN);
  KCHECK_EQ(read_one(&j, "9007199254740993"), KR_JSON_INT);
  KCHECK(j.i == 9007199254740993LL);
  KCHECK_EQ(read_one(&j, "9223372036854775808"), KR_JSON_FLOAT);
  KCHECK(j.d == 9223372036854775808.0);
  KCHECK_EQ(read_one(&j, "-9223372036854775809"), KR_JSON_FLOAT);
  KCHECK_EQ(read_one(&j, "123456789012345678901234567890"), KR_JSON_FLOAT);
  KCHECK(j.d == 123456789012345678901234567890.0);
  KCHECK_EQ(read_one(&j, "1.0"), KR_JSON_FLOAT);
  KCHECK_EQ(read_one(&j, "1e0"), KR_JSON_FLOAT);
  KCHECK_EQ(read_one(&j, "-0"), KR_JSON_INT);
  KCHECK_EQ(j.i, 0);
}

KTEST(long_number_is_read_whole)
{
  /* More digits than the reader's buffer on the stack: still the nearest double. */
  char text[700];
  memset(text, '0', sizeof text);
  text[0] = '0', text[1] = '.';
  text[600] = '1';
  memcpy(text + 601, "e600", 5);
  kr_json j;
  KCHECK_EQ(read_one(&j, text), KR_JSON_FLOAT);
  KCHECK(j.d == 10.0); /* 1e-599 * 1e600 */
}

KTEST(strings_are_spans_nul_included)
{
  kr_json j;
  char out[64];
  KCHECK_EQ(read_one(&j, "\"plain\""), KR_JSON_STRING);
  KCHECK_EQ(j.len, 5);
  KCHECK_EQ(j.escaped, 0);
  KCHECK(memcmp(j.str, "plain", 5) == 0);
  KCHECK_EQ(read_one(&j, "\"a\\u0000b\\n\\\"\\u00e9\\ud83d\\ude00\""), KR_JSON_STRING);
  KCHECK_EQ(j.escaped, 1);
  size_t n = kr_json_unescape(j.str, j.len, out);
  static const char want[] = "a\0b\n\"\xc3\xa9\xf0\x9f\x98\x80";
  KCHECK_EQ(n, sizeof want - 1);
  KCHECK(memcmp(out, want, n) == 0);
}

/* err_at is the offset of the byte where the text stopped being JSON. */
KTEST(errors_name_the_byte)
{
  static const struct {
    const char *text;
    size_t at;
    const char *what;
  } cases[] = {
    {"", 0, "end"},
    {"[1,", 3, "end"},
    {"[1 2]", 3, "expected ','"},
    {"{\"a\" 1}", 5, "expected ':'"},
    {"\"a\001\"", 2, "control byte 0x01"},
    {"\"\xff\"", 1, "not UTF-8"},
    {"\"\\ud800\"", 1, "lone surrogate"},
    {"1e999", 0, "too large"},
    {"[1] 2", 4, "after the JSON value"},
    {"tru", 0, "expected 'true'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    kr_json j;
    kr_json_tok tok;
    kr_json_init(&j, cases[i].text, strlen(cases[i].text));
    while ((tok = kr_json_next(&j)) > KR_JSON_END)
      ;
    if (tok != KR_JSON_ERROR || j.err_at != cases[i].at || !strstr(j.err, cases[i].what))
      fprintf(stderr, "  case %zu: tok %d at %zu: %s\n", i, tok, j.err_at, j.err);
    KCHECK_EQ(tok, KR_JSON_ERROR);
    KCHECK_EQ(j.err_at, cases[i].at);
    KCHECK(strstr(j.err, cases[i].what) != NULL);
    KCHECK_EQ(kr_json_next(&j), KR_JSON_ERROR); /* it stays an error */
  }
}

KTEST(depth_limit)
{
  size_t n = KR_JSON_MAX_DEPTH + 1;
  char *text = malloc(2 * n);
  KCHECK(text);
  memset(text, '[', n);
  memset(text + n, ']', n);
  kr_json j;
  kr_json_tok tok;
  kr_json_init(&j, text + 1, 2 * n - 2); /* exactly the limit: fine */
  while ((tok = kr_json_next(&j)) > KR_JSON_END)
    ;
  KCHECK_EQ(tok, KR_JSON_END);
  kr_json_init(&j, text, 2 * n);
  while ((tok = kr_json_next(&j)) > KR_JSON_END)
    ;
  KCHECK_EQ(tok, KR_JSON_ERROR);
  KCHECK_EQ(j.err_at, KR_JSON_MAX_DEPTH);
  KCHECK(strstr(j.err, "nested too deep") != NULL);
  free(text);
}

KTEST(utf8_prefix)
{
  KCHECK_EQ(kr_json_utf8_prefix("abc", 3), 3);
  KCHECK_EQ(kr_json_utf8_prefix("a\xc3\xa9z", 4), 4);
  KCHECK_EQ(kr_json_utf8_prefix("a\xc3", 2), 1);          /* cut short */
  KCHECK_EQ(kr_json_utf8_prefix("ab\xc0\xaf", 4), 2);     /* overlong */
  KCHECK_EQ(kr_json_utf8_prefix("\xed\xa0\x80", 3), 0);   /* surrogate */
  KCHECK_EQ(kr_json_utf8_prefix("\xf4\x8f\xbf\xbf", 4), 4);
  KCHECK_EQ(kr_json_utf8_prefix("\xf4\x90\x80\x80", 4), 0); /* past U+10FFFF */
  KCHECK_EQ(kr_json_utf8_prefix("x\0y", 3), 3);
}

KTEST(format_double_reads_back)
{
  static const double values[] = {0.1, 1.0 / 3, 2.0, -0.0, 1e300, 5e-324, 123456789.125,
                                  9007199254740993.0, 1e15, 1e16, -2.5e-7};
  char buf[32];
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    size_t n = kr_json_format_double(values[i], buf);
    KCHECK_EQ(n, strlen(buf));
    kr_json j;
    KCHECK_EQ(read_one(&j, buf), KR_JSON_FLOAT); /* never read back as an integer */
    KCHECK(j.d == values[i] && signbit(j.d) == signbit(values[i]));
  }
  kr_json_format_double(2.0, buf);
  KCHECK(strcmp(buf, "2.0") == 0);
  kr_json_format_double(0.1, buf);
  KCHECK(strcmp(buf, "0.1") == 0);
}

/* Readers on four threads over the same texts, errors included: each keeps
 * its state in its own kr_json. */
static void *reader_thread(void *arg)
{
  static const char *const texts[] = {"[1, 2, {\"a\": \"\\u0000\"}]", "[1, x]", "\"\\ud800\"",
                                      "1e999", "{\"k\": [true, null]}"};
  long *bad = arg;
  for (int round = 0; round < 20000; round++) {
    const char *t = texts[round % 5];
    kr_json j;
    kr_json_tok tok;
    kr_json_init(&j, t, strlen(t));
    while ((tok = kr_json_next(&j)) > KR_JSON_END)
      ;
    int want_ok = round % 5 == 0 || round % 5 == 4;
    if ((tok == KR_JSON_END) != want_ok)
      (*bad)++;
  }
  return NULL;
}

/* Runs fn on four threads at once; the wrong answers they counted, or -1
 * when a thread could not start. */
static long on_four_threads(void *(*fn)(void *))
{
  pthread_t th[4];
  long bad[4] = {0}, total = 0;
  int started = 0;
  for (; started < 4; started++)
    if (pthread_create(&th[started], NULL, fn, &bad[started]) != 0)
      break;
  for (int i = 0; i < started; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < started; i++)
    total += bad[i];
  return started == 4 ? total : -1;
}

KTEST(threads_share_nothing)
{
  KCHECK_EQ(on_four_threads(reader_thread), 0);
}

/* base64 of {"endpoint":"cell-1.example.com","api_key":"sk-1"}, and of
 * the same text with a comma missing: parsed over and over on four threads. */
static void *credential_thread(void *arg)
{
  static const char *const keys[] = {
    "eyJlbmRwb2ludCI6ImNlbGwtMS5leGFtcGxlLmNvbSIsImFwaV9rZXkiOiJzay0xIn0=",
    "eyJlbmRwb2ludCI6ImNlbGwtMS5leGFtcGxlLmNvbSIgImFwaV9rZXkiOiJzay0xIn0="};
  long *bad = arg;
  for (int round = 0; round < 5000; round++) {
    kr_credential c;
    char err[160];
    const char *k = keys[round & 1];
    int rc = kr_credential_parse(k, strlen(k), NULL, &c, err, sizeof err);
    if ((rc == 0) != !(round & 1))
      (*bad)++;
    if (rc == 0) {
      if (strcmp(c.endpoint, "cell-1.example.com") != 0 || c.secret_len != 4)
        (*bad)++;
      kr_credential_free(&c);
    }
  }
  return NULL;
}

KTEST(threads_parse_credentials)
{
  KCHECK_EQ(on_four_threads(credential_thread), 0);
}

int main(int argc, char **argv)
{
  static const struct ktest tests[] = {
    KENTRY(token_stream),
    KENTRY(integers_exact),
    KENTRY(long_number_is_read_whole),
    KENTRY(strings_are_spans_nul_included),
    KENTRY(errors_name_the_byte),
    KENTRY(depth_limit),
    KENTRY(utf8_prefix),
    KENTRY(format_double_reads_back),
    KENTRY(threads_share_nothing),
    KENTRY(threads_parse_credentials),
  };
  return ktest_run(tests, sizeof tests / sizeof tests[0], argc, argv);
}
