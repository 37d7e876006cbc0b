// The system-call filter of every sandboxed command: what a tool never needs and what has let
// sandboxed code reach the kernel or the host, refused with EPERM. Everything else is allowed: the
// filter is a second wall behind the unprivileged user and the namespaces, not the first.
//
// Only the machine's native architecture is allowed at all: a 32-bit or x32 system call from a
// 64-bit command kills it (libseccomp's default for a foreign architecture), so no second table of
// numbers slips past the rules.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "launcher.h"

/// Refused outright, by name (a name this architecture or libseccomp does not know is skipped).
static const char *const refused[] = {
    // Mounts and namespaces: the sandbox's view of the filesystem is fixed before the command starts.
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
    "mount_setattr", "unshare", "setns",
    // The kernel itself: modules, kexec, reboot, swap, the kernel log, process accounting.
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff",
    "syslog", "acct",
    // Other processes' memory and the keyrings shared with the host.
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "keyctl", "add_key", "request_key",
    // Interfaces with a long record of kernel exploits, or that bypass this filter.
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    // Files by handle (skips path permissions), clocks, host names, quotas and other legacy calls.
    "open_by_handle_at", "name_to_handle_at", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "sethostname", "setdomainname", "quotactl", "quotactl_fd", "lookup_dcookie", "vhangup", "nfsservctl", "uselib",
    "iopl", "ioperm", "fanotify_init",
};

/// The clone flags that create namespaces: clone() with any of them is refused like unshare().
static const unsigned long namespace_flags[] = {
    CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
#ifdef CLONE_NEWTIME
    CLONE_NEWTIME,
#endif
};

static int add(scmp_filter_ctx filter, uint32_t action, int call, unsigned count, const struct scmp_arg_cmp *compare) {
    int rc = seccomp_rule_add_array(filter, action, call, count, compare);
    if (rc != 0) {
        errno = -rc;
        return agentd_fail("cannot add a seccomp rule for", seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, call));
    }
    return 0;
}

int agentd_seccomp_filter(void) {
    scmp_filter_ctx filter = seccomp_init(SCMP_ACT_ALLOW);
    if (filter == NULL) {
        fprintf(stderr, "agentd-sandbox: cannot create a seccomp filter\n");
        return -1;
    }
    int failed = 0;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0] && !failed; i++) {
        int call = seccomp_syscall_resolve_name(refused[i]);
        if (call < 0) continue;  // not a system call here (or a pseudo number libseccomp keeps for others)
        failed = add(filter, SCMP_ACT_ERRNO(EPERM), call, 0, NULL) != 0;
    }
    for (size_t i = 0; i < sizeof namespace_flags / sizeof namespace_flags[0] && !failed; i++) {
        struct scmp_arg_cmp flag = SCMP_A0(SCMP_CMP_MASKED_EQ, namespace_flags[i], namespace_flags[i]);
        failed = add(filter, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, &flag) != 0;
    }
    // clone3 passes its flags in memory, where a filter cannot look: ENOSYS makes the C library fall
    // back to clone(), whose flags the rules above see.
    if (!failed) failed = add(filter, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0, NULL) != 0;
    // Typing into a terminal the sandbox shares with someone else.
    struct scmp_arg_cmp injection[] = {SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, TIOCSTI), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, TIOCLINUX)};
    for (size_t i = 0; i < 2 && !failed; i++) failed = add(filter, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1, &injection[i]) != 0;

    int fd = -1;
    if (!failed) {
        fd = memfd_create("agentd-seccomp", 0);  // no MFD_CLOEXEC: bwrap reads it after exec
        if (fd < 0) {
            agentd_fail("memfd_create", NULL);
        } else {
            int rc = seccomp_export_bpf(filter, fd);
            if (rc != 0 || lseek(fd, 0, SEEK_SET) != 0) {
                errno = rc != 0 ? -rc : errno;
                agentd_fail("cannot write the seccomp filter", NULL);
                close(fd);
                fd = -1;
            }
        }
    }
    seccomp_release(filter);
    return fd;
}
