/* The floor of kura.http (scripts/bench/http.sh): libcurl alone, driven the
 * cheapest way its multi-socket interface allows, with nothing of kura in
 * between. N easy handles, each set up once (URL, a body counter) and added
 * again as soon as its transfer finishes, on a bare epoll loop: no Lua, no
 * tasks, no libuv, no per-request options. What it reaches is what libcurl
 * itself costs per request on this machine; kura.http cannot go faster than
 * this, since it runs on the same libcurl.
 *
 *   http_floor URL [SECONDS] [CONCURRENCY] [MAX_CONNECTIONS]
 *
 * MAX_CONNECTIONS (default: CONCURRENCY) caps libcurl's connections, as
 * kura.http's pool does (128); the rest of the transfers wait in libcurl's
 * queue. Prints one line: requests, seconds, requests/s, failures. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

typedef struct floor_state {
  CURLM *multi;
  int ep;
  long timeout_ms; /* curl's next timeout, -1 none */
  unsigned long done, failed, bytes;
  int active;      /* handles in the multi handle */
  int stopping;
} floor_state;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  (void)p;
  ((floor_state *)ud)->bytes += size * n;
  return size * n;
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp) {
  floor_state *st = ud;
  (void)e;
  struct epoll_event ev = {.data.fd = fd};
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(st->ep, EPOLL_CTL_DEL, fd, NULL);
    curl_multi_assign(st->multi, fd, NULL);
    return 0;
  }
  ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
  if (!sockp) {
    epoll_ctl(st->ep, EPOLL_CTL_ADD, fd, &ev);
    curl_multi_assign(st->multi, fd, st); /* any non-NULL mark: known */
  } else {
    epoll_ctl(st->ep, EPOLL_CTL_MOD, fd, &ev);
  }
  return 0;
}

static int on_timer(CURLM *m, long ms, void *ud) {
  (void)m;
  ((floor_state *)ud)->timeout_ms = ms;
  return 0;
}

/* Finished transfers are counted and, until the time is up, added again. */
static void collect(floor_state *st) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(st->multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL *e = msg->easy_handle;
    long code = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    if (msg->data.result == CURLE_OK && code == 200) st->done++;
    else st->failed++;
    curl_multi_remove_handle(st->multi, e);
    if (!st->stopping) {
      curl_multi_add_handle(st->multi, e);
    } else {
      curl_easy_cleanup(e);
      st->active--;
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    fprintf(argc < 2 ? stderr : stdout,
            "usage: http_floor URL [SECONDS] [CONCURRENCY] [MAX_CONNECTIONS]\n"
            "libcurl alone (multi-socket on epoll, handles set up once and re-added)\n"
            "getting URL with CONCURRENCY (1000) transfers for SECONDS (5): the floor\n"
            "under kura.http, which runs on the same libcurl.\n");
    return argc < 2 ? 2 : 0;
  }
  const char *url = argv[1];
  double secs = argc > 2 ? atof(argv[2]) : 5;
  int conc = argc > 3 ? atoi(argv[3]) : 1000;
  long maxconn = argc > 4 ? atol(argv[4]) : conc;
  if (secs <= 0 || conc <= 0 || maxconn <= 0) return 2;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  floor_state st = {.timeout_ms = -1};
  st.multi = curl_multi_init();
  st.ep = epoll_create1(0);
  curl_multi_setopt(st.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(st.multi, CURLMOPT_SOCKETDATA, &st);
  curl_multi_setopt(st.multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(st.multi, CURLMOPT_TIMERDATA, &st);
  curl_multi_setopt(st.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, maxconn);
  curl_multi_setopt(st.multi, CURLMOPT_MAXCONNECTS, maxconn);
  for (int i = 0; i < conc; i++) {
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &st);
    curl_multi_add_handle(st.multi, e);
    st.active++;
  }

  /* `running` from curl can be 0 for a moment while finished transfers wait
   * in collect() to be added again: the loop counts its own handles. */
  int running = 0;
  double t0 = now_s(), end = t0 + secs, t = t0;
  struct epoll_event evs[256];
  while (st.active > 0) {
    if (!st.stopping && t >= end) st.stopping = 1;
    int wait = st.timeout_ms < 0 ? 100 : (int)st.timeout_ms;
    int n = epoll_wait(st.ep, evs, 256, wait);
    if (n == 0) {
      curl_multi_socket_action(st.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    for (int i = 0; i < n; i++) {
      int fl = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
               (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
               (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
      curl_multi_socket_action(st.multi, evs[i].data.fd, fl, &running);
    }
    if (st.timeout_ms == 0)
      curl_multi_socket_action(st.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect(&st);
    t = now_s();
    if (st.stopping && t > end + 10) break; /* a stuck transfer: give up */
  }
  double dt = now_s() - t0;
  printf("libcurl floor: %lu requests in %.2f s, %d concurrent, %ld connections: %.0f "
         "requests/s (%lu failed, %lu body bytes)\n",
         st.done, dt, conc, maxconn, (double)st.done / dt, st.failed, st.bytes);
  curl_multi_cleanup(st.multi);
  curl_global_cleanup();
  return st.failed ? 1 : 0;
}
