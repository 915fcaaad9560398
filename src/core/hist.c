/* The latency histogram (see hist.h). Layout, as in HdrHistogram with a unit
 * of 1 ns and 3 significant digits: bucket 0 holds the values 0..2047 one by
 * one; bucket b >= 1 holds [1024 << b, 2048 << b) in 1024 slots of width
 * 1 << b. A value v lands in bucket b = max(0, floor(log2 v) - 10) at slot
 * v >> b, and the flat index b * 1024 + (v >> b) enumerates the slots in
 * value order with no gaps (the lower half of every bucket but the first
 * would repeat the previous bucket, so it is not stored).
 *
 * The lowest and highest slots ever touched since the last reset are kept,
 * so that reset, merge and percentile walks cost the span that holds data,
 * not the ~34 K slots.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kura_client.h"
#include "core/hist.h"

#define SUB_BITS 10                      /* half a bucket: 1024 slots */
#define SUB_HALF (1u << SUB_BITS)
#define SUB_MASK ((uint64_t)(2 * SUB_HALF) - 1)
#define BUCKETS 32                       /* 2047 << 31 >= 1 h in ns */
#define SLOTS ((BUCKETS + 1) * SUB_HALF)

struct kr_hist {
  uint64_t count;          /* values recorded */
  uint64_t min, max;       /* exact extremes; min is UINT64_MAX when empty */
  double sum;              /* of the clamped values, for the mean */
  size_t lo, hi;           /* slots in use lie in [lo, hi]; lo > hi: none */
  uint64_t slots[SLOTS];
};

static size_t slot_of(uint64_t v)
{
  if (v >= KR_HIST_HIGHEST)
    v = KR_HIST_HIGHEST - 1;
  unsigned b = (unsigned)(63 - __builtin_clzll(v | SUB_MASK)) - SUB_BITS;
  return (size_t)b * SUB_HALF + (size_t)(v >> b);
}

/* The smallest value of a slot and the slot's width. */
static uint64_t slot_low(size_t i, uint64_t *width)
{
  size_t b = i < 2 * SUB_HALF ? 0 : i / SUB_HALF - 1;
  *width = (uint64_t)1 << b;
  return (uint64_t)(i - b * SUB_HALF) << b;
}

static uint64_t slot_middle(size_t i)
{
  uint64_t w;
  uint64_t low = slot_low(i, &w);
  return low + w / 2;
}

size_t kr_hist_bytes(void)
{
  return sizeof(kr_hist);
}

static void clear_stats(kr_hist *h)
{
  h->count = 0;
  h->min = UINT64_MAX;
  h->max = 0;
  h->sum = 0;
  h->lo = SLOTS;
  h->hi = 0;
}

kr_hist *kr_hist_init(void *mem)
{
  kr_hist *h = mem;
  memset(h->slots, 0, sizeof h->slots);
  clear_stats(h);
  return h;
}

int kr_hist_new(kr_hist **out)
{
  void *mem = malloc(sizeof(kr_hist));
  *out = mem ? kr_hist_init(mem) : NULL;
  return mem ? KURA_OK : KURA_ENOMEM;
}

void kr_hist_free(kr_hist *h)
{
  free(h);
}

/* Records n values top, top - step, ..., all of which fall in one slot. */
static void record_run(kr_hist *h, uint64_t top, uint64_t step, uint64_t n)
{
  if (n == 0)
    return;
  size_t i = slot_of(top);
  uint64_t bottom = top - (n - 1) * step;
  h->slots[i] += n;
  if (i < h->lo)
    h->lo = i;
  if (i > h->hi)
    h->hi = i;
  h->count += n;
  if (bottom < h->min)
    h->min = bottom;
  if (top > h->max)
    h->max = top;
  double t = (double)(top < KR_HIST_HIGHEST ? top : KR_HIST_HIGHEST);
  double b = (double)(bottom < KR_HIST_HIGHEST ? bottom : KR_HIST_HIGHEST);
  h->sum += (t + b) / 2 * (double)n;
}

void kr_hist_record_n(kr_hist *h, uint64_t ns, uint64_t n)
{
  record_run(h, ns, 0, n);
}

void kr_hist_record(kr_hist *h, uint64_t ns)
{
  record_run(h, ns, 0, 1);
}

/* As HdrHistogram's recordValueWithExpectedInterval, but the missed values
 * that share a slot go in as one run, so the work is bounded by the number
 * of slots, not by ns / interval_ns. */
void kr_hist_record_corrected(kr_hist *h, uint64_t ns, uint64_t interval_ns)
{
  kr_hist_record(h, ns);
  if (interval_ns == 0 || ns < 2 * interval_ns)
    return;
  uint64_t v = ns - interval_ns;
  while (v >= interval_ns) {
    uint64_t w, low;
    if (v >= KR_HIST_HIGHEST)
      low = KR_HIST_HIGHEST;
    else
      low = slot_low(slot_of(v), &w);
    if (low < interval_ns)
      low = interval_ns;
    uint64_t n = (v - low) / interval_ns + 1;
    record_run(h, v, interval_ns, n);
    v -= n * interval_ns; /* stays >= 0, as low >= interval_ns */
  }
}

void kr_hist_merge(kr_hist *dst, const kr_hist *src)
{
  if (src->count == 0)
    return;
  for (size_t i = src->lo; i <= src->hi; i++)
    dst->slots[i] += src->slots[i];
  if (src->lo < dst->lo)
    dst->lo = src->lo;
  if (src->hi > dst->hi)
    dst->hi = src->hi;
  dst->count += src->count;
  dst->sum += src->sum;
  if (src->min < dst->min)
    dst->min = src->min;
  if (src->max > dst->max)
    dst->max = src->max;
}

void kr_hist_reset(kr_hist *h)
{
  if (h->lo <= h->hi)
    memset(h->slots + h->lo, 0, (h->hi - h->lo + 1) * sizeof h->slots[0]);
  clear_stats(h);
}

uint64_t kr_hist_count(const kr_hist *h)
{
  return h->count;
}

uint64_t kr_hist_min(const kr_hist *h)
{
  return h->count ? h->min : 0;
}

uint64_t kr_hist_max(const kr_hist *h)
{
  return h->max;
}

double kr_hist_mean(const kr_hist *h)
{
  return h->count ? h->sum / (double)h->count : 0;
}

static uint64_t rank_of(const kr_hist *h, double p)
{
  if (!(p > 0))
    return 1;
  if (p >= 100)
    return h->count;
  /* The epsilon keeps 99.9% of 2000 at rank 1998 despite binary fractions. */
  double x = p / 100.0 * (double)h->count;
  double r = ceil(x - x * 1e-12);
  return r < 1 ? 1 : r > (double)h->count ? h->count : (uint64_t)r;
}

static uint64_t clamp_value(const kr_hist *h, uint64_t v)
{
  return v < h->min ? h->min : v > h->max ? h->max : v;
}

void kr_hist_percentiles(const kr_hist *h, const double *ps, uint64_t *out, size_t n)
{
  size_t k = 0;
  if (h->count == 0) {
    for (; k < n; k++)
      out[k] = 0;
    return;
  }
  /* The first and the last value are known exactly: give them as they are. */
  uint64_t seen = 0;
  for (size_t i = h->lo; i <= h->hi && k < n; i++) {
    seen += h->slots[i];
    for (uint64_t rank; k < n && seen >= (rank = rank_of(h, ps[k])); k++)
      out[k] = rank == 1 ? h->min : rank == h->count ? h->max : clamp_value(h, slot_middle(i));
  }
  for (; k < n; k++) /* only when ps was not ascending */
    out[k] = h->max;
}

uint64_t kr_hist_percentile(const kr_hist *h, double p)
{
  uint64_t v;
  kr_hist_percentiles(h, &p, &v, 1);
  return v;
}

/* --- the histogram as bytes ------------------------------------------------- */

#define WIRE_MAGIC "KH1"

static size_t put_varint(uint8_t *out, uint64_t v)
{
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  out[n++] = (uint8_t)v;
  return n;
}

/* 0, or -1 at the end of the bytes or past 10 bytes. */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
  uint64_t r = 0;
  for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    r |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return 0;
    }
  }
  return -1;
}

size_t kr_hist_encoded_max(const kr_hist *h)
{
  size_t used = h->count ? h->hi - h->lo + 1 : 0;
  return 3 + 3 * 10 + 8 + used * 20;
}

size_t kr_hist_encode(const kr_hist *h, uint8_t *out)
{
  size_t n = 3;
  memcpy(out, WIRE_MAGIC, 3);
  n += put_varint(out + n, h->count);
  if (!h->count)
    return n;
  n += put_varint(out + n, h->min);
  n += put_varint(out + n, h->max);
  memcpy(out + n, &h->sum, 8);
  n += 8;
  size_t last = 0; /* slot after the previous run's */
  for (size_t i = h->lo; i <= h->hi; i++) {
    if (!h->slots[i])
      continue;
    n += put_varint(out + n, i - last); /* zero slots skipped */
    n += put_varint(out + n, h->slots[i]);
    last = i + 1;
  }
  return n;
}

/* The slots of the encoded histogram into a scratch histogram, checked. */
static int decode(kr_hist *t, const uint8_t *p, const uint8_t *end)
{
  uint64_t count, min, max, gap, k, seen = 0;
  size_t at = 0;
  if (get_varint(&p, end, &count))
    return KURA_EINVAL;
  if (!count)
    return p == end ? 0 : KURA_EINVAL;
  if (get_varint(&p, end, &min) || get_varint(&p, end, &max) || min > max || end - p < 8)
    return KURA_EINVAL;
  memcpy(&t->sum, p, 8);
  p += 8;
  if (!(t->sum >= 0) || isinf(t->sum))
    return KURA_EINVAL;
  while (p < end) {
    if (get_varint(&p, end, &gap) || get_varint(&p, end, &k) || !k || gap >= SLOTS - at ||
        k > count - seen)
      return KURA_EINVAL;
    at += (size_t)gap;
    t->slots[at] = k;
    if (t->lo == SLOTS)
      t->lo = at;
    t->hi = at;
    at++;
    seen += k;
  }
  if (seen != count || t->lo != slot_of(min) || t->hi != slot_of(max))
    return KURA_EINVAL;
  t->count = count, t->min = min, t->max = max;
  return 0;
}

int kr_hist_merge_encoded(kr_hist *dst, const uint8_t *in, size_t len)
{
  if (len < 3 || memcmp(in, WIRE_MAGIC, 3) != 0)
    return KURA_EINVAL;
  kr_hist *t;
  if (kr_hist_new(&t))
    return KURA_ENOMEM;
  int rc = decode(t, in + 3, in + len);
  if (rc == 0)
    kr_hist_merge(dst, t);
  kr_hist_free(t);
  return rc;
}
