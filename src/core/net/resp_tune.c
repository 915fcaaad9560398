/* The reply budget, chosen by measuring (see resp_tune.h). */
#include "core/net/resp_tune.h"

#include <string.h>

void kr_resp_tune_init(kr_resp_tune *t, uint64_t now_ms, uint64_t replies)
{
  memset(t, 0, sizeof *t);
  t->t0 = now_ms;
  t->n0 = replies;
  t->windows = KR_TUNE_MIN_WINDOWS;
  t->budget = t->chosen = KR_TUNE_LARGE;
}

static uint32_t other(uint32_t b)
{
  return b == KR_TUNE_SMALL ? KR_TUNE_LARGE : KR_TUNE_SMALL;
}

/* The cycle from its first window, on the chosen budget. */
static void restart(kr_resp_tune *t)
{
  t->window = 0;
  t->ref = 0;
  t->budget = t->chosen;
}

void kr_resp_tune_turn(kr_resp_tune *t, uint64_t now_ms, uint64_t replies, unsigned handed,
                       int more)
{
  if (handed > KR_TUNE_SMALL || more)
    t->contested++;
  uint64_t elapsed = now_ms - t->t0;
  if (elapsed < KR_TUNE_WINDOW_MS)
    return;
  uint64_t n = replies - t->n0;
  uint32_t contested = t->contested;
  t->t0 = now_ms;
  t->n0 = replies;
  t->contested = 0;
  /* A quiet stretch, a stall of the loop, or traffic the budget does not
   * touch: nothing to compare. */
  if (n < KR_TUNE_MIN_REPLIES || contested < KR_TUNE_MIN_CONTESTED ||
      elapsed > 4 * KR_TUNE_WINDOW_MS) {
    restart(t);
    return;
  }
  double rate = (double)n / (double)elapsed;
  uint32_t w = t->window++;
  if (w + 2 == t->windows) {
    t->ref = rate;
  } else if (w + 1 == t->windows) { /* the probe's window */
    if (t->ref > 0 && rate > t->ref * KR_TUNE_MARGIN) {
      t->chosen = t->budget;
      t->switches++;
      t->windows = KR_TUNE_MIN_WINDOWS;
    } else if (t->windows < KR_TUNE_MAX_WINDOWS) {
      t->windows *= 2;
    }
    restart(t);
    return;
  }
  t->budget = t->window + 1 == t->windows ? other(t->chosen) : t->chosen;
}
