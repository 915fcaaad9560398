/* Deferred completions of the network backends: see defer.h. */
#include "core/backends/defer.h"

static void run_all(kr_defer *q)
{
  kr_deferred *d = q->head;
  q->head = q->tail = NULL;
  while (d) {
    kr_deferred *next = d->next; /* finish frees d */
    q->finish(d);
    d = next;
  }
}

static void on_timer(uv_timer_t *t)
{
  run_all(t->data);
}

void kr_defer_init(kr_defer *q, uv_loop_t *loop, void (*finish)(kr_deferred *d))
{
  *q = (kr_defer){.finish = finish};
  uv_timer_init(loop, &q->timer);
  q->timer.data = q;
}

void kr_defer_push(kr_defer *q, kr_deferred *d)
{
  d->next = NULL;
  if (q->closing) {
    q->finish(d);
    return;
  }
  if (q->tail)
    q->tail->next = d;
  else
    q->head = d;
  q->tail = d;
  uv_timer_start(&q->timer, on_timer, 0, 0);
}

static void on_closed(uv_handle_t *h)
{
  kr_defer *q = h->data;
  if (q->closed)
    q->closed(q->closed_ud);
}

void kr_defer_close(kr_defer *q, void (*cancel)(kr_deferred *d),
                    void (*closed)(void *ud), void *ud)
{
  q->closing = 1;
  q->closed = closed;
  q->closed_ud = ud;
  for (kr_deferred *d = q->head; cancel && d; d = d->next)
    cancel(d);
  run_all(q);
  uv_timer_stop(&q->timer);
  uv_close((uv_handle_t *)&q->timer, on_closed);
}
