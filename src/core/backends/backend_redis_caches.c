/* The cache management calls of the Redis backends (see backend_redis.h
 * for the layout and what create_cache and delete_cache guarantee):
 *   create_cache  single server: one script (list entry and marker);
 *                 cluster: SADD, then SET of the marker in every slot
 *   delete_cache  single server: one script, then the scan; cluster:
 *                 SISMEMBER, DEL of every marker, SREM, then the scan
 *   flush_cache   the cache check, then the scan
 *   list_caches   SMEMBERS of the list
 * The scan removes the items incrementally: SCAN with a MATCH on the
 * prefix (on every master of a cluster, one after the other), COUNT
 * bounded, UNLINK of each batch, one batch per reply, so no loop turn does
 * unbounded work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backends/backend_redis.h"

#define SCAN_COUNT "512"

static void send_markers(kr_rop *o);
static int script_marker(kr_rop *o, int s);

int kr_rop_send_cache_op(kr_rop *o)
{
  switch (o->req->op) {
  case KR_OP_CREATE_CACHE:
    if (o->b->cl)
      return kr_rop_send_list_cmd(o, "SADD");
    kr_rbe_chk_forget(o->b);
    return script_marker(o, KR_RS_CREATE);
  case KR_OP_DELETE_CACHE:
    if (o->b->cl)
      return kr_rop_send_list_cmd(o, "SISMEMBER");
    kr_rbe_chk_forget(o->b);
    return script_marker(o, KR_RS_DROP);
  case KR_OP_FLUSH_CACHE: return kr_rop_send_check(o);
  default: { /* list_caches */
    kr_rargs a;
    kr_rargs_init(&a, 2, 0); /* inline: cannot fail */
    kr_rargs_add(&a, "SMEMBERS", 8);
    kr_rargs_add(&a, o->b->caches_key, strlen(o->b->caches_key));
    return kr_rop_send_args(o, &a, 1);
  }
  }
}

/* The markers of a cluster's create_cache (SET) and delete_cache (DEL).
 *
 * Fast: scripts sent to each master, EVAL with no keys and up to MARKS_CHUNK
 * of that master's markers as arguments (its slots in the slot map). A
 * script without a shebang may touch keys of several slots as long as they
 * are the node's own, so one command writes 512 markers instead of 512
 * commands; the chunk keeps each script short (about a millisecond of the
 * node's time, during which it serves no one else). Slow, and always right:
 * one command per slot, each routed to its slot's owner and redirected like
 * any other. The slow way runs when the map is not known yet, and after any
 * script failed (its node is down, a slot moved and the script met a key
 * that is not the node's): again for every slot, as SET and DEL may run
 * twice. */
#define MARKS_SET "for i=1,#ARGV do redis.call('SET',ARGV[i],'1') end return #ARGV"
#define MARKS_DEL "for i=1,#ARGV do redis.call('DEL',ARGV[i]) end return #ARGV"
#define MARKS_CHUNK 512

static int creating(const kr_rop *o)
{
  return o->req->op == KR_OP_CREATE_CACHE;
}

/* One command per slot. */
static void send_markers_each(kr_rop *o)
{
  const char *cmd = creating(o) ? "SET" : "DEL";
  for (unsigned slot = 0; slot < KR_REDIS_SLOTS && !o->err; slot++) {
    kr_rargs a;
    int rc = kr_rargs_init(&a, 3, KR_RMARKER_BYTES(o->req));
    if (!rc) {
      kr_rargs_add(&a, cmd, strlen(cmd));
      kr_rargs_slot_marker(&a, o->b->slot_tags, o->req, slot);
      if (creating(o))
        kr_rargs_add(&a, "1", 1);
      rc = kr_rop_send(o, &a, 1, &o->mark);
    }
    if (rc)
      kr_rop_send_failed(o, rc);
    else
      o->marks_left++;
  }
}

/* A script to master i for the markers of n of its slots. */
static int send_marks_script(kr_rop *o, size_t i, const unsigned *slots, size_t n)
{
  const char *body = creating(o) ? MARKS_SET : MARKS_DEL;
  kr_rargs a;
  if (kr_rargs_init(&a, 3 + n, n * KR_RMARKER_BYTES(o->req)))
    return KURA_ENOMEM;
  kr_rargs_add(&a, "EVAL", 4);
  kr_rargs_add(&a, body, strlen(body));
  kr_rargs_add(&a, "0", 1);
  for (size_t k = 0; k < n; k++)
    kr_rargs_slot_marker(&a, o->b->slot_tags, o->req, slots[k]);
  int rc = kr_rcl_command_master(o->b->cl, i, a.n, a.v, a.l, o->b->timeout_ms,
                                 kr_rop_on_reply, &o->marks);
  kr_rargs_free(&a);
  if (!rc)
    o->pending++, o->marks_left++;
  return rc;
}

/* The scripts of master i; a script not sent sends its markers the slow way. */
static void send_master_marks(kr_rop *o, size_t i)
{
  unsigned chunk[MARKS_CHUNK];
  size_t n = 0;
  for (unsigned slot = 0; slot <= KR_REDIS_SLOTS; slot++) {
    int mine = slot < KR_REDIS_SLOTS && kr_rcl_slot_master(o->b->cl, slot) == (long)i;
    if (mine)
      chunk[n++] = slot;
    if (n && (n == MARKS_CHUNK || slot == KR_REDIS_SLOTS)) {
      if (send_marks_script(o, i, chunk, n))
        o->marks_redo = 1;
      n = 0;
    }
  }
}

static void send_markers(kr_rop *o)
{
  size_t nm = kr_rcl_masters(o->b->cl);
  if (!nm) { /* no map yet: the slow way */
    send_markers_each(o);
    return;
  }
  for (size_t i = 0; i < nm; i++)
    send_master_marks(o, i);
  if (!o->marks_left) /* nothing went out */
    kr_rop_marks_done(o);
}

/* Every marker write answered: again the slow way if a script failed; then
 * delete_cache goes on with SREM (command 1), then the scan. */
void kr_rop_marks_done(kr_rop *o)
{
  if (o->marks_redo && !o->err) {
    o->marks_redo = 0;
    send_markers_each(o);
    if (o->marks_left)
      return;
  }
  if (!o->err && o->req->op == KR_OP_DELETE_CACHE) {
    int rc = kr_rop_send_list_cmd(o, "SREM");
    if (rc)
      kr_rop_send_failed(o, rc);
  }
}

/* create_cache, delete_cache on a single server: the list and the marker. */
static int script_marker(kr_rop *o, int s)
{
  const kr_request *r = o->req;
  kr_rargs a;
  if (kr_rargs_init(&a, 6, 7 + r->cache_len + 24))
    return KURA_ENOMEM;
  kr_rop_script_head(o, &a, s, 1); /* single server: cannot fail */
  kr_rargs_cache_marker(&a, r);
  kr_rargs_add(&a, r->cache, r->cache_len);
  return kr_rop_send_args(o, &a, 3);
}


/* SCAN cursor MATCH kura:<len>:<cache>:* (glob characters of the name
 * escaped) to the master being scanned. */
static void scan_next(kr_rop *o)
{
  const kr_request *r = o->req;
  kr_rargs a;
  if (o->err)
    return;
  if (kr_rargs_init(&a, 6, kr_ritem_prefix_len(r) + r->cache_len + 2)) {
    kr_rop_fail(o, KURA_ENOMEM, "%s", "out of memory");
    return;
  }
  char *p = a.at;
  memcpy(p, "kura:", 5);
  size_t n = 5 + kr_rput_uint(p + 5, r->cache_len);
  p[n++] = ':';
  for (size_t i = 0; i < r->cache_len; i++) {
    char ch = r->cache[i];
    if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\')
      p[n++] = '\\';
    p[n++] = ch;
  }
  p[n++] = ':';
  p[n++] = '*';
  kr_rargs_add(&a, "SCAN", 4);
  kr_rargs_add(&a, o->cursor, strlen(o->cursor));
  kr_rargs_add(&a, "MATCH", 5);
  kr_rargs_add(&a, p, n);
  kr_rargs_add(&a, "COUNT", 5);
  kr_rargs_add(&a, SCAN_COUNT, strlen(SCAN_COUNT));
  if (kr_rop_send(o, &a, -1, &o->scan))
    kr_rop_fail(o, KURA_ECONN, "%s", "could not send SCAN");
}


/* The first SCAN, after the cache check (flush) or SREM (delete). */
void kr_rop_scan_start(kr_rop *o)
{
  o->res.outcome = KURA_HIT;
  o->node = 0;
  if (o->b->cl && kr_rcl_masters(o->b->cl) == 0) {
    kr_rop_fail(o, KURA_EUNAVAIL, "%s", "the cluster's slot map is not known");
    return;
  }
  scan_next(o);
}


/* UNLINK the keys a SCAN found: one command on a single server, one per key
 * in a cluster (the keys of one node may lie in several slots). */
static int unlink_keys(kr_rop *o, const redisReply *keys)
{
  size_t per = o->b->cl ? 1 : keys->elements;
  for (size_t at = 0; at < keys->elements; at += per) {
    kr_rargs a;
    if (kr_rargs_init(&a, per + 1, 0))
      return KURA_ENOMEM;
    kr_rargs_add(&a, "UNLINK", 6);
    for (size_t i = at; i < at + per; i++)
      kr_rargs_add(&a, keys->element[i]->str, keys->element[i]->len);
    int rc = kr_rop_send(o, &a, 1, &o->scan);
    if (rc)
      return rc;
  }
  return 0;
}


/* A SCAN reply [cursor, keys]: UNLINK the keys, continue from the cursor,
 * then with the next master. UNLINK replies (integers) need nothing. */
void kr_rop_on_scan(kr_rop *o, const redisReply *r)
{
  if (r->type == REDIS_REPLY_INTEGER)
    return;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !r->element[1] ||
      r->element[1]->type != REDIS_REPLY_ARRAY) {
    kr_rop_fail(o, KURA_EINTERNAL, "%s", "unexpected SCAN reply");
    return;
  }
  if (unlink_keys(o, r->element[1]))
    kr_rop_fail(o, KURA_ECONN, "%s", "could not send UNLINK");
  snprintf(o->cursor, sizeof o->cursor, "%.*s", (int)r->element[0]->len, r->element[0]->str);
  if (strcmp(o->cursor, "0") == 0) {
    if (!o->b->cl || ++o->node >= kr_rcl_masters(o->b->cl))
      return;
  }
  scan_next(o);
}


static int cmp_names(const void *x, const void *y)
{
  return strcmp(*(const char *const *)x, *(const char *const *)y);
}


/* SMEMBERS -> sorted names; completes here while the reply is valid. */
void kr_rop_on_list(kr_rop *o, const redisReply *r)
{
  const char **names = malloc((r->elements + 1) * sizeof *names);
  if (!names) {
    kr_rop_fail(o, KURA_ENOMEM, "%s", "out of memory");
    return;
  }
  size_t n = 0;
  for (size_t i = 0; i < r->elements; i++)
    if (r->element[i]->type == REDIS_REPLY_STRING)
      names[n++] = r->element[i]->str;
  qsort(names, n, sizeof *names, cmp_names);
  o->res.names = names;
  o->res.count = n;
  o->vals = (const void **)names; /* freed with the op */
}


/* A cluster's create_cache (SADD, then the markers) and delete_cache
 * (SISMEMBER, then the markers, then SREM and the scan). */
void kr_rop_on_cache_step(kr_rop *o, int i, long long x)
{
  if (o->req->op == KR_OP_CREATE_CACHE) {
    o->res.outcome = x > 0 ? KURA_HIT : KURA_SKIPPED;
    send_markers(o);
  } else if (i == 0) {
    if (x == 0)
      o->notfound = 1;
    else
      send_markers(o);
  } else {
    o->notfound = x == 0; /* another client's delete_cache came first */
    if (x > 0)
      kr_rop_scan_start(o);
  }
}

