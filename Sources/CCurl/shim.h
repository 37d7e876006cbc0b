#ifndef AGENTD_CCURL_SHIM_H
#define AGENTD_CCURL_SHIM_H

#include <curl/curl.h>

/// curl_easy_setopt, curl_multi_setopt and curl_easy_getinfo are variadic: Swift cannot call them.
/// These typed wrappers pass each kind of argument with the type libcurl expects for it.

static inline CURLcode agentd_curl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode agentd_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode agentd_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode agentd_curl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode agentd_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

typedef size_t (*agentd_curl_data_callback)(char *data, size_t size, size_t count, void *context);

/// CURLOPT_WRITEFUNCTION and CURLOPT_HEADERFUNCTION.
static inline CURLcode agentd_curl_easy_setopt_data_callback(CURL *handle, CURLoption option, agentd_curl_data_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

static inline CURLcode agentd_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode agentd_curl_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode agentd_curl_easy_getinfo_string(CURL *handle, CURLINFO info, char **value) {
    return curl_easy_getinfo(handle, info, value);
}

typedef int (*agentd_curl_socket_callback)(CURL *easy, curl_socket_t socket, int what, void *context, void *socket_context);
typedef int (*agentd_curl_timer_callback)(CURLM *multi, long timeout_ms, void *context);

static inline CURLMcode agentd_curl_multi_setopt_socket_callback(CURLM *multi, agentd_curl_socket_callback callback) {
    return curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, callback);
}

static inline CURLMcode agentd_curl_multi_setopt_timer_callback(CURLM *multi, agentd_curl_timer_callback callback) {
    return curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, callback);
}

static inline CURLMcode agentd_curl_multi_setopt_pointer(CURLM *multi, CURLMoption option, void *value) {
    return curl_multi_setopt(multi, option, value);
}

static inline CURLMcode agentd_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}

/// The easy handle and result of a CURLMSG_DONE message (the result sits in a union).
static inline CURLcode agentd_curl_msg_result(CURLMsg *message) {
    return message->data.result;
}

#endif
