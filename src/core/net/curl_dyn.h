/* libcurl, loaded when it is first needed rather than linked.
 *
 * libcurl pulls in some thirty shared libraries (OpenSSL, GnuTLS, Kerberos,
 * LDAP, p11-kit ...) whose loading and constructors cost ~6 ms at every
 * start of `kura`, five times the whole start-up of the stock `lua`. Most
 * scripts never touch HTTP, so http.c reaches libcurl through this table,
 * filled by kr_curl_load() with dlopen("libcurl.so.4") the first time a
 * kr_http is made. The macros below keep http.c written against curl's own
 * names. Only the HTTP client (http_int.h) includes this header.
 */
#ifndef KR_CURL_DYN_H
#define KR_CURL_DYN_H

#include <curl/curl.h>

/* One entry per libcurl function kura calls; typed from curl's prototypes. */
#define KR_CURL_FUNCS(X)                                                     \
  X(global_init, curl_global_init)                                           \
  X(global_cleanup, curl_global_cleanup)                                     \
  X(version_info, curl_version_info)                                         \
  X(easy_init, curl_easy_init)                                               \
  X(easy_setopt, curl_easy_setopt)                                           \
  X(easy_getinfo, curl_easy_getinfo)                                         \
  X(easy_cleanup, curl_easy_cleanup)                                         \
  X(easy_reset, curl_easy_reset)                                             \
  X(easy_strerror, curl_easy_strerror)                                       \
  X(multi_init, curl_multi_init)                                             \
  X(multi_setopt, curl_multi_setopt)                                         \
  X(multi_assign, curl_multi_assign)                                         \
  X(multi_socket_action, curl_multi_socket_action)                           \
  X(multi_add_handle, curl_multi_add_handle)                                 \
  X(multi_remove_handle, curl_multi_remove_handle)                           \
  X(multi_info_read, curl_multi_info_read)                                   \
  X(multi_cleanup, curl_multi_cleanup)                                       \
  X(multi_strerror, curl_multi_strerror)                                     \
  X(slist_append, curl_slist_append)                                         \
  X(slist_free_all, curl_slist_free_all)                                     \
  X(url, curl_url)                                                           \
  X(url_cleanup, curl_url_cleanup)                                           \
  X(url_set, curl_url_set)                                                   \
  X(url_get, curl_url_get)                                                   \
  X(url_strerror, curl_url_strerror)                                         \
  X(free, curl_free)

struct kr_curl_api {
#define KR_CURL_FIELD(field, fn) __typeof__(fn) *field;
  KR_CURL_FUNCS(KR_CURL_FIELD)
#undef KR_CURL_FIELD
};

/* The table is process-wide, like the library it points into: filled once
 * (thread-safe) and never changed after. */
extern struct kr_curl_api kr_curl;

/* 0 once libcurl is loaded; otherwise KURA_EUNSUPPORTED with a message in
 * err (e.g. "libcurl.so.4: cannot open shared object file ..."). */
int kr_curl_load(char *err, size_t errlen);

/* curl's headers define some of these as type-checking macros. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init (*kr_curl.global_init)
#define curl_global_cleanup (*kr_curl.global_cleanup)
#define curl_version_info (*kr_curl.version_info)
#define curl_easy_init (*kr_curl.easy_init)
#define curl_easy_setopt (*kr_curl.easy_setopt)
#define curl_easy_getinfo (*kr_curl.easy_getinfo)
#define curl_easy_cleanup (*kr_curl.easy_cleanup)
#define curl_easy_reset (*kr_curl.easy_reset)
#define curl_easy_strerror (*kr_curl.easy_strerror)
#define curl_multi_init (*kr_curl.multi_init)
#define curl_multi_setopt (*kr_curl.multi_setopt)
#define curl_multi_assign (*kr_curl.multi_assign)
#define curl_multi_socket_action (*kr_curl.multi_socket_action)
#define curl_multi_add_handle (*kr_curl.multi_add_handle)
#define curl_multi_remove_handle (*kr_curl.multi_remove_handle)
#define curl_multi_info_read (*kr_curl.multi_info_read)
#define curl_multi_cleanup (*kr_curl.multi_cleanup)
#define curl_multi_strerror (*kr_curl.multi_strerror)
#define curl_slist_append (*kr_curl.slist_append)
#define curl_slist_free_all (*kr_curl.slist_free_all)
#define curl_url (*kr_curl.url)
#define curl_url_cleanup (*kr_curl.url_cleanup)
#define curl_url_set (*kr_curl.url_set)
#define curl_url_get (*kr_curl.url_get)
#define curl_url_strerror (*kr_curl.url_strerror)
#define curl_free (*kr_curl.free)

#endif
