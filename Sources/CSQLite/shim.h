#ifndef AGENTD_CSQLITE_SHIM_H
#define AGENTD_CSQLITE_SHIM_H

#include <sqlite3.h>

/// SQLITE_TRANSIENT is a macro casting -1 to a function pointer; Swift cannot import it.
static inline int agentd_sqlite3_bind_text(sqlite3_stmt *stmt, int index, const char *text, int length) {
    return sqlite3_bind_text(stmt, index, text, length, SQLITE_TRANSIENT);
}

static inline int agentd_sqlite3_bind_blob(sqlite3_stmt *stmt, int index, const void *data, int length) {
    return sqlite3_bind_blob(stmt, index, data, length, SQLITE_TRANSIENT);
}

/// memmem (a GNU extension the Swift Glibc module does not show): the first occurrence of `needle`.
#include <stddef.h>
extern void *memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length);
static inline const void *agentd_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length) {
    return memmem(haystack, haystack_length, needle, needle_length);
}

#endif
