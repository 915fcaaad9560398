/* Tests of the Redis Cluster pieces that need no server: the key slot
 * (CRC16-XMODEM with hash tags, checked against values from
 * `redis-cli cluster keyslot`) and the parsing of redis:// and
 * redis-cluster:// URLs. Routing, MOVED and ASK against a real cluster are
 * tested by tests/redis/test_redis_cluster.sh, the semantics by the
 * conformance suite (redis-cluster backend). */
#include <string.h>

#include "core/backends/backend_redis.h"
#include "ktest.h"

static unsigned slot_of(const char *key)
{
  return kr_redis_slot(key, strlen(key));
}

KTEST(key_slots)
{
  KCHECK_EQ(slot_of("123456789"), 12739u); /* CRC16-XMODEM check value 0x31C3 */
  KCHECK_EQ(slot_of("foo"), 12182u);
  KCHECK_EQ(slot_of("bar"), 5061u);
  KCHECK_EQ(slot_of("hello"), 866u);
  KCHECK_EQ(slot_of(""), 0u);
  /* Hash tags: the first {...} that is not empty. */
  KCHECK_EQ(slot_of("{user1000}.following"), 3443u);
  KCHECK_EQ(slot_of("{user1000}.followers"), 3443u);
  KCHECK_EQ(slot_of("foo{}{bar}"), 8363u);    /* empty tag: the whole key */
  KCHECK_EQ(slot_of("foo{{bar}}zap"), 4015u); /* the tag is "{bar" */
  KCHECK_EQ(slot_of("foo{bar}{zap}"), 5061u); /* the tag is "bar" */
  KCHECK_EQ(slot_of("kura:{caches}"), slot_of("caches"));
  KCHECK_EQ(slot_of("kura:{caches}"), 10394u);
  KCHECK_EQ(slot_of("no{close"), kr_redis_slot("no{close", 8));
  const char bin[] = {'a', 0, '{', 'x', '}', 0};
  KCHECK_EQ(kr_redis_slot(bin, 5), slot_of("x"));
}

KTEST(cluster_urls)
{
  kr_rurl u;
  KCHECK(kr_rurl_parse("redis-cluster://127.0.0.1:7000,127.0.0.1:7001,[::1]:7002", &u) == 0);
  KCHECK_EQ(u.nhosts, 3u);
  KCHECK(strcmp(u.host[0], "127.0.0.1") == 0 && u.port[0] == 7000);
  KCHECK(strcmp(u.host[1], "127.0.0.1") == 0 && u.port[1] == 7001);
  KCHECK(strcmp(u.host[2], "::1") == 0 && u.port[2] == 7002);
  KCHECK(!u.has_pass && !u.has_user);
  KCHECK(kr_rurl_parse("redis-cluster://al%69ce:p%40ss@h1,h2:7001/", &u) == 0);
  KCHECK(u.has_user && strcmp(u.user, "alice") == 0);
  KCHECK(u.has_pass && strcmp(u.pass, "p@ss") == 0);
  KCHECK(u.nhosts == 2 && u.port[0] == 6379 && u.port[1] == 7001);
  KCHECK(kr_rurl_parse("redis-cluster://:secret@h:1", &u) == 0);
  KCHECK(!u.has_user && u.has_pass && strcmp(u.pass, "secret") == 0);
  KCHECK(kr_rurl_parse("redis-cluster://", &u) != 0);
  KCHECK(kr_rurl_parse("redis-cluster://h:1,", &u) != 0);
  KCHECK(kr_rurl_parse("redis-cluster://h:0", &u) != 0);
  KCHECK(kr_rurl_parse("redis-cluster://h:1/3", &u) != 0); /* no db in a cluster */
  KCHECK(kr_rurl_parse("redis-cluster://h:1:2", &u) != 0);
}

KTEST(single_urls)
{
  kr_rurl u;
  KCHECK(kr_rurl_parse("redis://127.0.0.1:6380/2", &u) == 0);
  KCHECK(u.nhosts == 1 && u.port[0] == 6380 && u.db == 2);
  KCHECK(kr_rurl_parse("redis://localhost", &u) == 0);
  KCHECK(strcmp(u.host[0], "localhost") == 0 && u.port[0] == 6379 && u.db == 0);
  KCHECK(kr_rurl_parse("redis://u:p/w@h:1", &u) == 0); /* the last '@' ends the password */
  KCHECK(strcmp(u.pass, "p/w") == 0 && strcmp(u.host[0], "h") == 0);
  KCHECK(kr_rurl_parse("redis://h:1,h:2", &u) != 0);
  KCHECK(kr_rurl_parse("redis://h:1/x", &u) != 0);
  KCHECK(kr_rurl_parse("http://h:1", &u) != 0);
}

KTEST_MAIN(KENTRY(key_slots), KENTRY(cluster_urls), KENTRY(single_urls))
