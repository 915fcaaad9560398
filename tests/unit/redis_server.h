/* Test helper: start and stop a real redis-server on a free loopback port
 * (fork/exec), for tests/unit/test_resp.c and test_redis_backend.c. A test
 * FAILS with a clear message when redis-server is not installed. */
#ifndef KURA_TEST_REDIS_SERVER_H
#define KURA_TEST_REDIS_SERVER_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

struct server {
  pid_t pid;
  int port;
};

static int have_redis_server(void)
{
  const char *path = getenv("PATH");
  char buf[4096];
  while (path && *path) {
    const char *end = strchr(path, ':');
    size_t n = end ? (size_t)(end - path) : strlen(path);
    snprintf(buf, sizeof buf, "%.*s/redis-server", (int)n, path);
    if (access(buf, X_OK) == 0)
      return 1;
    path = end ? end + 1 : NULL;
  }
  fprintf(stderr, "  redis-server not found in PATH: install it (apt-get install "
                  "redis-server; scripts/test does this)\n");
  return 0;
}

static int free_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

static int port_accepts(int port)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (fd >= 0)
    close(fd);
  return ok;
}

/* Start redis-server on s->port (a free one if 0) with an optional
 * --requirepass; wait until it accepts connections. */
static int server_start(struct server *s, const char *password)
{
  if (!have_redis_server())
    return -1;
  if (s->port == 0 && (s->port = free_port()) < 0)
    return -1;
  char port[16];
  snprintf(port, sizeof port, "%d", s->port);
  const char *argv[16] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", "/tmp", "--loglevel", "warning"};
  int n = 13;
  if (password) {
    argv[n++] = "--requirepass";
    argv[n++] = password;
  }
  argv[n] = NULL;
  s->pid = fork();
  if (s->pid < 0)
    return -1;
  if (s->pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    execvp("redis-server", (char *const *)argv);
    _exit(127);
  }
  for (int i = 0; i < 500; i++) {
    if (port_accepts(s->port))
      return 0;
    if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
      fprintf(stderr, "  redis-server exited at start (port %d)\n", s->port);
      s->pid = 0;
      return -1;
    }
    usleep(20000);
  }
  return -1;
}

static void server_stop(struct server *s, int sig)
{
  if (s->pid > 0) {
    kill(s->pid, sig);
    waitpid(s->pid, NULL, 0);
  }
  s->pid = 0;
}

/* --- loop helpers ---------------------------------------------------------- */

static void on_guard(uv_timer_t *t)
{
  *(int *)t->data = 1;
}

/* Run the loop until *flag is set; 0, or -1 after 15 s (a hang). */
static int run_until(uv_loop_t *loop, const int *flag)
{
  int expired = 0;
  uv_timer_t guard;
  uv_timer_init(loop, &guard);
  guard.data = &expired;
  uv_timer_start(&guard, on_guard, 15000, 0);
  while (!*flag && !expired)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return *flag ? 0 : -1;
}

#endif
