/* The HTTP client's sockets and timer (see http.c for the whole): curl's
 * multi-socket interface says which descriptors to watch (on_socket) and
 * when to call it back (on_curl_timer); one uv_poll_t per descriptor and the
 * client's uv_timer_t watch for it, and hand the events back with
 * curl_multi_socket_action. Poll handles are parked, not closed, when curl
 * stops watching a descriptor, and closed when curl closes it.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/net/http_int.h"

void kr_http_on_handle_closed(uv_handle_t *hd)
{
  kr_http *h = hd->data;
  if ((void *)hd != (void *)&h->timer && (void *)hd != (void *)&h->starter &&
      (void *)hd != (void *)&h->kick) {
    sock *s = (sock *)(void *)hd; /* poll is the first member */
    free(s);
  }
  h->open_handles--;
  kr_http_maybe_free(h);
}

void kr_http_sock_close(kr_http *h, sock *s)
{
  if ((size_t)s->fd < h->nbyfd && h->byfd[s->fd] == s)
    h->byfd[s->fd] = NULL;
  if (s->prev)
    s->prev->next = s->next;
  else
    h->socks = s->next;
  if (s->next)
    s->next->prev = s->prev;
  uv_close((uv_handle_t *)&s->poll, kr_http_on_handle_closed); /* stops it too */
}

/* CURLOPT_CLOSESOCKETFUNCTION: curl closes fd. */
int kr_http_on_close_socket(void *ud, curl_socket_t fd)
{
  kr_http *h = ud;
  if (fd >= 0 && (size_t)fd < h->nbyfd && h->byfd[fd])
    kr_http_sock_close(h, h->byfd[fd]);
  return close(fd);
}

/* libuv reports a socket error (POLLERR) as a negative status and stops the
 * handle. curl is then told the socket is ready for what it waited for, so
 * that it meets the error in its own recv/send: that is how it tells a kept-
 * alive connection the server closed (and retries the request on a new one)
 * from a failure (CURL_CSELECT_ERR would fail the transfer outright). The
 * handle is started again if curl still wants the socket watched. */
static void on_poll(uv_poll_t *p, int status, int events)
{
  sock *s = (sock *)(void *)p;
  kr_http *h = s->h;
  int running;
  if (s->parked) { /* an idle connection the server closed, most likely: curl
                      finds out when it next looks at it; stop the event */
    uv_poll_stop(p);
    s->events = 0;
    return;
  }
  if (status < 0)
    events = s->events;
  int flags = ((events & UV_READABLE) ? CURL_CSELECT_IN : 0) |
              ((events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0);
  curl_multi_socket_action(h->multi, s->fd, flags, &running);
  if (status < 0 && !uv_is_closing((uv_handle_t *)p) && !s->parked && s->events &&
      !uv_is_active((uv_handle_t *)p))
    uv_poll_start(p, s->events, on_poll);
  kr_http_check_done(h);
}

/* The parked handle for descriptor number fd, or a new one. */
static sock *sock_get(kr_http *h, curl_socket_t fd)
{
  if (fd < 0)
    return NULL;
  if ((size_t)fd < h->nbyfd && h->byfd[fd]) {
    sock *s = h->byfd[fd];
    s->parked = 0;
    uv_ref((uv_handle_t *)&s->poll);
    curl_multi_assign(h->multi, fd, s);
    return s;
  }
  if ((size_t)fd >= h->nbyfd) {
    size_t n = h->nbyfd ? h->nbyfd : 64;
    while (n <= (size_t)fd)
      n *= 2;
    sock **m = realloc(h->byfd, n * sizeof *m);
    if (!m)
      return NULL;
    memset(m + h->nbyfd, 0, (n - h->nbyfd) * sizeof *m);
    h->byfd = m, h->nbyfd = n;
  }
  sock *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
    free(s);
    return NULL;
  }
  s->poll.data = h;
  s->h = h;
  s->fd = fd;
  s->next = h->socks;
  if (h->socks)
    h->socks->prev = s;
  h->socks = s;
  h->byfd[fd] = s;
  h->open_handles++;
  curl_multi_assign(h->multi, fd, s);
  return s;
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for `what`, or stop watching it. */
int kr_http_on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
  kr_http *h = userp;
  sock *s = socketp;
  (void)e;
  if (h->closing && !s)
    return 0;
  if (what == CURL_POLL_REMOVE) {
    if (s) { /* park it: curl may close fd, or reuse the connection soon */
      curl_multi_assign(h->multi, fd, NULL);
      s->parked = 1;
      /* A connection back in curl's cache is reused for the next request
       * mostly, and watched for reading again then: left watched (but not
       * keeping the loop alive), it costs no epoll_ctl to stop and restart
       * it on every request. An event while parked stops it (on_poll). */
      if (s->events == UV_READABLE) {
        uv_unref((uv_handle_t *)&s->poll);
      } else {
        uv_poll_stop(&s->poll);
        s->events = 0;
      }
    }
    return 0;
  }
  if (!s && !(s = sock_get(h, fd)))
    return -1; /* curl fails the transfers on this socket */
  int ev = ((what & CURL_POLL_IN) ? UV_READABLE : 0) | ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0);
  if (ev != s->events) { /* a restart costs epoll_ctl calls */
    s->events = ev;
    uv_poll_start(&s->poll, ev, on_poll);
  }
  return 0;
}

static void on_timer(uv_timer_t *t)
{
  kr_http *h = t->data;
  int running;
  curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  kr_http_check_done(h);
}

/* CURLMOPT_TIMERFUNCTION: call curl back in ms (-1: never). Even 0 goes
 * through the loop: curl must not be re-entered from its own callback. */
int kr_http_on_curl_timer(CURLM *m, long ms, void *userp)
{
  kr_http *h = userp;
  (void)m;
  if (h->closing)
    return 0;
  if (ms < 0)
    uv_timer_stop(&h->timer);
  else
    uv_timer_start(&h->timer, on_timer, (uint64_t)ms, 0);
  return 0;
}
