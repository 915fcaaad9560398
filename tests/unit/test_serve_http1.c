/* kura serve's HTTP/1.1 side and Momento's HTTP API, in one process
 * (tests/unit/serve_peer.h): pipelining, chunked bodies, 100-continue,
 * binary keys in base64, what the parser refuses (and that it closes then),
 * and the token over HTTP/1.1 and gRPC. */
#include "ktest.h"
#include "serve_peer.h"

/* --- HTTP/1.1 and the HTTP API --------------------------------------------------------- */

typedef struct want {
  peer *p;
  int n; /* responses */
} want;

/* Responses received so far (status lines; a 100 Continue counts too). */
static int responses(const peer *p)
{
  int n = 0;
  for (size_t i = 0; p->in && i + 9 <= p->inlen; i++)
    n += memcmp(p->in + i, "HTTP/1.1 ", 9) == 0;
  return n;
}

static int got_responses(void *arg)
{
  want *w = arg;
  return responses(w->p) >= w->n || w->p->eof;
}

/* The status of the k-th response (0-based) and, in *body, where it starts. */
static int status_of(const peer *p, int k, const char **rest)
{
  int n = 0;
  for (size_t i = 0; i + 12 <= p->inlen; i++) {
    if (memcmp(p->in + i, "HTTP/1.1 ", 9) != 0 || n++ != k)
      continue;
    if (rest)
      *rest = (const char *)p->in + i;
    return atoi((const char *)p->in + i + 9);
  }
  return -1;
}

/* Sends `req` on a fresh connection; the status of the first response, and
 * whether the server closed the connection. */
static int one_request(fx *f, const char *req, size_t len, int *closed, char *text, size_t cap)
{
  peer p;
  if (peer_open(&p, f, 0, 0, 0) != 0)
    return -1;
  peer_write(&p, req, len);
  want w = {&p, 1};
  run_until(f, got_responses, &w, 5000);
  run_until(f, peer_eof, &p, 200);
  int st = status_of(&p, 0, NULL);
  if (closed)
    *closed = p.eof;
  if (text)
    snprintf(text, cap, "%s", p.in ? (const char *)p.in : "");
  peer_close(&p);
  return st;
}

#define REQ(s) s, sizeof(s) - 1

KTEST(http1_api)
{
  fx f;
  peer p;
  KCHECK(fx_open(&f, NULL) == 0);
  KCHECK(peer_open(&p, &f, 0, 0, 0) == 0);
  static const char pipelined[] =
    "PUT /cache/c?key=a%20b&ttl_seconds=10 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    "GET /cache/c?key=a+b HTTP/1.1\r\nHost: x\r\n\r\n"
    "DELETE /cache/c?key=a%20b HTTP/1.1\r\nHost: x\r\n\r\n"
    "GET /cache/c?key=a+b HTTP/1.1\r\nHost: x\r\n\r\n"
    "GET /cache/nope?key=a HTTP/1.1\r\nHost: x\r\n\r\n";
  peer_write(&p, REQ(pipelined));
  want w = {&p, 5};
  run_until(&f, got_responses, &w, 5000);
  const char *r;
  KCHECK_EQ(status_of(&p, 0, NULL), 204);
  KCHECK_EQ(status_of(&p, 1, &r), 200);
  KCHECK(strstr(r, "\r\n\r\nabc") != NULL);
  KCHECK_EQ(status_of(&p, 2, NULL), 204);
  KCHECK_EQ(status_of(&p, 3, &r), 404);
  KCHECK(strstr(r, "Key not found") != NULL);
  KCHECK_EQ(status_of(&p, 4, &r), 404);
  KCHECK(strstr(r, "Cache not found") != NULL);
  KCHECK(!p.eof); /* keep-alive */

  /* A chunked body, a binary key in both base64 alphabets. */
  static const char chunked[] =
    "PUT /cache/c?key_base64=AAEC%2Fw%3D%3D&ttl_seconds=5 HTTP/1.1\r\nHost: x\r\n"
    "Transfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n2;ext=1\r\n12\r\n0\r\n\r\n"
    "GET /cache/c?key_base64=AAEC_w HTTP/1.1\r\nHost: x\r\n\r\n";
  peer_write(&p, REQ(chunked));
  w.n = 7;
  run_until(&f, got_responses, &w, 5000);
  KCHECK_EQ(status_of(&p, 5, NULL), 204);
  KCHECK_EQ(status_of(&p, 6, &r), 200);
  KCHECK(strstr(r, "\r\n\r\nxyz12") != NULL);

  /* Expect: 100-continue: the body follows the interim answer. */
  static const char head[] = "PUT /cache/c?key=e&ttl_seconds=5 HTTP/1.1\r\nHost: x\r\n"
                             "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n";
  peer_write(&p, REQ(head));
  w.n = 8;
  run_until(&f, got_responses, &w, 5000);
  KCHECK_EQ(status_of(&p, 7, NULL), 100);
  peer_write(&p, REQ("hello"));
  w.n = 9;
  run_until(&f, got_responses, &w, 5000);
  KCHECK_EQ(status_of(&p, 8, NULL), 204);
  peer_close(&p);
  fx_close(&f);
}

KTEST(http1_errors)
{
  fx f;
  KCHECK(fx_open(&f, NULL) == 0);
  int closed;
  char text[512];
  KCHECK_EQ(one_request(&f, REQ("GET /cache/c HTTP/1.1\r\n\r\n"), &closed, NULL, 0), 400);
  KCHECK_EQ(one_request(&f, REQ("PUT /cache/c?key=k&ttl_seconds=0 HTTP/1.1\r\n"
                                "Content-Length: 0\r\n\r\n"), &closed, NULL, 0), 400);
  KCHECK_EQ(one_request(&f, REQ("PUT /cache/c?key=k&ttl_seconds=x HTTP/1.1\r\n"
                                "Content-Length: 0\r\n\r\n"), &closed, NULL, 0), 400);
  KCHECK_EQ(one_request(&f, REQ("POST /cache/c?key=k HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
                        &closed, text, sizeof text), 405);
  KCHECK(strstr(text, "allow: GET, PUT, DELETE") != NULL);
  KCHECK_EQ(one_request(&f, REQ("GET /other HTTP/1.1\r\n\r\n"), &closed, NULL, 0), 404);
  KCHECK_EQ(one_request(&f, REQ("GET /cache/c?key_base64=!! HTTP/1.1\r\n\r\n"), &closed, NULL,
                        0), 400);
  KCHECK_EQ(one_request(&f, REQ("GARBAGE\r\n\r\n"), &closed, NULL, 0), 400);
  KCHECK(closed);
  KCHECK_EQ(one_request(&f, REQ("GET / HTTP/2.0\r\n\r\n"), &closed, NULL, 0), 505);
  KCHECK_EQ(one_request(&f, REQ("PUT /cache/c?key=k HTTP/1.1\r\nContent-Length: 3\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n"), &closed, NULL, 0), 400);
  KCHECK(closed);
  KCHECK_EQ(one_request(&f, REQ("GET /cache/c?key=k HTTP/1.1\r\nFolded: a\r\n b\r\n\r\n"),
                        &closed, NULL, 0), 400);
  KCHECK_EQ(one_request(&f, REQ("PUT /cache/c?key=k HTTP/1.1\r\nContent-Length: 99999999999\r\n"
                                "\r\n"), &closed, NULL, 0), 413);
  size_t big = 200 * 1024;
  char *req = malloc(big + 64);
  int n = snprintf(req, 64, "GET /cache/c?key=k HTTP/1.1\r\nX-Pad: ");
  memset(req + n, 'p', big);
  memcpy(req + n + big, "\r\n\r\n", 4);
  KCHECK_EQ(one_request(&f, req, n + big + 4, &closed, NULL, 0), 431);
  KCHECK(closed);
  n = snprintf(req, 64, "GET /cache/c?key=");
  memset(req + n, 'k', big);
  memcpy(req + n + big, " HTTP/1.1\r\n\r\n", 13);
  KCHECK_EQ(one_request(&f, req, n + big + 13, &closed, NULL, 0), 414);
  free(req);
  KCHECK(server_alive(&f));
  fx_close(&f);
}

/* A body that would take the server past max_buffered: 503, closed. */
KTEST(http1_buffered_limit)
{
  fx f;
  kr_serve_config sc = {.max_buffered = 64 * 1024};
  KCHECK(fx_open(&f, &sc) == 0);
  size_t n = 200 * 1024;
  char *req = malloc(n + 128);
  int h = snprintf(req, 128, "PUT /cache/c?key=k&ttl_seconds=9 HTTP/1.1\r\n"
                             "Content-Length: %zu\r\n\r\n", n);
  memset(req + h, 'b', n);
  int closed;
  KCHECK_EQ(one_request(&f, req, (size_t)h + n, &closed, NULL, 0), 503);
  KCHECK(closed);
  free(req);
  KCHECK(server_alive(&f));
  fx_close(&f);
}

KTEST(http1_and_grpc_auth)
{
  fx f;
  kr_serve_config sc = {.auth_token = "tok", .auth_token_len = 3};
  KCHECK(fx_open(&f, &sc) == 0);
  KCHECK_EQ(one_request(&f, REQ("GET /cache/c?key=k HTTP/1.1\r\n\r\n"), NULL, NULL, 0), 401);
  KCHECK_EQ(one_request(&f, REQ("GET /cache/c?key=k&token=tok HTTP/1.1\r\n\r\n"), NULL, NULL, 0),
            404);
  KCHECK_EQ(one_request(&f, REQ("GET /cache/c?key=k&token=to HTTP/1.1\r\n\r\n"), NULL, NULL, 0),
            401);
  KCHECK_EQ(one_request(&f, REQ("GET /cache/c?key=k HTTP/1.1\r\nAuthorization: tok\r\n\r\n"),
                        NULL, NULL, 0), 404);
  KCHECK_EQ(one_request(&f, REQ("GET /cache/c?key=k HTTP/1.1\r\nAuthorization: tokk\r\n\r\n"),
                        NULL, NULL, 0), 401);
  peer p;
  KCHECK(peer_open(&p, &f, 1, 0, 0) == 0);
  sres *r = start_get(&p, "k", NULL, 0);
  wait_stream(&p, r);
  KCHECK_EQ(r->grpc_status, 16); /* UNAUTHENTICATED */
  nghttp2_nv auth = NV("authorization", "tok");
  r = start_get(&p, "k", &auth, 1);
  wait_stream(&p, r);
  KCHECK_EQ(r->grpc_status, 0);
  peer_close(&p);
  fx_close(&f);
}

KTEST_MAIN(KENTRY(http1_api), KENTRY(http1_errors), KENTRY(http1_buffered_limit),
           KENTRY(http1_and_grpc_auth))
