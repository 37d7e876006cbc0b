#ifndef AGENTD_CLINUX_SHIM_H
#define AGENTD_CLINUX_SHIM_H

// Linux system calls glibc does not wrap, for the one Swift file that uses them (Orchestrator's
// DirectoryHandle.swift).

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

/// openat2(2): opens `path` relative to the directory `dirfd` with `flags` and `mode`, resolving it
/// as `resolve` (RESOLVE_* bits) says. `mode` is passed only with O_CREAT (the kernel refuses a mode
/// that no flag uses). Returns the new descriptor, or -1 with errno set; ENOSYS on a kernel older
/// than 5.6 (or where a seccomp filter hides the call).
static inline int agentd_openat2(int dirfd, const char *path, int flags, unsigned int mode, unsigned long long resolve) {
#ifdef SYS_openat2
    struct open_how how = {0};
    how.flags = (unsigned long long)(unsigned int)flags;
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = resolve;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/// O_PATH, which glibc's <fcntl.h> names only under _GNU_SOURCE: a descriptor that only locates a
/// directory, to resolve paths beneath.
static inline int agentd_o_path(void) { return __O_PATH; }

/// The resolution every file tool path gets: never outside the starting directory (`..`, absolute
/// paths and symlinks that lead out fail with EXDEV), and never through a /proc magic link.
static inline unsigned long long agentd_resolve_beneath(void) { return RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS; }

/// The resolution of a path that is already real: any symlink in it (swapped in since) fails with ELOOP.
static inline unsigned long long agentd_resolve_no_symlinks(void) { return RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS; }

#endif
