/* Deferred completions of the network backends. A backend never completes a
 * request from inside submit (client.h): one that fails before it is sent
 * (no memory for a command, a name the backend cannot take, nothing to send)
 * is queued here and completes from the loop's next turn; at the close, what
 * is queued is cancelled and completed at once. Requests complete in the
 * order they were queued.
 *
 * The queue links the backend's own request records through a kr_deferred
 * member (KR_DEFERRED_OF gives the record back), so queueing allocates
 * nothing and cannot fail.
 */
#ifndef KR_DEFER_H
#define KR_DEFER_H

#include <stddef.h>
#include <uv.h>

typedef struct kr_deferred {
  struct kr_deferred *next;
} kr_deferred;

/* The record of type `type` whose member `member` is the kr_deferred d. */
#define KR_DEFERRED_OF(d, type, member) ((type *)(void *)((char *)(d) - offsetof(type, member)))

typedef struct kr_defer {
  uv_timer_t timer;
  kr_deferred *head, *tail;
  void (*finish)(kr_deferred *d);  /* completes one request (and frees it) */
  void (*closed)(void *ud);
  void *closed_ud;
  int closing;
} kr_defer;

/* finish completes a queued request. The timer is made on loop. */
void kr_defer_init(kr_defer *q, uv_loop_t *loop, void (*finish)(kr_deferred *d));
/* Queues d; it completes from the loop's next turn (at once once closing). */
void kr_defer_push(kr_defer *q, kr_deferred *d);
/* The backend's close: cancel(d) (may be NULL) marks each queued request
 * cancelled, each is finished at once, and the timer closes; closed(ud)
 * runs once it has. */
void kr_defer_close(kr_defer *q, void (*cancel)(kr_deferred *d),
                    void (*closed)(void *ud), void *ud);

#endif
