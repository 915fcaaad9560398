/* The latency histogram (core/hist.h): percentiles against the exact ones of
 * known distributions (uniform, exponential), within 0.1%; min, max, mean;
 * merge; reset; the bounds of the range; the coordinated-omission
 * correction. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/hist.h"
#include "ktest.h"

/* A small deterministic generator (splitmix64), so runs are repeatable. */
static uint64_t next_u64(uint64_t *s)
{
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double next_unit(uint64_t *s)
{
  return (double)(next_u64(s) >> 11) / 9007199254740992.0; /* [0, 1) */
}

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The exact percentile with the histogram's definition of rank. */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double p)
{
  double x = p / 100.0 * (double)n;
  double r = ceil(x - x * 1e-12);
  size_t rank = r < 1 ? 1 : r > (double)n ? n : (size_t)r;
  return sorted[rank - 1];
}

static const double checked_ps[] = {0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100};

/* Records vs into a histogram and compares every checked percentile, the
 * min, the max and the mean with the exact figures. Returns the worst
 * relative error of the percentiles. */
static double worst_error(uint64_t *vs, size_t n, int *ok)
{
  kr_hist *h;
  *ok = kr_hist_new(&h) == 0;
  if (!*ok)
    return 1;
  double sum = 0;
  for (size_t i = 0; i < n; i++) {
    kr_hist_record(h, vs[i]);
    sum += (double)vs[i];
  }
  qsort(vs, n, sizeof vs[0], cmp_u64);
  double worst = 0;
  for (size_t i = 0; i < sizeof checked_ps / sizeof checked_ps[0]; i++) {
    double exact = (double)exact_percentile(vs, n, checked_ps[i]);
    double got = (double)kr_hist_percentile(h, checked_ps[i]);
    double err = fabs(got - exact) / exact;
    if (err > worst)
      worst = err;
  }
  *ok = kr_hist_count(h) == n && kr_hist_min(h) == vs[0] && kr_hist_max(h) == vs[n - 1] &&
        fabs(kr_hist_mean(h) - sum / (double)n) <= 1e-9 * sum / (double)n;
  kr_hist_free(h);
  return worst;
}

#define N_SAMPLES 200000

KTEST(uniform_within_0_1_percent)
{
  uint64_t *vs = malloc(N_SAMPLES * sizeof *vs);
  KCHECK(vs);
  uint64_t s = 1;
  /* 1 us .. 1 s, uniform */
  for (size_t i = 0; i < N_SAMPLES; i++)
    vs[i] = 1000 + (uint64_t)(next_unit(&s) * 999999000.0);
  int ok;
  double worst = worst_error(vs, N_SAMPLES, &ok);
  free(vs);
  KCHECK(ok);
  KCHECK(worst <= 0.001);
}

KTEST(exponential_within_0_1_percent)
{
  uint64_t *vs = malloc(N_SAMPLES * sizeof *vs);
  KCHECK(vs);
  uint64_t s = 2;
  /* mean 250 us, offset by 1 us: a long tail over several decades */
  for (size_t i = 0; i < N_SAMPLES; i++)
    vs[i] = 1000 + (uint64_t)(-log(1.0 - next_unit(&s)) * 250000.0);
  int ok;
  double worst = worst_error(vs, N_SAMPLES, &ok);
  free(vs);
  KCHECK(ok);
  KCHECK(worst <= 0.001);
}

KTEST(log_uniform_1us_to_1h_within_0_1_percent)
{
  uint64_t *vs = malloc(N_SAMPLES * sizeof *vs);
  KCHECK(vs);
  uint64_t s = 3;
  for (size_t i = 0; i < N_SAMPLES; i++)
    vs[i] = (uint64_t)(1000.0 * pow(3.6e9, next_unit(&s)));
  int ok;
  double worst = worst_error(vs, N_SAMPLES, &ok);
  free(vs);
  KCHECK(ok);
  KCHECK(worst <= 0.001);
}

KTEST(small_values_are_exact)
{
  kr_hist *h;
  KCHECK(kr_hist_new(&h) == 0);
  for (uint64_t v = 1; v <= 2000; v++)
    kr_hist_record(h, v);
  KCHECK_EQ(kr_hist_percentile(h, 50), 1000);
  KCHECK_EQ(kr_hist_percentile(h, 99.9), 1998);
  KCHECK_EQ(kr_hist_percentile(h, 0), 1);
  KCHECK_EQ(kr_hist_percentile(h, 100), 2000);
  KCHECK(kr_hist_mean(h) == 1000.5);
  kr_hist_free(h);
}

KTEST(empty)
{
  kr_hist *h;
  KCHECK(kr_hist_new(&h) == 0);
  KCHECK_EQ(kr_hist_count(h), 0);
  KCHECK_EQ(kr_hist_percentile(h, 99), 0);
  KCHECK_EQ(kr_hist_min(h), 0);
  KCHECK_EQ(kr_hist_max(h), 0);
  KCHECK(kr_hist_mean(h) == 0);
  kr_hist_free(h);
}

KTEST(bounds)
{
  kr_hist *h;
  KCHECK(kr_hist_new(&h) == 0);
  uint64_t hour = 3600ull * 1000000000ull;
  kr_hist_record(h, 0);
  kr_hist_record(h, hour);
  kr_hist_record(h, UINT64_MAX); /* past the top: clamped into the last slot */
  KCHECK_EQ(kr_hist_count(h), 3);
  KCHECK_EQ(kr_hist_min(h), 0);
  KCHECK(kr_hist_max(h) == UINT64_MAX);
  KCHECK_EQ(kr_hist_percentile(h, 0), 0);
  uint64_t mid = kr_hist_percentile(h, 50);
  KCHECK(fabs((double)mid - (double)hour) <= 0.0005 * (double)hour);
  /* the top percentile is the exact max */
  KCHECK(kr_hist_percentile(h, 100) == UINT64_MAX);
  uint64_t p90 = kr_hist_percentile(h, 90);
  KCHECK(p90 >= KR_HIST_HIGHEST - KR_HIST_HIGHEST / 1000);
  kr_hist_free(h);
}

KTEST(merge_equals_recording_into_one)
{
  kr_hist *a, *b, *all;
  KCHECK(kr_hist_new(&a) == 0 && kr_hist_new(&b) == 0 && kr_hist_new(&all) == 0);
  uint64_t s = 4;
  for (int i = 0; i < 50000; i++) {
    uint64_t v = 1000 + next_u64(&s) % 5000000;
    kr_hist_record(i % 3 ? a : b, v);
    kr_hist_record(all, v);
  }
  kr_hist_record(b, 7); /* b alone holds the minimum */
  kr_hist_record(all, 7);
  kr_hist_merge(a, b);
  KCHECK_EQ(kr_hist_count(a), kr_hist_count(all));
  KCHECK_EQ(kr_hist_min(a), 7);
  KCHECK_EQ(kr_hist_max(a), kr_hist_max(all));
  KCHECK(fabs(kr_hist_mean(a) - kr_hist_mean(all)) < 1e-6);
  for (size_t i = 0; i < sizeof checked_ps / sizeof checked_ps[0]; i++)
    KCHECK_EQ(kr_hist_percentile(a, checked_ps[i]), kr_hist_percentile(all, checked_ps[i]));
  kr_hist_free(a);
  kr_hist_free(b);
  kr_hist_free(all);
}

KTEST(reset_then_reuse)
{
  kr_hist *h;
  KCHECK(kr_hist_new(&h) == 0);
  for (uint64_t v = 1; v <= 100000; v++)
    kr_hist_record(h, v * 1000);
  kr_hist_reset(h);
  KCHECK_EQ(kr_hist_count(h), 0);
  KCHECK_EQ(kr_hist_max(h), 0);
  KCHECK_EQ(kr_hist_percentile(h, 50), 0);
  kr_hist_record(h, 5000);
  KCHECK_EQ(kr_hist_count(h), 1);
  KCHECK_EQ(kr_hist_percentile(h, 1), 5000);
  KCHECK_EQ(kr_hist_percentile(h, 99.999), 5000);
  kr_hist_free(h);
}

KTEST(record_n_and_batch_percentiles)
{
  kr_hist *h;
  KCHECK(kr_hist_new(&h) == 0);
  kr_hist_record_n(h, 1000, 900);    /* 90% at 1 us */
  kr_hist_record_n(h, 1000000, 100); /* 10% at 1 ms */
  KCHECK_EQ(kr_hist_count(h), 1000);
  const double ps[] = {50, 90, 90.1, 100};
  uint64_t out[4];
  kr_hist_percentiles(h, ps, out, 4);
  KCHECK_EQ(out[0], 1000);
  KCHECK_EQ(out[1], 1000);
  KCHECK(out[2] == kr_hist_percentile(h, 90.1));
  KCHECK(fabs((double)out[2] - 1e6) <= 500);
  KCHECK_EQ(out[3], 1000000);
  kr_hist_record_n(h, 5, 0); /* nothing */
  KCHECK_EQ(kr_hist_count(h), 1000);
  KCHECK_EQ(kr_hist_min(h), 1000);
  kr_hist_free(h);
}

/* A closed loop meant to send every 1 ms saw one 100 ms stall: the 99
 * requests it did not send are added at 99 ms, 98 ms, ..., 1 ms. */
KTEST(corrected_recording)
{
  kr_hist *h, *naive;
  KCHECK(kr_hist_new(&h) == 0 && kr_hist_new(&naive) == 0);
  const uint64_t ms = 1000000;
  for (int i = 0; i < 900; i++) {
    kr_hist_record_corrected(h, 200000, ms); /* below the interval: alone */
    kr_hist_record(naive, 200000);
  }
  kr_hist_record_corrected(h, 100 * ms, ms);
  kr_hist_record(naive, 100 * ms);
  KCHECK_EQ(kr_hist_count(h), 1000);
  KCHECK_EQ(kr_hist_min(h), 200000);
  KCHECK_EQ(kr_hist_max(h), 100 * ms);
  double want_sum = 900 * 200000.0 + 5050.0 * (double)ms;
  KCHECK(fabs(kr_hist_mean(h) * 1000 - want_sum) < 1e-6 * want_sum);
  /* p95 is the 950th value: 50 ms; the naive one still shows 0.2 ms */
  KCHECK(fabs((double)kr_hist_percentile(h, 95) - 50.0 * ms) <= 0.0005 * 50 * ms);
  KCHECK_EQ(kr_hist_percentile(naive, 95), 200000);
  /* a tiny interval against a huge value stays bounded in work and exact in count */
  kr_hist_reset(h);
  kr_hist_record_corrected(h, 3600ull * 1000000000ull, 1000);
  KCHECK(kr_hist_count(h) == 3600000000ull);
  KCHECK_EQ(kr_hist_min(h), 1000);
  kr_hist_free(h);
  kr_hist_free(naive);
}

/* Equal in everything a reader sees. */
static int same(const kr_hist *a, const kr_hist *b)
{
  static const double ps[] = {0, 1, 25, 50, 75, 90, 99, 99.9, 99.99, 100};
  if (kr_hist_count(a) != kr_hist_count(b) || kr_hist_min(a) != kr_hist_min(b) ||
      kr_hist_max(a) != kr_hist_max(b) || kr_hist_mean(a) != kr_hist_mean(b))
    return 0;
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
    if (kr_hist_percentile(a, ps[i]) != kr_hist_percentile(b, ps[i]))
      return 0;
  return 1;
}

/* A dump merged into an empty histogram gives the histogram back; into a
 * full one, what kr_hist_merge gives. */
KTEST(dump_round_trip)
{
  kr_hist *a, *b, *m, *ref;
  KCHECK_EQ(kr_hist_new(&a), 0);
  KCHECK_EQ(kr_hist_new(&b), 0);
  KCHECK_EQ(kr_hist_new(&m), 0);
  KCHECK_EQ(kr_hist_new(&ref), 0);
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 200000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    kr_hist_record(a, x % 5000000000ull);
    if (i % 3 == 0)
      kr_hist_record(b, 1 + x % 2048);
  }
  kr_hist_record(b, UINT64_MAX); /* clamped into the highest slot */
  uint8_t *buf = malloc(kr_hist_encoded_max(a) + kr_hist_encoded_max(b));
  size_t n = kr_hist_encode(a, buf);
  KCHECK(n <= kr_hist_encoded_max(a));
  KCHECK_EQ(kr_hist_merge_encoded(m, buf, n), 0);
  KCHECK(same(m, a));
  size_t nb = kr_hist_encode(b, buf);
  KCHECK_EQ(kr_hist_merge_encoded(m, buf, nb), 0);
  kr_hist_merge(ref, a);
  kr_hist_merge(ref, b);
  KCHECK(same(m, ref));
  /* an empty one */
  kr_hist_reset(b);
  nb = kr_hist_encode(b, buf);
  KCHECK_EQ(kr_hist_merge_encoded(m, buf, nb), 0);
  KCHECK(same(m, ref));
  free(buf);
  kr_hist_free(a), kr_hist_free(b), kr_hist_free(m), kr_hist_free(ref);
}

/* Bytes that are no dump are refused and change nothing: every truncation
 * and every single-byte change of a real dump, and random bytes. */
KTEST(dump_hostile_bytes)
{
  kr_hist *a, *dst, *copy;
  KCHECK_EQ(kr_hist_new(&a), 0);
  KCHECK_EQ(kr_hist_new(&dst), 0);
  KCHECK_EQ(kr_hist_new(&copy), 0);
  for (uint64_t v = 1; v < 100000000; v = v * 3 + 7)
    kr_hist_record_n(a, v, v % 5 + 1);
  kr_hist_record(dst, 12345);
  kr_hist_merge(copy, dst);
  uint8_t *buf = malloc(kr_hist_encoded_max(a)), *bad = malloc(kr_hist_encoded_max(a) + 16);
  size_t n = kr_hist_encode(a, buf);
  int accepted = 0;
  for (size_t cut = 0; cut < n; cut++)
    accepted += kr_hist_merge_encoded(dst, buf, cut) == 0;
  KCHECK_EQ(accepted, 0);
  KCHECK(same(dst, copy));
  for (size_t i = 0; i < n; i++) {
    for (int flip = 1; flip < 256; flip <<= 1) {
      memcpy(bad, buf, n);
      bad[i] ^= (uint8_t)flip;
      kr_hist *t;
      KCHECK_EQ(kr_hist_new(&t), 0);
      if (kr_hist_merge_encoded(t, bad, n) == 0) {
        /* a change that still decodes must still be a consistent histogram */
        KCHECK(kr_hist_count(t) > 0 && kr_hist_min(t) <= kr_hist_max(t));
        KCHECK(kr_hist_percentile(t, 0) == kr_hist_min(t));
        KCHECK(kr_hist_percentile(t, 100) == kr_hist_max(t));
      }
      kr_hist_free(t);
    }
  }
  uint64_t x = 2463534242u;
  for (int round = 0; round < 20000; round++) {
    size_t len = round % 64;
    memcpy(bad, "KH1", 3);
    for (size_t i = 3; i < len; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      bad[i] = (uint8_t)x;
    }
    if (kr_hist_merge_encoded(dst, bad, len) == 0)
      kr_hist_reset(dst), kr_hist_merge(dst, copy); /* accepted: back to the start */
  }
  KCHECK(same(dst, copy));
  free(buf), free(bad);
  kr_hist_free(a), kr_hist_free(dst), kr_hist_free(copy);
}

int main(int argc, char **argv)
{
  static const struct ktest tests[] = {
    KENTRY(uniform_within_0_1_percent),
    KENTRY(exponential_within_0_1_percent),
    KENTRY(log_uniform_1us_to_1h_within_0_1_percent),
    KENTRY(small_values_are_exact),
    KENTRY(empty),
    KENTRY(bounds),
    KENTRY(merge_equals_recording_into_one),
    KENTRY(reset_then_reuse),
    KENTRY(record_n_and_batch_percentiles),
    KENTRY(corrected_recording),
    KENTRY(dump_round_trip),
    KENTRY(dump_hostile_bytes),
  };
  return ktest_run(tests, sizeof tests / sizeof tests[0], argc, argv);
}
