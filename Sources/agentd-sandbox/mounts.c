// The mounts a root daemon's sandbox needs before it drops to the sandbox user, made in a private
// mount namespace that dies with the command (nothing is mounted on the host).
//
// The workspace stays writable for an unprivileged user without changing a single owner on disk: it
// is mounted over itself as an idmapped mount (mount_setattr(MOUNT_ATTR_IDMAP), Linux 5.12+) whose
// user namespace maps the directory's owner to the sandbox user. Through that mount the sandbox user
// owns what the owner owns; what it creates is stored as the owner's. Files of other owners stay
// theirs, unmapped.
//
// bwrap, running as the sandbox user, must be able to reach the workspace: an ancestor the sandbox
// user cannot search (a 0700 home or mkdtemp directory) is covered by an empty tmpfs holding only the
// path down to the workspace, so nothing else under it becomes visible.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launcher.h"

/// Whether `uid`:`gid` (no supplementary groups) may search the directory `info` describes.
static int searchable(const struct stat *info, uid_t uid, gid_t gid) {
    if (info->st_uid == uid) return (info->st_mode & S_IXUSR) != 0;
    if (info->st_gid == gid) return (info->st_mode & S_IXGRP) != 0;
    return (info->st_mode & S_IXOTH) != 0;
}

/// The outermost ancestor of `path` (not `path` itself) that `uid`:`gid` cannot search, or NULL.
static char *blocked_ancestor(const char *path, uid_t uid, gid_t gid) {
    size_t length = strlen(path);
    for (size_t end = 1; end < length; end++) {
        if (path[end] != '/') continue;
        char *prefix = strndup(path, end);
        struct stat info;
        if (prefix != NULL && stat(prefix, &info) == 0 && !searchable(&info, uid, gid)) return prefix;
        free(prefix);
    }
    return NULL;
}

static int write_map(pid_t pid, const char *which, unsigned from, unsigned to) {
    char path[64], line[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, which);
    int length = snprintf(line, sizeof line, "%u %u 1\n", from, to);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return agentd_fail("cannot open", path);
    int ok = write(fd, line, (size_t)length) == length;
    if (!ok) agentd_fail("cannot write", path);
    close(fd);
    return ok ? 0 : -1;
}

/// A user namespace mapping `from_uid`:`from_gid` (a directory's owner) to `uid`:`gid`, as a file
/// descriptor for mount_setattr. A child creates it and waits while the maps are written.
static int user_namespace(uid_t from_uid, gid_t from_gid, uid_t uid, gid_t gid) {
    int ready[2], hold[2];
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(hold, O_CLOEXEC) != 0) return agentd_fail("pipe", NULL);
    pid_t child = fork();
    if (child < 0) return agentd_fail("fork", NULL);
    if (child == 0) {
        close(ready[0]);
        close(hold[1]);
        char byte = unshare(CLONE_NEWUSER) == 0;
        (void)!write(ready[1], &byte, 1);
        (void)!read(hold[0], &byte, 1);  // until the parent closes its end
        _exit(0);
    }
    close(ready[1]);
    close(hold[0]);
    char byte = 0;
    int fd = -1;
    if (read(ready[0], &byte, 1) != 1 || byte != 1) {
        fprintf(stderr, "agentd-sandbox: cannot create a user namespace for the workspace's idmap\n");
    } else if (write_map(child, "uid_map", from_uid, uid) == 0 && write_map(child, "gid_map", from_gid, gid) == 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/user", (int)child);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) agentd_fail("cannot open", path);
    }
    close(hold[1]);
    close(ready[0]);
    waitpid(child, NULL, 0);
    return fd;
}

/// A detached copy of the directory or file at `path`, idmapped so that its owner appears as
/// `uid`:`gid`; `*is_directory` says which it was.
static int idmapped_tree(const char *path, uid_t uid, gid_t gid, int idmap, int *is_directory) {
    int directory = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (directory < 0) return agentd_fail("cannot open the workspace", path);
    struct stat info;
    int tree = -1;
    if (fstat(directory, &info) != 0) {
        agentd_fail("cannot stat the workspace", path);
    } else if (!S_ISDIR(info.st_mode) && !S_ISREG(info.st_mode)) {
        fprintf(stderr, "agentd-sandbox: %s is neither a directory nor a regular file\n", path);
    } else {
        *is_directory = S_ISDIR(info.st_mode);
        if (!idmap) {
            // Reached as it is: the sandbox user sees it with its real owners.
            tree = open_tree(directory, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
            if (tree < 0) agentd_fail("cannot copy the mount of", path);
            close(directory);
            return tree;
        }
        int userns = user_namespace(info.st_uid, info.st_gid, uid, gid);
        if (userns >= 0) {
            tree = open_tree(directory, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
            struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (unsigned long long)userns};
            if (tree < 0) {
                agentd_fail("cannot copy the mount of", path);
            } else if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
                agentd_fail("cannot idmap (the filesystem must support idmapped mounts)", path);
                close(tree);
                tree = -1;
            }
            close(userns);
        }
    }
    close(directory);
    return tree;
}

/// Creates `path` (a directory, or an empty file to mount a file on) and its missing parents (mode
/// 0755) inside a tmpfs cover.
static int make_path(const char *path, int is_directory) {
    char *copy = strdup(path);
    if (copy == NULL) return agentd_fail("strdup", NULL);
    for (char *slash = strchr(copy + 1, '/');; slash = strchr(slash + 1, '/')) {
        if (slash != NULL) *slash = '\0';
        if (slash == NULL && !is_directory) {
            int fd = open(copy, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (fd < 0) {
                agentd_fail("cannot create", copy);
                free(copy);
                return -1;
            }
            close(fd);
            break;
        }
        if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
            agentd_fail("cannot create", copy);
            free(copy);
            return -1;
        }
        chmod(copy, 0755);
        if (slash == NULL) break;
        *slash = '/';
    }
    free(copy);
    return 0;
}

static int covered_by(const char *path, const char *cover) {
    size_t length = strlen(cover);
    return strncmp(path, cover, length) == 0 && (path[length] == '\0' || path[length] == '/');
}

int agentd_prepare_mounts(uid_t uid, gid_t gid, char **dirs, const int *idmap, int ndirs, char **hide, int nhide) {
    if (unshare(CLONE_NEWNS) != 0) return agentd_fail("cannot create a mount namespace", NULL);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return agentd_fail("cannot make the mounts private", NULL);

    int *trees = calloc((size_t)ndirs + 1, sizeof(int));
    int *is_directory = calloc((size_t)ndirs + 1, sizeof(int));
    char **covers = calloc((size_t)ndirs + 1, sizeof(char *));
    if (trees == NULL || is_directory == NULL || covers == NULL) return agentd_fail("calloc", NULL);
    for (int i = 0; i < ndirs; i++) {
        if (dirs[i][0] != '/') {
            fprintf(stderr, "agentd-sandbox: --idmap takes an absolute path, not %s\n", dirs[i]);
            return -1;
        }
        // Both before any cover hides the real directories.
        if ((trees[i] = idmapped_tree(dirs[i], uid, gid, idmap[i], &is_directory[i])) < 0) return -1;
        covers[i] = blocked_ancestor(dirs[i], uid, gid);
    }
    for (int i = 0; i < ndirs; i++) {
        if (covers[i] == NULL) continue;
        int done = 0;
        for (int j = 0; j < ndirs && !done; j++) {
            // One cover per directory; an outer cover makes every path below it searchable.
            done = covers[j] != NULL && j != i && covered_by(covers[i], covers[j]) && (strcmp(covers[i], covers[j]) != 0 || j < i);
        }
        if (done) continue;
        if (mount("tmpfs", covers[i], "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") != 0) {
            return agentd_fail("cannot cover", covers[i]);
        }
    }
    for (int i = 0; i < ndirs; i++) {
        if (covers[i] != NULL && make_path(dirs[i], is_directory[i]) != 0) return -1;
        if (move_mount(trees[i], "", AT_FDCWD, dirs[i], MOVE_MOUNT_F_EMPTY_PATH) != 0) {
            return agentd_fail("cannot mount the idmapped workspace on", dirs[i]);
        }
        close(trees[i]);
    }
    for (int i = 0; i < nhide; i++) {
        struct stat info;
        if (lstat(hide[i], &info) != 0) {
            if (errno == ENOENT) continue;  // under a cover: not there for the sandbox to find
            return agentd_fail("cannot stat", hide[i]);
        }
        if (S_ISDIR(info.st_mode) || S_ISLNK(info.st_mode)) continue;
        // /dev/null on a mount without devices: the file cannot be opened at all.
        if (mount("/dev/null", hide[i], NULL, MS_BIND, NULL) != 0 ||
            mount(NULL, hide[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NODEV | MS_NOSUID | MS_NOEXEC, NULL) != 0) {
            return agentd_fail("cannot hide", hide[i]);
        }
    }
    return 0;
}
