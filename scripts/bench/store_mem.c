/* Memory per item of the embedded store, beside Redis (and memcached).
 *
 * Loads N items (16-byte keys, 32-byte values, each with a TTL) into a fresh
 * store and reports the process RSS growth per item and the store's own
 * accounting per item. Keys are generated on the fly from a counter so that
 * no key array counts in the RSS. With --redis PORT (or --memcached PORT) the
 * same items are loaded into that server, which the caller has started empty
 * (scripts/bench/store.sh does), and its memory growth is printed beside.
 *
 * Lines starting with "RESULT " are for scripts/bench/store.sh. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"
#include "core/store/store.h"

#define PAYLOAD (BU_KEY_LEN + BU_VAL_LEN)

typedef struct opts {
  uint64_t items;
  uint64_t ttl_s;
  int redis_port;     /* 0 = skip */
  int memcached_port; /* 0 = skip */
} opts;

static void usage(FILE *f) {
  fprintf(f,
          "usage: store_mem [--items N] [--ttl S] [--redis PORT] [--memcached PORT]\n"
          "Loads N (default 1000000) items of 16-byte keys and 32-byte values with a\n"
          "TTL of S seconds (default 3600) into a fresh kura store and prints RSS\n"
          "growth and accounted bytes per item. With --redis/--memcached the same\n"
          "items go to an empty server on 127.0.0.1:PORT, measured beside.\n");
}

static int parse_opts(int argc, char **argv, opts *o) {
  *o = (opts){.items = 1000000, .ttl_s = 3600};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); exit(0); }
    if (!v) { usage(stderr); return -1; }
    if (!strcmp(a, "--items")) o->items = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--ttl")) o->ttl_s = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--redis")) o->redis_port = atoi(v);
    else if (!strcmp(a, "--memcached")) o->memcached_port = atoi(v);
    else { usage(stderr); return -1; }
    i++;
  }
  return o->items ? 0 : -1;
}

/* --- kura ------------------------------------------------------------------ */

static int load_kura(kr_cache *c, uint64_t n, uint64_t ttl_ms) {
  char key[BU_KEY_LEN], val[BU_VAL_LEN];
  for (uint64_t i = 0; i < n; i++) {
    bu_key(key, i);
    bu_val(val, i);
    int rc = kr_store_set(c, key, sizeof key, val, sizeof val, ttl_ms);
    if (rc < 0) {
      fprintf(stderr, "kr_store_set: %s\n", kura_strerror(rc));
      return -1;
    }
  }
  return 0;
}

static int measure_kura(const opts *o) {
  kr_store *s = NULL;
  kr_cache *c = NULL;
  /* Measured before the store exists, so that memory it sets up front (an
   * index sized in advance, say) counts too. */
  uint64_t rss0 = bu_rss();
  if (kr_store_new(&s) < 0 || kr_store_create_cache(s, "bench", 5) < 0 ||
      kr_store_cache(s, "bench", 5, &c) < 0) {
    fprintf(stderr, "store_mem: cannot create the store\n");
    return -1;
  }
  double t0 = bu_now();
  int rc = load_kura(c, o->items, o->ttl_s * 1000);
  double secs = bu_now() - t0;
  uint64_t rss1 = bu_rss();
  kr_store_stats st;
  kr_store_stats_get(s, &st);
  double n = (double)o->items;
  double rss_per = ((double)rss1 - (double)rss0) / n;
  double acc_per = (double)st.bytes / n;
  printf("kura:  %llu items (store counts %llu) loaded in %.2f s\n",
         (unsigned long long)o->items, (unsigned long long)st.items, secs);
  printf("kura:  RSS growth %.1f B/item, accounted %.1f B/item "
         "(payload %d B, so overhead %.1f B/item by RSS)\n",
         rss_per, acc_per, PAYLOAD, rss_per - PAYLOAD);
  printf("RESULT kura_rss_per_item %.1f\n", rss_per);
  printf("RESULT kura_acct_per_item %.1f\n", acc_per);
  printf("RESULT kura_overhead_per_item %.1f\n", rss_per - PAYLOAD);
  printf("RESULT kura_items %llu\n", (unsigned long long)st.items);
  kr_cache_release(c);
  kr_store_release(s);
  return rc;
}

/* --- Redis, through redis-cli ---------------------------------------------- */

/* The value of `field` in the output of `redis-cli ... cmd`, or -1. */
static double redis_field(int port, const char *cmd, const char *field) {
  char line[512];
  snprintf(line, sizeof line, "redis-cli -h 127.0.0.1 -p %d %s", port, cmd);
  FILE *p = popen(line, "r");
  if (!p) return -1;
  double v = -1;
  size_t fl = strlen(field);
  while (fgets(line, sizeof line, p)) {
    if (!strncmp(line, field, fl) && line[fl] == ':') v = strtod(line + fl + 1, NULL);
  }
  pclose(p);
  return v;
}

/* The number of keys in the server (DBSIZE), or -1. */
static double redis_dbsize(int port) {
  char line[128];
  snprintf(line, sizeof line, "redis-cli -h 127.0.0.1 -p %d dbsize", port);
  FILE *p = popen(line, "r");
  if (!p) return -1;
  double v = fgets(line, sizeof line, p) ? strtod(line, NULL) : -1;
  pclose(p);
  return v;
}

/* Streams SET key val EX ttl for every item into redis-cli --pipe. */
static int load_redis(int port, uint64_t n, uint64_t ttl_s) {
  char cmd[256], key[BU_KEY_LEN], val[BU_VAL_LEN], ttl[24];
  snprintf(cmd, sizeof cmd, "redis-cli -h 127.0.0.1 -p %d --pipe | tail -n 1 >&2", port);
  int tl = snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)ttl_s);
  fflush(stdout);
  FILE *p = popen(cmd, "w");
  if (!p) return -1;
  for (uint64_t i = 0; i < n; i++) {
    bu_key(key, i);
    bu_val(val, i);
    fprintf(p, "*5\r\n$3\r\nSET\r\n$%d\r\n%.*s\r\n$%d\r\n%.*s\r\n$2\r\nEX\r\n$%d\r\n%s\r\n",
            BU_KEY_LEN, BU_KEY_LEN, key, BU_VAL_LEN, BU_VAL_LEN, val, tl, ttl);
  }
  return pclose(p) == 0 ? 0 : -1;
}

static int measure_redis(const opts *o) {
  int port = o->redis_port;
  double used0 = redis_field(port, "info memory", "used_memory");
  double rss0 = redis_field(port, "info memory", "used_memory_rss");
  if (used0 < 0) {
    fprintf(stderr, "store_mem: no Redis on 127.0.0.1:%d\n", port);
    return -1;
  }
  double t0 = bu_now();
  if (load_redis(port, o->items, o->ttl_s) < 0) return -1;
  double secs = bu_now() - t0;
  usleep(300000); /* Redis samples its RSS from its cron (every 100 ms). */
  double keys = redis_dbsize(port);
  double used1 = redis_field(port, "info memory", "used_memory");
  double rss1 = redis_field(port, "info memory", "used_memory_rss");
  double n = (double)o->items;
  printf("redis: %llu items sent, %.0f keys held, in %.2f s (redis-cli --pipe)\n",
         (unsigned long long)o->items, keys, secs);
  printf("redis: used_memory growth %.1f B/item, RSS growth %.1f B/item\n",
         (used1 - used0) / n, (rss1 - rss0) / n);
  printf("RESULT redis_used_per_item %.1f\n", (used1 - used0) / n);
  printf("RESULT redis_rss_per_item %.1f\n", (rss1 - rss0) / n);
  return 0;
}

/* --- memcached, through a small pipelined text-protocol client ------------- */

static int tcp_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int write_all(int fd, const char *b, size_t n) {
  while (n) {
    ssize_t w = write(fd, b, n);
    if (w <= 0) return -1;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads a "stats" reply and returns STAT `name`, or -1. */
static double mc_stat(int fd, const char *name) {
  char buf[16384];
  size_t len = 0;
  if (write_all(fd, "stats\r\n", 7) < 0) return -1;
  while (len < sizeof buf - 1) {
    ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
    if (r <= 0) return -1;
    len += (size_t)r;
    buf[len] = 0;
    if (strstr(buf, "END\r\n")) break;
  }
  char pat[64];
  snprintf(pat, sizeof pat, "STAT %s ", name);
  char *p = strstr(buf, pat);
  return p ? strtod(p + strlen(pat), NULL) : -1;
}

static double pid_rss(long pid) {
  char path[64];
  unsigned long size, resident;
  snprintf(path, sizeof path, "/proc/%ld/statm", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int ok = fscanf(f, "%lu %lu", &size, &resident) == 2;
  fclose(f);
  return ok ? (double)resident * (double)sysconf(_SC_PAGESIZE) : -1;
}

/* Sends "set ... noreply" for every item in 64 KiB writes. */
static int load_memcached(int fd, uint64_t n, uint64_t ttl_s) {
  char buf[65536], key[BU_KEY_LEN], val[BU_VAL_LEN];
  size_t len = 0;
  for (uint64_t i = 0; i < n; i++) {
    bu_key(key, i);
    bu_val(val, i);
    len += (size_t)snprintf(buf + len, sizeof buf - len,
                            "set %.*s 0 %llu %d noreply\r\n%.*s\r\n", BU_KEY_LEN, key,
                            (unsigned long long)ttl_s, BU_VAL_LEN, BU_VAL_LEN, val);
    if (len > sizeof buf - 256 || i + 1 == n) {
      if (write_all(fd, buf, len) < 0) return -1;
      len = 0;
    }
  }
  return 0;
}

static int measure_memcached(const opts *o) {
  int fd = tcp_connect(o->memcached_port);
  if (fd < 0) {
    fprintf(stderr, "store_mem: no memcached on 127.0.0.1:%d\n", o->memcached_port);
    return -1;
  }
  long pid = (long)mc_stat(fd, "pid");
  double bytes0 = mc_stat(fd, "bytes"), rss0 = pid_rss(pid);
  int rc = load_memcached(fd, o->items, o->ttl_s);
  double items = mc_stat(fd, "curr_items"); /* also waits for the sets */
  double bytes1 = mc_stat(fd, "bytes"), rss1 = pid_rss(pid);
  close(fd);
  if (rc < 0 || items < 0) return -1;
  double n = (double)o->items;
  printf("memcached: %.0f items; item bytes %.1f B/item, RSS growth %.1f B/item\n",
         items, (bytes1 - bytes0) / n, (rss1 - rss0) / n);
  printf("RESULT memcached_bytes_per_item %.1f\n", (bytes1 - bytes0) / n);
  printf("RESULT memcached_rss_per_item %.1f\n", (rss1 - rss0) / n);
  return 0;
}

int main(int argc, char **argv) {
  opts o;
  if (parse_opts(argc, argv, &o) < 0) return 2;
  int rc = measure_kura(&o);
  if (rc == 0 && o.redis_port) rc = measure_redis(&o);
  if (rc == 0 && o.memcached_port) rc = measure_memcached(&o);
  return rc == 0 ? 0 : 1;
}
