/* kr_rcl: a connection to a Redis Cluster (see backend_redis.h).
 *
 * One kr_resp per node (each auto-pipelines on its own), a slot map of 16384
 * entries (slot -> node) loaded with CLUSTER SLOTS. A command goes to the
 * node of its key's slot. Until the first map is known, commands wait for
 * it (they are not all sent to the first seed, which would answer MOVED for
 * two thirds of them); if no seed answers, they fail unsent.
 *
 * Redirections. The router keeps a copy of every command's arguments until
 * its reply comes, so that it can send it again:
 * - "-MOVED slot host:port": the slot has a new owner for good. The map entry
 *   is updated at once, a refresh of the whole map (one CLUSTER SLOTS in
 *   flight at most) is started, and the command goes to the new owner.
 * - "-ASK slot host:port": the slot is migrating and this key is already on
 *   the target: "ASKING" then the command go to the target, once; the map
 *   is not changed.
 * At most 5 redirections per command, within its original deadline; past
 * them the last error reply goes to the caller (which maps MOVED/ASK to
 * SERVER_UNAVAILABLE).
 *
 * Nodes that are down. A node whose connection was lost, or whose last
 * connection attempt failed, is down until its connection is ready again:
 * kr_resp keeps probing it (reconnecting with a backoff capped at
 * PROBE_MAX_MS), and meanwhile a command for it fails at once with
 * KURA_ECONN, unsent (kr_rcl_command returns the code; kr_rcl_errstr says
 * which node). Without that, the commands of a dead node wait in its queue
 * for the next connection attempt, and tasks that call in a loop pile up
 * there, away from the nodes that still answer.
 *
 * The map is refreshed after MOVED, a lost connection, CLUSTERDOWN, a
 * command refused for a node that is down (a failover may have given its
 * slots to another node), at most every REFRESH_MIN_MS for those; and
 * every REFRESH_EVERY_MS in any case.
 *
 * Nodes are added as the map or a redirection names them and never removed.
 * Closing closes every node connection and the timer; the memory goes with
 * the last of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backends/backend_redis.h"
#include "kura_client.h"

#define NSLOTS KR_REDIS_SLOTS
#define MAX_NODES 128
#define MAX_REDIRECTS 5
#define PROBE_MAX_MS 200      /* a node that is back is found within this */
#define REFRESH_EVERY_MS 1000
#define REFRESH_MIN_MS 100    /* between refreshes asked for by failures */

typedef struct rnode {
  char host[256];
  int port;
  kr_resp *conn;
} rnode;

typedef struct rlcmd rlcmd;

struct kr_rcl {
  uv_loop_t *loop;
  kr_resp_opts base;          /* AUTH and timeouts for every node */
  char user[128], pass[256];  /* base.user / base.password point here */
  rnode *nodes[MAX_NODES];
  size_t nnodes;
  uint16_t slots[NSLOTS];     /* node index of each slot */
  uint16_t masters[MAX_NODES];/* distinct owners in the map */
  size_t nmasters;            /* 0 until the first CLUSTER SLOTS answered */
  int refreshing;             /* a CLUSTER SLOTS is in flight */
  size_t refresh_from;        /* the node asked next */
  size_t refresh_fails;       /* failed in a row */
  uint64_t refreshed_at;      /* uv_now() when the last one was sent */
  rlcmd *waiting;             /* commands waiting for the first map */
  uv_timer_t timer;           /* the periodic refresh */
  kr_rcl_stats stats;
  int closing;
  size_t open_handles;        /* node connections and the timer, not yet freed */
  void (*close_cb)(void *udata);
  void *close_udata;
  char errstr[256];
};

/* A command in flight, with a copy of its arguments (same block). */
struct rlcmd {
  rlcmd *next;                /* in kr_rcl.waiting */
  kr_rcl *cl;
  kr_resp_cb cb;
  void *udata;
  uint64_t deadline;
  int redirects;
  int argc;
  const char **argv;
  size_t *argvlen;
  int key_arg;                /* -1: any node (kr_rcl_command_any) */
};

/* --- slots ------------------------------------------------------------------ */

static unsigned crc16_xmodem(const unsigned char *p, size_t len)
{
  unsigned crc = 0;
  for (size_t i = 0; i < len; i++) {
    crc ^= (unsigned)p[i] << 8;
    for (int b = 0; b < 8; b++)
      crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    crc &= 0xffff;
  }
  return crc;
}

unsigned kr_redis_slot(const void *key, size_t len)
{
  const unsigned char *k = key;
  const unsigned char *open = memchr(k, '{', len);
  if (open) {
    size_t off = (size_t)(open - k) + 1;
    const unsigned char *close = memchr(open + 1, '}', len - off);
    if (close && close > open + 1)
      return crc16_xmodem(open + 1, (size_t)(close - open - 1)) & (NSLOTS - 1);
  }
  return crc16_xmodem(k, len) & (NSLOTS - 1);
}

/* --- nodes ------------------------------------------------------------------- */

static void handle_gone(kr_rcl *cl)
{
  if (--cl->open_handles > 0)
    return;
  if (cl->close_cb)
    cl->close_cb(cl->close_udata);
  for (size_t i = 0; i < cl->nnodes; i++)
    free(cl->nodes[i]);
  memset(cl->pass, 0, sizeof cl->pass);
  free(cl);
}

static void on_node_closed(kr_resp *conn, void *udata)
{
  (void)conn;
  handle_gone(udata);
}

static void on_timer_closed(uv_handle_t *h)
{
  handle_gone(h->data);
}

/* Down: the connection was lost, or the last attempt failed, and no
 * attempt has succeeded since (kr_resp keeps trying: the probe). */
static int node_down(const rnode *n)
{
  return !kr_resp_ready(n->conn) && n->conn->err != 0;
}

/* The index of node host:port, connecting to it when new; -1 on failure. */
static int node_for(kr_rcl *cl, const char *host, size_t hlen, int port)
{
  for (size_t i = 0; i < cl->nnodes; i++)
    if (cl->nodes[i]->port == port && strlen(cl->nodes[i]->host) == hlen &&
        memcmp(cl->nodes[i]->host, host, hlen) == 0)
      return (int)i;
  if (cl->closing || cl->nnodes >= MAX_NODES || hlen == 0 || hlen >= sizeof cl->nodes[0]->host)
    return -1;
  rnode *n = calloc(1, sizeof *n);
  if (!n)
    return -1;
  memcpy(n->host, host, hlen);
  n->port = port;
  kr_resp_opts o = cl->base;
  o.host = n->host;
  o.port = port;
  if (kr_resp_open(cl->loop, &o, &n->conn)) {
    free(n);
    return -1;
  }
  cl->open_handles++;
  cl->nodes[cl->nnodes] = n;
  return (int)cl->nnodes++;
}

/* --- the slot map -------------------------------------------------------------- */

static void find_masters(kr_rcl *cl)
{
  uint8_t seen[MAX_NODES] = {0};
  cl->nmasters = 0;
  for (size_t s = 0; s < NSLOTS; s++)
    if (!seen[cl->slots[s]]) {
      seen[cl->slots[s]] = 1;
      cl->masters[cl->nmasters++] = cl->slots[s];
    }
}

/* One entry of CLUSTER SLOTS: [start, end, [host, port, id...], replicas...]. */
static void map_range(kr_rcl *cl, const redisReply *e)
{
  if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
      e->element[0]->type != REDIS_REPLY_INTEGER || e->element[1]->type != REDIS_REPLY_INTEGER ||
      e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2)
    return;
  const redisReply *m = e->element[2];
  if (m->element[0]->type != REDIS_REPLY_STRING || m->element[1]->type != REDIS_REPLY_INTEGER)
    return;
  int node = node_for(cl, m->element[0]->str, m->element[0]->len, (int)m->element[1]->integer);
  long long lo = e->element[0]->integer, hi = e->element[1]->integer;
  if (node < 0 || lo < 0 || hi >= NSLOTS || lo > hi)
    return;
  for (long long s = lo; s <= hi; s++)
    cl->slots[s] = (uint16_t)node;
}

static void route_waiting(kr_rcl *cl);
static void refresh(kr_rcl *cl, int now);

static void on_slots(kr_resp *conn, int status, const redisReply *reply, void *udata)
{
  kr_rcl *cl = udata;
  (void)conn;
  cl->refreshing = 0;
  if (cl->closing)
    return;
  if (status < 0 || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
    cl->refresh_from = (cl->refresh_from + 1) % cl->nnodes; /* ask another next time */
    if (++cl->refresh_fails >= cl->nnodes || cl->nmasters)
      route_waiting(cl); /* every seed failed once: the waiting commands fail */
    else
      refresh(cl, 1);
    return;
  }
  for (size_t i = 0; i < reply->elements; i++)
    map_range(cl, reply->element[i]);
  find_masters(cl);
  cl->refresh_fails = 0;
  cl->stats.refreshes++;
  route_waiting(cl);
}

/* Sends CLUSTER SLOTS to a node that is not down, from refresh_from on.
 * `now`: at once; else not within REFRESH_MIN_MS of the last one. */
static void refresh(kr_rcl *cl, int now)
{
  if (cl->refreshing || cl->closing || cl->nnodes == 0)
    return;
  uint64_t t = uv_now(cl->loop);
  if (!now && cl->refreshed_at && t - cl->refreshed_at < REFRESH_MIN_MS)
    return;
  size_t at = cl->refresh_from % cl->nnodes;
  for (size_t k = 0; k < cl->nnodes && node_down(cl->nodes[at]); k++)
    at = (at + 1) % cl->nnodes;
  cl->refresh_from = at;
  const char *argv[2] = {"CLUSTER", "SLOTS"};
  if (kr_resp_command(cl->nodes[at]->conn, 2, argv, NULL, 0, on_slots, cl) == 0) {
    cl->refreshing = 1;
    cl->refreshed_at = t;
  }
}

static void on_timer(uv_timer_t *t)
{
  refresh(t->data, 1);
}

/* --- commands ------------------------------------------------------------------ */

static void on_cmd_reply(kr_resp *conn, int status, const redisReply *reply, void *udata);

static void on_asking(kr_resp *conn, int status, const redisReply *reply, void *udata)
{
  (void)conn, (void)status, (void)reply, (void)udata; /* "+OK": the command follows */
}

/* A command for a node that is down fails at once, unsent. */
static int refuse(kr_rcl *cl, const rnode *n)
{
  cl->stats.refused++;
  snprintf(cl->errstr, sizeof cl->errstr, "redis-cluster: node %.64s:%d is down (%.96s)",
           n->host, n->port, n->conn->errstr[0] ? n->conn->errstr : "no connection");
  return KURA_ECONN;
}

/* Send m to node (after ASKING when ask). Returns 0 or a KURA_E* code: a
 * node that is down refuses at once (KURA_ECONN, unsent). */
static int send_to(kr_rcl *cl, rlcmd *m, int node, int ask)
{
  uint64_t now = uv_now(cl->loop);
  if (now >= m->deadline) {
    snprintf(cl->errstr, sizeof cl->errstr, "redis-cluster: no node answered in time");
    return KURA_ETIMEOUT;
  }
  rnode *n = cl->nodes[node];
  if (node_down(n)) {
    refresh(cl, 0); /* a failover may have moved its slots */
    return refuse(cl, n);
  }
  if (ask) {
    const char *a[1] = {"ASKING"};
    int rc = kr_resp_command(n->conn, 1, a, NULL, m->deadline - now, on_asking, NULL);
    if (rc)
      return rc;
  }
  return kr_resp_command(n->conn, m->argc, m->argv, m->argvlen, m->deadline - now, on_cmd_reply,
                         m);
}

/* "MOVED 3999 127.0.0.1:6381" / "ASK ...": follow it; 0 when sent again. */
static int redirect(kr_rcl *cl, rlcmd *m, const char *err)
{
  int ask = strncmp(err, "ASK ", 4) == 0;
  if ((!ask && strncmp(err, "MOVED ", 6) != 0) || cl->closing || ++m->redirects > MAX_REDIRECTS)
    return -1;
  char *end;
  long slot = strtol(err + (ask ? 4 : 6), &end, 10);
  const char *addr = end + (*end == ' ');
  const char *colon = strrchr(addr, ':');
  if (slot < 0 || slot >= NSLOTS || !colon)
    return -1;
  int node = node_for(cl, addr, (size_t)(colon - addr), atoi(colon + 1));
  if (node < 0)
    return -1;
  if (ask) {
    cl->stats.ask++;
  } else {
    cl->stats.moved++;
    cl->slots[slot] = (uint16_t)node;
    refresh(cl, 1);
  }
  return send_to(cl, m, node, ask) == 0 ? 0 : -1;
}

static void on_cmd_reply(kr_resp *conn, int status, const redisReply *reply, void *udata)
{
  rlcmd *m = udata;
  kr_rcl *cl = m->cl;
  if (status == 0 && reply->type == REDIS_REPLY_ERROR) {
    if (redirect(cl, m, reply->str) == 0)
      return;
    if (strncmp(reply->str, "CLUSTERDOWN", 11) == 0) {
      cl->stats.clusterdown++;
      refresh(cl, 0);
    }
  }
  if (status == KURA_ECONN)
    refresh(cl, 0); /* a failover may have moved the slots */
  m->cb(conn, status, reply, m->udata);
  free(m);
}

static rlcmd *rlcmd_new(int argc, const char **argv, const size_t *argvlen)
{
  size_t bytes = sizeof(rlcmd) + (size_t)argc * (sizeof(char *) + sizeof(size_t));
  for (int i = 0; i < argc; i++)
    bytes += argvlen ? argvlen[i] : strlen(argv[i]);
  rlcmd *m = malloc(bytes);
  if (!m)
    return NULL;
  m->argc = argc;
  m->argv = (const char **)(m + 1);
  m->argvlen = (size_t *)(m->argv + argc);
  char *at = (char *)(m->argvlen + argc);
  for (int i = 0; i < argc; i++) {
    m->argvlen[i] = argvlen ? argvlen[i] : strlen(argv[i]);
    m->argv[i] = memcpy(at, argv[i], m->argvlen[i]);
    at += m->argvlen[i];
  }
  return m;
}

/* The node a command goes to: its key's slot's owner, or (key_arg < 0) a
 * node that is not down. */
static int node_of(kr_rcl *cl, const rlcmd *m)
{
  if (m->key_arg >= 0)
    return cl->slots[kr_redis_slot(m->argv[m->key_arg], m->argvlen[m->key_arg])];
  for (size_t i = 0; i < cl->nnodes; i++)
    if (!node_down(cl->nodes[i]))
      return (int)i;
  return 0;
}

/* The commands that waited for the first map go out (or fail unsent, with
 * conn NULL, when there is still no map); from the loop. */
static void route_waiting(kr_rcl *cl)
{
  rlcmd *list = cl->waiting;
  cl->waiting = NULL;
  while (list) {
    rlcmd *m = list;
    list = m->next;
    int rc = KURA_ECANCELLED;
    if (!cl->closing && cl->nmasters)
      rc = send_to(cl, m, node_of(cl, m), 0);
    else if (!cl->closing)
      rc = KURA_ECONN, snprintf(cl->errstr, sizeof cl->errstr, "redis-cluster: no seed "
                                "answered CLUSTER SLOTS: the slot map is not known");
    if (rc) {
      m->cb(NULL, rc, NULL, m->udata);
      free(m);
    }
  }
}

static int submit(kr_rcl *cl, int argc, const char **argv, const size_t *argvlen, int key_arg,
                  uint64_t timeout_ms, kr_resp_cb cb, void *udata)
{
  if (cl->closing)
    return KURA_ECANCELLED;
  if (argc <= 0 || key_arg >= argc || !cb)
    return KURA_EINVAL;
  rlcmd *m = rlcmd_new(argc, argv, argvlen);
  if (!m)
    return KURA_ENOMEM;
  m->cl = cl;
  m->cb = cb;
  m->udata = udata;
  m->redirects = 0;
  m->key_arg = key_arg;
  uv_update_time(cl->loop);
  m->deadline = uv_now(cl->loop) + (timeout_ms ? timeout_ms : cl->base.timeout_ms);
  if (!cl->nmasters && key_arg >= 0) { /* wait for the map */
    m->next = cl->waiting;
    cl->waiting = m;
    refresh(cl, 1);
    return 0;
  }
  int rc = send_to(cl, m, node_of(cl, m), 0);
  if (rc)
    free(m);
  return rc;
}

int kr_rcl_command(kr_rcl *cl, int argc, const char **argv, const size_t *argvlen,
                   int key_arg, uint64_t timeout_ms, kr_resp_cb cb, void *udata)
{
  if (key_arg < 0)
    return KURA_EINVAL;
  return submit(cl, argc, argv, argvlen, key_arg, timeout_ms, cb, udata);
}

int kr_rcl_command_any(kr_rcl *cl, int argc, const char **argv, const size_t *argvlen,
                       uint64_t timeout_ms, kr_resp_cb cb, void *udata)
{
  return submit(cl, argc, argv, argvlen, -1, timeout_ms, cb, udata);
}

size_t kr_rcl_masters(const kr_rcl *cl)
{
  return cl->nmasters;
}

long kr_rcl_slot_master(const kr_rcl *cl, unsigned slot)
{
  for (size_t i = 0; slot < NSLOTS && i < cl->nmasters; i++)
    if (cl->masters[i] == cl->slots[slot])
      return (long)i;
  return -1;
}

int kr_rcl_command_master(kr_rcl *cl, size_t i, int argc, const char **argv,
                          const size_t *argvlen, uint64_t timeout_ms, kr_resp_cb cb,
                          void *udata)
{
  if (cl->closing)
    return KURA_ECANCELLED;
  if (i >= cl->nmasters)
    return KURA_EINVAL;
  rnode *n = cl->nodes[cl->masters[i]];
  if (node_down(n))
    return refuse(cl, n);
  return kr_resp_command(n->conn, argc, argv, argvlen, timeout_ms, cb, udata);
}

kr_rcl_stats kr_rcl_get_stats(const kr_rcl *cl)
{
  return cl->stats;
}

const char *kr_rcl_errstr(const kr_rcl *cl)
{
  return cl->errstr;
}

/* --- life cycle ------------------------------------------------------------------ */

int kr_rcl_open(uv_loop_t *loop, const kr_resp_opts *opts, size_t nseeds, kr_rcl **out)
{
  if (!loop || !opts || nseeds == 0)
    return KURA_EINVAL;
  kr_rcl *cl = calloc(1, sizeof *cl);
  if (!cl)
    return KURA_ENOMEM;
  cl->loop = loop;
  cl->base = opts[0];
  if ((opts[0].user && strlen(opts[0].user) >= sizeof cl->user) ||
      (opts[0].password && strlen(opts[0].password) >= sizeof cl->pass)) {
    free(cl);
    return KURA_EINVAL;
  }
  if (opts[0].user)
    cl->base.user = strcpy(cl->user, opts[0].user);
  if (opts[0].password)
    cl->base.password = strcpy(cl->pass, opts[0].password);
  if (!cl->base.timeout_ms)
    cl->base.timeout_ms = 1000;
  if (!cl->base.backoff_max_ms || cl->base.backoff_max_ms > PROBE_MAX_MS)
    cl->base.backoff_max_ms = PROBE_MAX_MS;
  cl->base.db = 0;
  for (size_t i = 0; i < nseeds; i++)
    if (opts[i].host)
      node_for(cl, opts[i].host, strlen(opts[i].host), opts[i].port);
  if (cl->nnodes == 0) {
    memset(cl->pass, 0, sizeof cl->pass);
    free(cl);
    return KURA_EINVAL;
  }
  uv_timer_init(loop, &cl->timer);
  cl->timer.data = cl;
  uv_timer_start(&cl->timer, on_timer, REFRESH_EVERY_MS, REFRESH_EVERY_MS);
  uv_unref((uv_handle_t *)&cl->timer); /* it does not keep the loop alive */
  cl->open_handles++;
  refresh(cl, 1);
  *out = cl;
  return 0;
}

void kr_rcl_close(kr_rcl *cl, void (*cb)(void *udata), void *udata)
{
  if (cl->closing)
    return;
  cl->closing = 1;
  cl->close_cb = cb;
  cl->close_udata = udata;
  route_waiting(cl); /* fails them: closing */
  size_t n = cl->nnodes; /* no node is added once closing */
  uv_close((uv_handle_t *)&cl->timer, on_timer_closed);
  for (size_t i = 0; i < n; i++)
    kr_resp_close(cl->nodes[i]->conn, on_node_closed, cl);
}
