// An I/O error under the database, injected at the system-call edge: loaded with LD_PRELOAD into
// `agentd serve`, it fails every write, sync and truncate of a file whose path starts with
// $AGENTD_FAULT_PREFIX with EIO while the file $AGENTD_FAULT_TRIGGER exists, and passes everything
// else to the C library. Built by StorageIOErrorTests with `cc -shared -fPIC`.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

// Whether a write to `fd` fails now. Keeps errno as it found it.
static int faulty(int fd) {
    const char *prefix = getenv("AGENTD_FAULT_PREFIX");
    const char *trigger = getenv("AGENTD_FAULT_TRIGGER");
    if (prefix == NULL || trigger == NULL || *prefix == 0) return 0;
    int saved = errno;
    int fails = 0;
    if (access(trigger, F_OK) == 0) {
        char link[64], path[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, path, sizeof path - 1);
        if (n > 0) {
            path[n] = 0;
            fails = strncmp(path, prefix, strlen(prefix)) == 0;
        }
    }
    errno = saved;
    return fails;
}

// Each wrapper looks the C library's own function up once (RTLD_NEXT: the next definition after this
// library's).
#define WRAP(ret, name, params, args)                                   \
    ret name params {                                                   \
        static ret(*real) params;                                       \
        if (real == NULL) real = (ret(*) params)dlsym(RTLD_NEXT, #name); \
        if (faulty(fd)) {                                               \
            errno = EIO;                                                \
            return -1;                                                  \
        }                                                               \
        return real args;                                               \
    }

WRAP(ssize_t, write, (int fd, const void *buf, size_t count), (fd, buf, count))
WRAP(ssize_t, pwrite, (int fd, const void *buf, size_t count, off_t offset), (fd, buf, count, offset))
WRAP(ssize_t, pwrite64, (int fd, const void *buf, size_t count, off64_t offset), (fd, buf, count, offset))
WRAP(int, fsync, (int fd), (fd))
WRAP(int, fdatasync, (int fd), (fd))
WRAP(int, ftruncate, (int fd, off_t length), (fd, length))
