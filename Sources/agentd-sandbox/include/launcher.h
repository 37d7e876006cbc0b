// agentd-sandbox: the launcher between the daemon and bubblewrap (main.c says what it does).
#ifndef AGENTD_SANDBOX_LAUNCHER_H
#define AGENTD_SANDBOX_LAUNCHER_H

#include <sys/types.h>

/// Compiles the system-call filter (filter.c) and returns a memfd holding it as a classic BPF
/// program, positioned at its start and inherited across exec, for bwrap's `--seccomp FD`; -1 with a
/// message on stderr when it cannot.
int agentd_seccomp_filter(void);

/// In a new private mount namespace (root only): each directory or file of `dirs` mounted over itself —
/// with an idmap that shows its owner as `uid`:`gid` where `idmap[i]`, as it is otherwise; every ancestor
/// the sandbox user cannot search covered by an empty tmpfs that holds only the way down to those
/// directories; each file of `hide` covered with `/dev/null` on a mount without devices. 0 on success;
/// -1 with a message on stderr.
int agentd_prepare_mounts(uid_t uid, gid_t gid, char **dirs, const int *idmap, int ndirs, char **hide, int nhide);

/// Prints "agentd-sandbox: WHAT: strerror(errno)" on stderr and returns -1.
int agentd_fail(const char *what, const char *path);

#endif
