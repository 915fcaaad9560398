/* A latency histogram with HdrHistogram's log-linear bucketing: values are
 * nanoseconds, kept to 3 significant digits (a bucket is at most 1/1024 of
 * its value wide) from 1 ns up to about 73 minutes, so every value between
 * 1 us and 1 h keeps its 3 digits. Recording is a few shifts and one
 * increment; memory is fixed (about 270 KB of counters), whatever the count.
 *
 * The struct is opaque but its size is known (kr_hist_bytes), so a binding
 * can place one inside memory it owns (a Lua userdata) with kr_hist_init.
 * Not thread-safe: one writer; merge per-thread histograms instead.
 */
#ifndef KR_HIST_H
#define KR_HIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct kr_hist kr_hist;

/* The largest value kept apart from its neighbours; larger values are
 * recorded as this one (and still counted, and still raise max). */
#define KR_HIST_HIGHEST ((uint64_t)2048 << 31)

size_t kr_hist_bytes(void);
/* mem: kr_hist_bytes() bytes, aligned for uint64_t. */
kr_hist *kr_hist_init(void *mem);
/* Allocated with malloc; 0 or KURA_ENOMEM. */
int kr_hist_new(kr_hist **out);
void kr_hist_free(kr_hist *h);

void kr_hist_record(kr_hist *h, uint64_t ns);
void kr_hist_record_n(kr_hist *h, uint64_t ns, uint64_t n);
/* Coordinated-omission correction for a closed loop that meant to issue a
 * request every interval_ns: a value of k intervals also records the k-1
 * requests that were not issued while it waited (ns - interval, ns - 2
 * intervals, ...). interval_ns 0 records the value alone. */
void kr_hist_record_corrected(kr_hist *h, uint64_t ns, uint64_t interval_ns);
/* dst += src. */
void kr_hist_merge(kr_hist *dst, const kr_hist *src);
void kr_hist_reset(kr_hist *h);

uint64_t kr_hist_count(const kr_hist *h);
/* 0 when empty. min and max are the exact values recorded, the mean is the
 * exact mean of the (clamped) values. */
uint64_t kr_hist_min(const kr_hist *h);
uint64_t kr_hist_max(const kr_hist *h);
double kr_hist_mean(const kr_hist *h);
/* The value at percentile p (0..100): the rank-th smallest value recorded,
 * rank = ceil(p/100 * count) (at least 1), given as the middle of its bucket
 * (so within 0.05% of the exact value) and never outside [min, max]; the
 * first and the last rank give the exact min and max.
 * 0 when empty. */
uint64_t kr_hist_percentile(const kr_hist *h, double p);
/* The same for n percentiles in ascending order, in one pass. */
void kr_hist_percentiles(const kr_hist *h, const double *ps, uint64_t *out, size_t n);

/* The histogram as bytes, to move it between threads or processes and merge
 * it there exactly: at most kr_hist_encoded_max(h) bytes into out; returns
 * the length. Only the slots in use are written (a few bytes each). */
size_t kr_hist_encoded_max(const kr_hist *h);
size_t kr_hist_encode(const kr_hist *h, uint8_t *out);
/* dst += the histogram those bytes hold. KURA_EINVAL (dst unchanged) for
 * bytes that are not one: wrong header, truncated, counts that do not add
 * up, slots out of range or out of order, extremes outside the slots. */
int kr_hist_merge_encoded(kr_hist *dst, const uint8_t *in, size_t len);

#endif
