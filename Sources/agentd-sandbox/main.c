// agentd-sandbox: starts bubblewrap for one sandboxed command, so that the command never runs with
// the daemon's privileges.
//
//   agentd-sandbox [--user UID:GID [--idmap DIR]... [--reach DIR]... [--hide FILE]... [--cgroup DIR]...] -- BWRAP [ARG]...
//
// 1. Compiles the system-call filter (filter.c) into a memfd and hands it to bwrap as
//    `--seccomp FD`, so the command and everything it starts run under it.
// 2. With --user (the daemon is root, and only then): in a private mount namespace, mounts each
//    --idmap DIR over itself so that its owner appears as UID:GID, covers the ancestors UID cannot
//    search with an empty tmpfs (--reach DIR gets the same way down, without an idmap: a directory the
//    command may read as it is), and covers each --hide FILE with /dev/null (mounts.c); gives the
//    standard streams (pipes from the daemon) to UID:GID, so `/dev/stdout` can be reopened; then drops
//    to UID:GID with no supplementary groups and no way back.
//    With --cgroup DIR (root only), it first moves itself into each control group DIR (the job's
//    memory and pids groups), so the command and all it starts are counted there.
// 3. Execs BWRAP, which then runs unprivileged: its user namespace maps the sandbox's uid to UID, never
//    to root, so the kernel treats the command as an ordinary user (no /proc/sys writes, no root-owned
//    files, RLIMIT_NPROC enforced) whatever the daemon runs as.
//
// Without --user the daemon is an ordinary user already and this only adds the filter. The pid stays
// the daemon's child throughout (exec, never fork), so timeouts, cancellation and bwrap's
// --die-with-parent work as for bwrap alone. Exits 125 when it cannot do its part, with the reason
// on stderr.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launcher.h"

enum { launcher_failed = 125 };

int agentd_fail(const char *what, const char *path) {
    if (path != NULL) {
        fprintf(stderr, "agentd-sandbox: %s %s: %s\n", what, path, strerror(errno));
    } else {
        fprintf(stderr, "agentd-sandbox: %s: %s\n", what, strerror(errno));
    }
    return -1;
}

static void usage(const char *problem) {
    fprintf(stderr, "agentd-sandbox: %s\nusage: agentd-sandbox [--user UID:GID [--idmap DIR]... [--hide FILE]...] -- BWRAP [ARG]...\n",
            problem);
    exit(launcher_failed);
}

/// Gives a pipe or socket among the standard streams to the sandbox user. Only those: a terminal or
/// /dev/null is shared with others and keeps its owner.
static void give_streams(uid_t uid, gid_t gid) {
    for (int fd = 0; fd <= 2; fd++) {
        struct stat info;
        if (fstat(fd, &info) == 0 && (S_ISFIFO(info.st_mode) || S_ISSOCK(info.st_mode))) {
            if (fchown(fd, uid, gid) != 0) agentd_fail("cannot give a standard stream to the sandbox user", NULL);
        }
    }
}

/// Moves this process into the control group directory `group` (its children follow).
static int join_cgroup(const char *group) {
    char path[4096];
    snprintf(path, sizeof path, "%s/cgroup.procs", group);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return agentd_fail("cannot join the job's control group", group);
    int ok = write(fd, "0\n", 2) == 2;
    if (!ok) agentd_fail("cannot join the job's control group", group);
    close(fd);
    return ok ? 0 : -1;
}

static int drop_privileges(uid_t uid, gid_t gid) {
    if (setgroups(0, NULL) != 0) return agentd_fail("setgroups", NULL);
    if (setresgid(gid, gid, gid) != 0) return agentd_fail("setresgid", NULL);
    if (setresuid(uid, uid, uid) != 0) return agentd_fail("setresuid", NULL);
    // Root cannot be regained (setresuid as an ordinary user only moves between its own ids).
    if (setuid(0) == 0 || geteuid() != uid || getegid() != gid) {
        fprintf(stderr, "agentd-sandbox: the sandbox user %u:%u could not be made permanent\n", uid, gid);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    long uid = -1, gid = -1;
    char **dirs = calloc((size_t)argc, sizeof(char *));
    char **hide = calloc((size_t)argc, sizeof(char *));
    char **groups = calloc((size_t)argc, sizeof(char *));
    int *idmap = calloc((size_t)argc, sizeof(int));
    int ndirs = 0, nhide = 0, ngroups = 0, i = 1;
    if (dirs == NULL || hide == NULL || groups == NULL || idmap == NULL) usage("out of memory");
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (i + 1 >= argc) usage("an option lacks its value");
        if (strcmp(argv[i], "--user") == 0) {
            char *end = NULL;
            uid = strtol(argv[++i], &end, 10);
            if (end == NULL || *end != ':') usage("--user takes UID:GID");
            gid = strtol(end + 1, &end, 10);
            if (*end != '\0' || uid <= 0 || gid <= 0) usage("--user takes UID:GID, neither of them root");
        } else if (strcmp(argv[i], "--idmap") == 0 || strcmp(argv[i], "--reach") == 0) {
            idmap[ndirs] = strcmp(argv[i], "--idmap") == 0;
            dirs[ndirs++] = argv[++i];
        } else if (strcmp(argv[i], "--hide") == 0) {
            hide[nhide++] = argv[++i];
        } else if (strcmp(argv[i], "--cgroup") == 0) {
            groups[ngroups++] = argv[++i];
        } else {
            usage("unknown option");
        }
    }
    if (i + 1 >= argc) usage("no bwrap to run after --");
    if (uid < 0 && (ndirs > 0 || nhide > 0 || ngroups > 0)) usage("--idmap, --reach, --hide and --cgroup go with --user");
    if (uid >= 0 && geteuid() != 0) usage("--user needs root: without it the sandbox already runs as the daemon's own user");

    int filter = agentd_seccomp_filter();
    if (filter < 0) return launcher_failed;
    if (uid >= 0) {
        for (int g = 0; g < ngroups; g++) {
            if (join_cgroup(groups[g]) != 0) return launcher_failed;
        }
        if (agentd_prepare_mounts((uid_t)uid, (gid_t)gid, dirs, idmap, ndirs, hide, nhide) != 0) return launcher_failed;
        give_streams((uid_t)uid, (gid_t)gid);
        if (drop_privileges((uid_t)uid, (gid_t)gid) != 0) return launcher_failed;
    }

    // BWRAP --seccomp FD ARG...
    char descriptor[16];
    snprintf(descriptor, sizeof descriptor, "%d", filter);
    int rest = argc - (i + 1);
    char **command = calloc((size_t)rest + 3, sizeof(char *));
    if (command == NULL) usage("out of memory");
    command[0] = argv[i + 1];
    command[1] = "--seccomp";
    command[2] = descriptor;
    for (int k = 1; k < rest; k++) command[k + 2] = argv[i + 1 + k];
    execv(command[0], command);
    agentd_fail("cannot run", command[0]);
    return launcher_failed;
}
