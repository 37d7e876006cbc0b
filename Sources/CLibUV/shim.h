#ifndef AGENTD_CLIBUV_SHIM_H
#define AGENTD_CLIBUV_SHIM_H

#include <uv.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <unistd.h>
#include <malloc.h>

/// glibc's malloc_trim, which Swift's Glibc module does not import (`MemoryTrim`, on the loop).
static inline int agentd_malloc_trim(void) { return malloc_trim(0); }

/// Size helpers: Swift cannot see the union-typed handle sizes libuv reports through macros.
static inline size_t agentd_uv_pipe_size(void) { return sizeof(uv_pipe_t); }

/// `uv_stdio_container_t.data.stream` is a union member; Swift imports unions awkwardly.
static inline void agentd_uv_stdio_stream(uv_stdio_container_t *c, int flags, uv_stream_t *stream) {
    c->flags = (uv_stdio_flags)flags;
    c->data.stream = stream;
}

static inline void agentd_uv_stdio_ignore(uv_stdio_container_t *c) {
    c->flags = UV_IGNORE;
    c->data.fd = -1;
}

static inline int agentd_uv_flag_create_pipe(void) { return UV_CREATE_PIPE; }
static inline int agentd_uv_flag_readable_pipe(void) { return UV_READABLE_PIPE; }
static inline int agentd_uv_flag_writable_pipe(void) { return UV_WRITABLE_PIPE; }
static inline int agentd_uv_process_detached(void) { return UV_PROCESS_DETACHED; }

/// The peer's user and group on a connected Unix socket (SO_PEERCRED); `struct ucred` needs
/// _GNU_SOURCE, so the layout the kernel fills is declared here. Returns 0, or -1 with errno set.
struct agentd_peer_cred { pid_t pid; uid_t uid; gid_t gid; };
static inline int agentd_peer_credentials(int fd, uid_t *uid, gid_t *gid) {
    struct agentd_peer_cred cred;
    socklen_t length = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return -1;
    *uid = cred.uid;
    *gid = cred.gid;
    return 0;
}

#endif
