/* The reply budget of a RESP connection, chosen by measuring.
 *
 * A loop turn hands out at most `budget` of the replies read (resp.c,
 * drain_replies); the commands their callers send go out at the end of the
 * turn. A small budget lets the server work on those commands while this
 * side hands out the rest of a large read: the two processes overlap, and
 * on an idle 2-core machine `kura bench -c 50 --mix get:100` against one
 * redis-server ran 1.9-2.1x faster with 16 than with 128. On a busy
 * machine every extra turn is one more write and one more wakeup of a
 * server that shares a CPU with everything else, and 128 measured up to
 * 1.4x faster than 16. Neither wins everywhere, and which one does changes
 * as the machine's load does, so each connection measures both:
 *
 * Time goes in windows of KR_TUNE_WINDOW_MS. A cycle runs the chosen
 * budget for all its windows but the last, measures the reply rate in the
 * one before the last, and runs the other budget in the last (the probe).
 * A probe faster by more than KR_TUNE_MARGIN switches; one that loses
 * doubles the cycle (up to KR_TUNE_MAX_WINDOWS windows), so a settled
 * choice costs little probing. A window in which the budget made no
 * difference (fewer than KR_TUNE_MIN_CONTESTED turns had more replies than
 * the small budget) or that saw too few replies decides nothing and starts
 * the cycle again on the chosen budget: light or open-loop traffic keeps
 * what it has.
 *
 * Plain data and pure functions of the loop's time and the reply count, so
 * tests drive it with made-up rates (tests/unit/test_resp.c). */
#ifndef KR_RESP_TUNE_H
#define KR_RESP_TUNE_H

#include <stdint.h>

#define KR_TUNE_SMALL 16u
#define KR_TUNE_LARGE 128u
#define KR_TUNE_WINDOW_MS 40u
#define KR_TUNE_MIN_WINDOWS 4u
#define KR_TUNE_MAX_WINDOWS 64u
#define KR_TUNE_MIN_REPLIES 256u   /* in a window, to be measured */
#define KR_TUNE_MIN_CONTESTED 4u   /* turns with more replies than KR_TUNE_SMALL */
#define KR_TUNE_MARGIN 1.08        /* a probe must beat the reference by this */

typedef struct kr_resp_tune {
  uint64_t t0, n0;        /* the window's start: loop time (ms), replies */
  uint32_t window;        /* its number in the cycle, from 0 */
  uint32_t windows;       /* the cycle's length */
  uint32_t contested;     /* turns of this window with more than KR_TUNE_SMALL replies */
  uint32_t budget;        /* what a turn hands out now */
  uint32_t chosen;        /* the budget the cycle runs (the probe runs the other) */
  double ref;             /* replies per ms of `chosen`, measured this cycle; 0: none */
  uint64_t switches;      /* times `chosen` changed (stats) */
} kr_resp_tune;

/* Starts on the large budget (what a busy machine wants; an idle one
 * switches within a few cycles). */
void kr_resp_tune_init(kr_resp_tune *t, uint64_t now_ms, uint64_t replies);

/* After each turn that handed out replies: `handed` of them, `more` when
 * some were left for the next turn. `now_ms` is the loop's time, `replies`
 * the connection's count so far. Cheap when the window is not over. */
void kr_resp_tune_turn(kr_resp_tune *t, uint64_t now_ms, uint64_t replies, unsigned handed,
                       int more);

#endif
