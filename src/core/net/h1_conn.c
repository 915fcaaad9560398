/* HTTP/1.1 on the server's connections (h2_server.h): for the clients of
 * plain HTTP APIs (curl, fetch, libcurl without HTTP/2), on the same port
 * as HTTP/2.
 *
 * A request is parsed once its head and whole body are in the connection's
 * input buffer: request line, header fields (no obsolete line folding),
 * a body by Content-Length or chunked Transfer-Encoding (never both), with
 * "100 Continue" for clients that wait for it. Requests are answered in
 * order, one at a time: a pipelined request waits in the buffer until the
 * one before has its response. Whatever the parser refuses gets a status
 * (400, 413, 431, 501, 505) with "Connection: close", and the connection
 * closes once that is written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/net/h2_server_int.h"
#include "kura_client.h"

enum { NEED_MORE = 0, DISPATCHED = 1, REJECTED = -1 };

/* The parsed head of a request; pointers into the input buffer. */
typedef struct head {
  const char *method, *target;
  size_t mlen, tlen;
  int minor;                  /* HTTP/1.<minor> */
  size_t len;                 /* bytes of the head, blank line included */
  const char *lines;          /* the header lines */
  size_t lines_len;
  int chunked, has_length, expect_continue, close, keep_alive;
  uint64_t length;
} head;

static const char *reason(int status)
{
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 201: return "Created";
  case 204: return "No Content";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 411: return "Length Required";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 417: return "Expectation Failed";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  default: return "Status";
  }
}

/* Status line and fixed headers; the caller adds its own, then "\r\n". */
static int put_status(kr_h2s_buf *o, int status, size_t body_len, int close)
{
  char line[160];
  int n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, reason(status));
  int rc = kr_h2s_buf_add(o, line, (size_t)n);
  if (!rc && status != 204 && status >= 200) {
    n = snprintf(line, sizeof line, "content-length: %zu\r\n", body_len);
    rc = kr_h2s_buf_add(o, line, (size_t)n);
  }
  if (!rc && close)
    rc = kr_h2s_buf_add(o, "connection: close\r\n", 19);
  return rc;
}

void kr_h2s_h1_reject(kr_h2s_conn *c, int status, const char *why)
{
  size_t wl = strlen(why);
  int rc = put_status(&c->out, status, wl, 1);
  if (!rc)
    rc = kr_h2s_buf_add(&c->out, "content-type: text/plain\r\n\r\n", 28);
  if (!rc)
    kr_h2s_buf_add(&c->out, why, wl);
  if (c->in.len) /* what follows is not read any more */
    c->in.len = 0;
  c->want_close = 1;
}

int kr_h2s_h1_respond(kr_h2s_rq *r, const kr_h2s_response *res)
{
  kr_h2s_conn *c = r->c;
  kr_h2s_buf *o = &c->out;
  int rc = put_status(o, res->status, res->body_len, c->h1_close);
  for (size_t i = 0; !rc && i < res->nheaders; i++) {
    const kr_h2s_header *h = &res->headers[i];
    if ((rc = kr_h2s_buf_add(o, h->name, h->nlen)) == 0 &&
        (rc = kr_h2s_buf_add(o, ": ", 2)) == 0 && (rc = kr_h2s_buf_add(o, h->value, h->vlen)) == 0)
      rc = kr_h2s_buf_add(o, "\r\n", 2);
  }
  if (!rc)
    rc = kr_h2s_buf_add(o, "\r\n", 2);
  if (!rc && res->body_len)
    rc = kr_h2s_buf_add(o, res->body, res->body_len);
  c->h1_cur = NULL;
  kr_h2s_rq_free(r); /* the response is in the output: nothing else to keep */
  if (rc || c->h1_close)
    c->want_close = 1;
  return rc;
}

/* --- parsing ------------------------------------------------------------------- */

static int is_tchar(unsigned char ch)
{
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* The end of the head (just past its blank line), or 0. */
static size_t head_end(const uint8_t *p, size_t len)
{
  for (size_t i = 0; i + 1 < len; i++) {
    if (p[i] != '\n')
      continue;
    if (p[i + 1] == '\n')
      return i + 2;
    if (p[i + 1] == '\r' && i + 2 < len && p[i + 2] == '\n')
      return i + 3;
  }
  return 0;
}

/* One line of [p, end): its length without CR LF; *next is past it. */
static size_t line_at(const char *p, const char *end, const char **next)
{
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  if (!nl)
    nl = end;
  *next = nl < end ? nl + 1 : end;
  size_t n = (size_t)(nl - p);
  return n && p[n - 1] == '\r' ? n - 1 : n;
}

/* "GET /path HTTP/1.1". Returns 0 or an HTTP status. */
static int request_line(head *h, const char *p, size_t n)
{
  size_t i = 0;
  while (i < n && is_tchar((unsigned char)p[i]))
    i++;
  if (i == 0 || i >= n || p[i] != ' ')
    return 400;
  h->method = p, h->mlen = i;
  size_t t = ++i;
  while (i < n && (unsigned char)p[i] > ' ' && p[i] != 0x7f)
    i++;
  if (i == t || i >= n || p[i] != ' ')
    return 400;
  h->target = p + t, h->tlen = i - t;
  i++;
  if (n - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0)
    return (n - i >= 5 && memcmp(p + i, "HTTP/", 5) == 0) ? 505 : 400;
  if (p[i + 7] != '0' && p[i + 7] != '1')
    return 505;
  h->minor = p[i + 7] - '0';
  return 0;
}

static int has_token(const char *v, size_t vl, const char *tok)
{
  size_t tl = strlen(tok);
  for (size_t i = 0; i + tl <= vl; i++)
    if (strncasecmp(v + i, tok, tl) == 0 && (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
        (i + tl == vl || v[i + tl] == ',' || v[i + tl] == ' '))
      return 1;
  return 0;
}

/* The framing headers. Returns 0 or an HTTP status. */
static int framing_header(head *h, const char *n, size_t nl, const char *v, size_t vl)
{
  if (nl == 14 && strncasecmp(n, "content-length", 14) == 0) {
    uint64_t len = 0;
    if (vl == 0 || vl > 18)
      return 400;
    for (size_t i = 0; i < vl; i++) {
      if (v[i] < '0' || v[i] > '9')
        return 400;
      len = len * 10 + (uint64_t)(v[i] - '0');
    }
    if (h->has_length && h->length != len)
      return 400;
    h->has_length = 1, h->length = len;
  } else if (nl == 17 && strncasecmp(n, "transfer-encoding", 17) == 0) {
    if (vl != 7 || strncasecmp(v, "chunked", 7) != 0 || h->chunked)
      return 501;
    h->chunked = 1;
  } else if (nl == 6 && strncasecmp(n, "expect", 6) == 0) {
    if (vl != 12 || strncasecmp(v, "100-continue", 12) != 0)
      return 417;
    h->expect_continue = 1;
  } else if (nl == 10 && strncasecmp(n, "connection", 10) == 0) {
    h->close |= has_token(v, vl, "close");
    h->keep_alive |= has_token(v, vl, "keep-alive");
  }
  return 0;
}

/* Splits a header line into name and value (OWS trimmed). 0 or 400. */
static int split_header(const char *p, size_t n, const char **name, size_t *nl,
                        const char **val, size_t *vl)
{
  size_t i = 0;
  while (i < n && is_tchar((unsigned char)p[i]))
    i++;
  if (i == 0 || i >= n || p[i] != ':')
    return 400; /* also a folded line, which starts with a space */
  *name = p, *nl = i;
  size_t a = i + 1, b = n;
  while (a < b && (p[a] == ' ' || p[a] == '\t'))
    a++;
  while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t'))
    b--;
  for (size_t k = a; k < b; k++)
    if (((unsigned char)p[k] < 0x20 && p[k] != '\t') || p[k] == 0x7f)
      return 400;
  *val = p + a, *vl = b - a;
  return 0;
}

/* Parses the head ending at `end` bytes. Returns 0 or an HTTP status. */
static int parse_head(head *h, const char *p, size_t end)
{
  memset(h, 0, sizeof *h);
  const char *stop = p + end, *next;
  size_t n = line_at(p, stop, &next);
  int st = request_line(h, p, n);
  if (st)
    return st;
  h->lines = next, h->lines_len = (size_t)(stop - next);
  for (const char *q = next; q < stop;) {
    n = line_at(q, stop, &next);
    if (n == 0)
      break;
    const char *nm, *v;
    size_t nl, vl;
    if ((st = split_header(q, n, &nm, &nl, &v, &vl)) != 0 ||
        (st = framing_header(h, nm, nl, v, vl)) != 0)
      return st;
    q = next;
  }
  if (h->chunked && h->has_length)
    return 400;
  h->len = end;
  return 0;
}

/* Decodes a chunked body that starts at p. Returns its total length
 * consumed (chunks and trailer) when complete, 0 when more is needed, or
 * -status. Adds each chunk to r when r is not NULL. */
static long long dechunk(const char *p, size_t len, size_t max_body, kr_h2s_rq *r)
{
  size_t i = 0, total = 0;
  for (;;) {
    const char *nl = memchr(p + i, '\n', len - i);
    if (!nl)
      return len - i > 1024 ? -400 : 0;
    size_t size = 0, k = i, digits = 0;
    for (; k < (size_t)(nl - p); k++, digits++) {
      int d = p[k] >= '0' && p[k] <= '9' ? p[k] - '0' : (p[k] | 0x20) >= 'a' && (p[k] | 0x20) <= 'f' ? (p[k] | 0x20) - 'a' + 10 : -1;
      if (d < 0)
        break;
      if (size > (max_body >> 4))
        return -413;
      size = size * 16 + (size_t)d;
    }
    if (digits == 0)
      return -400;
    i = (size_t)(nl - p) + 1; /* chunk extensions after the size are skipped */
    if (size == 0)
      break;
    if (total + size > max_body)
      return -413;
    if (len - i < size + 2)
      return 0;
    if (r && kr_h2s_rq_add_body(r, (const uint8_t *)p + i, size) != 0)
      return -503;
    total += size;
    i += size;
    if (p[i] == '\r')
      i++;
    if (p[i] != '\n')
      return -400;
    i++;
  }
  for (;;) { /* trailer lines, up to the blank one */
    const char *nl = memchr(p + i, '\n', len - i);
    if (!nl)
      return len - i > 8192 ? -431 : 0;
    size_t n = (size_t)(nl - p) - i;
    i = (size_t)(nl - p) + 1;
    if (n == 0 || (n == 1 && p[i - 2] == '\r'))
      return (long long)i;
  }
}

/* Builds the request from a complete head and body and hands it over. */
static int build(kr_h2s_conn *c, const head *h, const char *body, size_t blen,
                 int chunked)
{
  kr_h2s_rq *r = kr_h2s_rq_new(c);
  if (!r)
    return 503;
  if (kr_h2s_rq_set_pseudo(r, &r->method_off, h->method, h->mlen) ||
      kr_h2s_rq_set_pseudo(r, &r->path_off, h->target, h->tlen)) {
    kr_h2s_rq_free(r);
    return 503;
  }
  const char *stop = h->lines + h->lines_len, *next;
  for (const char *q = h->lines; q < stop; q = next) {
    size_t n = line_at(q, stop, &next), nl, vl;
    const char *nm, *v;
    if (n == 0)
      break;
    split_header(q, n, &nm, &nl, &v, &vl);
    if (kr_h2s_rq_add_header(r, nm, nl, v, vl)) {
      kr_h2s_rq_free(r);
      return 503;
    }
  }
  int rc = chunked ? (dechunk(body, blen, c->s->cfg.max_body, r) > 0 ? 0 : KURA_ENOMEM)
                   : kr_h2s_rq_add_body(r, (const uint8_t *)body, blen);
  if (rc) {
    kr_h2s_rq_free(r);
    return 503;
  }
  c->h1_close |= h->close || (h->minor == 0 && !h->keep_alive);
  c->h1_cur = r;
  kr_h2s_rq_dispatch(r);
  return 0;
}

static void consume(kr_h2s_conn *c, size_t n)
{
  memmove(c->in.p, c->in.p + n, c->in.len - n);
  c->in.len -= n;
  c->h1_continue = 0;
}

/* One request from the front of c->in. */
static int parse_one(kr_h2s_conn *c)
{
  kr_h2s *s = c->s;
  const char *p = (const char *)c->in.p;
  size_t end = head_end(c->in.p, c->in.len);
  if ((!end && c->in.len > s->cfg.max_header_bytes) || end > s->cfg.max_header_bytes) {
    int long_line = !memchr(p, '\n', s->cfg.max_header_bytes);
    return kr_h2s_h1_reject(c, long_line ? 414 : 431, long_line ? "request line too long\n"
                                                                : "request head too large\n"),
           REJECTED;
  }
  if (!end)
    return NEED_MORE;
  head h;
  int st = parse_head(&h, p, end);
  if (!st && h.has_length && h.length > s->cfg.max_body)
    st = 413;
  if (st)
    return kr_h2s_h1_reject(c, st, "malformed or refused request\n"), REJECTED;
  size_t body_len = h.has_length ? (size_t)h.length : 0, total = end + body_len;
  if (h.chunked) {
    long long n = dechunk(p + end, c->in.len - end, s->cfg.max_body, NULL);
    if (n < 0)
      return kr_h2s_h1_reject(c, (int)-n, "malformed or refused chunked body\n"), REJECTED;
    body_len = (size_t)n, total = n ? end + (size_t)n : 0;
  }
  if (!total || c->in.len < total) { /* the body is still arriving */
    if (h.expect_continue && !c->h1_continue) {
      c->h1_continue = 1;
      kr_h2s_buf_add(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    return NEED_MORE;
  }
  st = build(c, &h, p + end, body_len, h.chunked);
  if (st)
    return kr_h2s_h1_reject(c, st, "the server is busy\n"), REJECTED;
  consume(c, total);
  return DISPATCHED;
}

/* Counts what the input buffer holds in the server's buffered bytes. */
static int account_input(kr_h2s_conn *c)
{
  kr_h2s *s = c->s;
  s->buffered = s->buffered - c->in_accounted + c->in.cap;
  c->in_accounted = c->in.cap;
  return s->buffered <= s->cfg.max_buffered;
}

void kr_h2s_h1_feed(kr_h2s_conn *c)
{
  c->proto = KR_H2S_HTTP1;
  while (!c->h1_cur && !c->want_close && !c->closing && c->in.len)
    if (parse_one(c) != DISPATCHED)
      break;
  if (!c->want_close && !account_input(c))
    kr_h2s_h1_reject(c, 503, "the server is busy\n");
}
