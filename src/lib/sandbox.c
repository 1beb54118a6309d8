/*
 * sandbox.c - no_new_privs, Landlock and seccomp for the workers, the
 * guard and the queue process. See sandbox.h and docs/security.md
 * ("Sandboxes").
 *
 * Landlock goes through its system calls (glibc has no wrappers); the
 * rule set handles every access right the running kernel knows (its ABI
 * version says which), so what no rule grants is denied. seccomp uses
 * libseccomp: an allow-list per process kind, default action
 * SCMP_ACT_KILL_PROCESS (the master sees signal=SYS and restarts it).
 */
#include "lib/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/log.h"

#ifdef POSTERN_SANITIZE
#include <sanitizer/common_interface_defs.h>
#endif

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif

/* Access rights by ABI version (Debian 12's headers stop at ABI 2). */
#define LL_FS_ABI1 ((1ULL << 13) - 1)
#define LL_FS_REFER (1ULL << 13)    /* ABI 2 */
#define LL_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#define LL_NET_TCP 3ULL		    /* ABI 4: bind and connect TCP */
#define LL_NET_CONNECT_TCP 2ULL	    /* ABI 4: connect only */
#define LL_RULE_NET_PORT 2	    /* ABI 4: struct sandbox_ll_port */
#define LL_SCOPE_ALL 3ULL	    /* ABI 6: abstract Unix sockets, signals */
#define LL_RW                                                                  \
	(LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |        \
	 LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR |         \
	 LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |        \
	 LANDLOCK_ACCESS_FS_MAKE_REG | LL_FS_REFER | LL_FS_TRUNCATE)
#define LL_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define LL_SOCKDIR LANDLOCK_ACCESS_FS_REMOVE_FILE

/* The kernel's struct landlock_ruleset_attr up to ABI 6. */
struct sandbox_ll_attr {
	uint64_t fs;
	uint64_t net;
	uint64_t scoped;
};

struct sandbox_ll_path {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

struct sandbox_ll_port {
	uint64_t allowed_access;
	uint64_t port;
} __attribute__((packed));

/* One directory (or file) a process keeps, and what it may do beneath
   it; an optional one that does not exist is skipped. */
struct sandbox_dir {
	char path[4096];
	uint64_t access;
	bool optional;
};

/* TCP ports a process may connect to (none: no TCP at all). */
struct sandbox_net {
	const unsigned *ports;
	size_t n;
};

/* A system call allowed without condition. */
static const char *const sandbox_common[] = {
    "read", "write", "readv", "writev", "pread64", "pwrite64", "close",
    "fstat", "newfstatat", "statx", "lseek", "brk", "munmap", "mremap",
    "madvise", "epoll_wait", "epoll_pwait", "epoll_ctl", "poll", "ppoll",
    "recvfrom", "recvmsg", "sendto", "sendmsg", "shutdown", "getsockopt",
    "setsockopt", "getsockname", "getpeername", "connect", "openat",
    "fcntl", "fsync", "fdatasync", "syncfs", "getdents64", "clock_gettime",
    "gettimeofday", "nanosleep", "clock_nanosleep", "getpid", "gettid",
    "getuid", "geteuid", "getgid", "getegid", "rt_sigaction",
    "rt_sigprocmask", "rt_sigreturn", "exit", "exit_group", "getrandom",
    "futex", "restart_syscall", "unlink", "unlinkat", "umask", "statfs",
    "fstatfs", "rseq", "set_robust_list", "sched_getaffinity", NULL};

/* The worker: accept, spool files, Maildir files and directories. */
static const char *const sandbox_worker_calls[] = {
    "accept", "accept4", "rename", "renameat", "renameat2", "link",
    "linkat", "mkdir", "mkdirat", "ftruncate", "fchmod", "copy_file_range",
    NULL};

/* The guard: its hashing threads (clone with CLONE_THREAD only, below),
   control clients (the socket was bound before the drop), and getcwd:
   a reload (SIGHUP) reads the configuration again, which makes relative
   paths absolute (the default guard-state is one). */
static const char *const sandbox_guard_calls[] = {
    "accept", "accept4", "sched_yield", "prctl", "eventfd2", "pipe2",
    "getcwd", NULL};

/* The queue process: its control socket's clients, the journal, the
   quarantine and the Maildir notices (rename, mkdir), DNS over UDP
   (bind: libunbound's random source ports). */
static const char *const sandbox_queue_calls[] = {
    "accept", "accept4", "rename", "renameat", "renameat2", "mkdir",
    "mkdirat", "ftruncate", "bind", "fchmod", "pipe2", "eventfd2",
    "sched_yield", "uname", NULL};

/* What ASan and UBSan use in a report (docs/security.md): release
   builds do not have this list. */
#ifdef POSTERN_SANITIZE
static const char *const sandbox_sanitizer_calls[] = {
    "readlink", "readlinkat", "sched_yield", "sigaltstack", "prlimit64",
    "getrlimit", "prctl", "uname", "open", "stat",
    "lstat", "access", "faccessat", "faccessat2", "pipe2", "wait4", NULL};
#endif

int
sandbox_landlock_abi(void)
{
	long abi = syscall(__NR_landlock_create_ruleset, NULL, 0,
			   LANDLOCK_CREATE_RULESET_VERSION);

	return abi < 0 ? 0 : (int)abi;
}

/* The directory part of `path` ("." when it has none). */
static void
sandbox_dirname(const char *path, char *out, size_t size)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash == NULL ? 0 : (size_t)(slash - path);

	if (slash == path)
		n = 1;
	if (n == 0 || n >= size)
		snprintf(out, size, ".");
	else
		snprintf(out, size, "%.*s", (int)n, path);
}

/* The fixed directories above the first % of the Maildir template (the
   same root the master makes: dirs.c). */
static void
sandbox_maildir_root(const char *tmpl, char *out, size_t size)
{
	const char *pct = strchr(tmpl, '%');
	char fixed[4096];

	if (pct == NULL) {
		snprintf(out, size, "%s", tmpl);
		return;
	}
	snprintf(fixed, sizeof(fixed), "%.*s", (int)(pct - tmpl), tmpl);
	if (fixed[0] != '\0' && fixed[strlen(fixed) - 1] == '/')
		snprintf(out, size, "%.*s", (int)strlen(fixed) - 1, fixed);
	else
		sandbox_dirname(fixed, out, size);
	if (out[0] == '\0')
		snprintf(out, size, "/");
}

/* Rights that apply to a file (a rule on a file may hold no other). */
#define LL_FILE_RIGHTS                                                         \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |          \
	 LANDLOCK_ACCESS_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)

/* Grant `access` beneath one directory, or on one file (masked to what
   the ABI knows). */
static int
sandbox_ll_add(int ruleset, const struct sandbox_dir *d, uint64_t handled)
{
	struct sandbox_ll_path pb;
	int fd = open(d->path, O_PATH | O_CLOEXEC);
	struct stat st;
	int rc;

	if (fd < 0 && d->optional && errno == ENOENT)
		return 0;
	if (fd < 0 || fstat(fd, &st) < 0) {
		log_error("-", "sandbox error=\"landlock: cannot open %s: %s\"",
			  d->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	pb.allowed_access = d->access & handled;
	if (!S_ISDIR(st.st_mode))
		pb.allowed_access &= LL_FILE_RIGHTS;
	pb.parent_fd = fd;
	rc = (int)syscall(__NR_landlock_add_rule, ruleset,
			  LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
	if (rc < 0)
		log_error("-", "sandbox error=\"landlock rule %s: %s\"",
			  d->path, strerror(errno));
	close(fd);
	return rc < 0 ? -1 : 0;
}

/* TCP connect to each port of `net` (ABI 4). */
static int
sandbox_ll_ports(int ruleset, const struct sandbox_net *net)
{
	for (size_t i = 0; net != NULL && i < net->n; i++) {
		struct sandbox_ll_port pa = {LL_NET_CONNECT_TCP, net->ports[i]};

		if (syscall(__NR_landlock_add_rule, ruleset, LL_RULE_NET_PORT,
			    &pa, 0) < 0) {
			log_error("-", "sandbox error=\"landlock port %u: %s\"",
				  net->ports[i], strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* The rule set: only `dirs` remain reachable, no TCP bind, no TCP
   connect but to the ports of `net` (ABI 4), no signal or abstract
   socket out of the domain (ABI 6). */
static int
sandbox_landlock(const char *who, const struct sandbox_dir *dirs, size_t n,
		 const struct sandbox_net *net)
{
	struct sandbox_ll_attr attr = {0};
	int abi = sandbox_landlock_abi(), ruleset, rc = 0;
	size_t size = sizeof(attr.fs);

	if (abi < 1) {
		log_warning("-", "sandbox landlock=none process=%s reason=\"the "
				 "kernel has no Landlock (Linux 5.13+)\"", who);
		return 0;
	}
	attr.fs = LL_FS_ABI1 | (abi >= 2 ? LL_FS_REFER : 0) |
		  (abi >= 3 ? LL_FS_TRUNCATE : 0) |
		  (abi >= 5 ? LL_FS_IOCTL_DEV : 0);
	if (abi >= 4) {
		attr.net = LL_NET_TCP;
		size = 2 * sizeof(uint64_t);
	}
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ALL;
		size = sizeof(attr);
	}
	ruleset = (int)syscall(__NR_landlock_create_ruleset, &attr, size, 0);
	if (ruleset < 0) {
		log_error("-", "sandbox error=\"landlock: %s\"", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = sandbox_ll_add(ruleset, &dirs[i], attr.fs);
	if (rc == 0 && abi >= 4)
		rc = sandbox_ll_ports(ruleset, net);
	if (rc == 0 && syscall(__NR_landlock_restrict_self, ruleset, 0) < 0) {
		log_error("-", "sandbox error=\"landlock: %s\"", strerror(errno));
		rc = -1;
	}
	close(ruleset);
	if (rc == 0)
		log_debug("-", "sandbox landlock=%d process=%s", abi, who);
	return rc;
}

static int
sandbox_allow(scmp_filter_ctx ctx, const char *const *names)
{
	for (size_t i = 0; names[i] != NULL; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);

		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) < 0)
			return -1;
	}
	return 0;
}

/* Calls allowed with some arguments only; `kind`: 'w'orker, 'g'uard or
   'q'ueue. */
static int
sandbox_allow_args(scmp_filter_ctx ctx, char kind)
{
	int rc = 0;
	bool guard = kind == 'g';

	if (kind == 'q') {
		/* SMTP and DNS: Internet sockets (Landlock picks the TCP
		   ports); no other family but syslog's below. */
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket),
				       1, SCMP_A0(SCMP_CMP_EQ, AF_INET));
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket),
				       1, SCMP_A0(SCMP_CMP_EQ, AF_INET6));
	}

	/* abort() signals itself; nothing else may be signalled. */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
			       SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
	/* glibc's syslog() reconnects to /dev/log with this socket. */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
			       SCMP_A0(SCMP_CMP_EQ, AF_UNIX),
			       SCMP_A1(SCMP_CMP_EQ, SOCK_DGRAM | SOCK_CLOEXEC));
	/* libevent asks how much a socket holds; nothing else. */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
			       SCMP_A1(SCMP_CMP_EQ, FIONREAD));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
			       SCMP_A1(SCMP_CMP_EQ, FIONBIO));
	/* No new executable memory. */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
			       SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
			       SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (guard) {
		/* Threads, never a process; clone3's flags are out of
		   reach of a filter: ENOSYS makes glibc use clone. */
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				       SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD,
					       CLONE_THREAD));
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
				       SCMP_SYS(clone3), 0);
	}
	return rc == 0 ? 0 : -1;
}

/* The default action: kill, or (test builds, to rebuild the lists) log. */
static uint32_t
sandbox_default_action(void)
{
#ifdef POSTERN_TEST_HOOKS
	if (getenv("POSTERN_SANDBOX_LEARN") != NULL)
		return SCMP_ACT_LOG;
#endif
	return SCMP_ACT_KILL_PROCESS;
}

static int
sandbox_seccomp(const char *who, const char *const *extra, char kind)
{
	scmp_filter_ctx ctx = seccomp_init(sandbox_default_action());
	int rc = -1;

	if (ctx == NULL) {
		log_error("-", "sandbox error=\"seccomp_init failed\"");
		return -1;
	}
	/* All threads (the guard's pool), and no_new_privs is ours. */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) < 0 ||
	    sandbox_allow(ctx, sandbox_common) < 0 ||
	    sandbox_allow(ctx, extra) < 0 || sandbox_allow_args(ctx, kind) < 0)
		goto out;
#ifdef POSTERN_SANITIZE
	if (sandbox_allow(ctx, sandbox_sanitizer_calls) < 0)
		goto out;
#endif
	rc = seccomp_load(ctx);
	if (rc < 0)
		log_error("-", "sandbox error=\"seccomp_load: %s\"",
			  strerror(-rc));
	else
		log_debug("-", "sandbox seccomp=kill process=%s", who);
out:
	if (rc < 0 && ctx != NULL)
		log_error("-", "sandbox error=\"seccomp filter not built\"");
	seccomp_release(ctx);
	return rc < 0 ? -1 : 0;
}

/* no_new_privs, then Landlock, then seccomp (which forbids Landlock's
   own calls). */
static int
sandbox_apply(const char *who, const struct sandbox_dir *dirs, size_t n,
	      const struct sandbox_net *net, const char *const *calls,
	      char kind)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_error("-", "sandbox error=\"no_new_privs: %s\"",
			  strerror(errno));
		return -1;
	}
#ifdef POSTERN_SANITIZE
	{
		/* Start the symbolizer now: a report cannot exec it later. */
		char buf[64];

		__sanitizer_symbolize_pc(__builtin_return_address(0), "%p",
					 buf, sizeof(buf));
	}
#endif
	if (sandbox_landlock(who, dirs, n, net) < 0)
		return -1;
	return sandbox_seccomp(who, calls, kind);
}

/* In sanitizer builds the runtime reads /proc/self/maps for a report. */
static size_t
sandbox_add_proc(struct sandbox_dir *dirs, size_t n)
{
#ifdef POSTERN_SANITIZE
	snprintf(dirs[n].path, sizeof(dirs[n].path), "/proc/%ld",
		 (long)getpid());
	dirs[n].access = LANDLOCK_ACCESS_FS_READ_FILE;
	return n + 1;
#else
	(void)dirs;
	return n;
#endif
}

int
sandbox_worker(bool on, const char *spool, const char *maildir)
{
	static struct sandbox_dir dirs[3];
	size_t n = 2;

	if (!on) {
		log_warning("-", "sandbox off process=worker");
		return 0;
	}
	snprintf(dirs[0].path, sizeof(dirs[0].path), "%s", spool);
	dirs[0].access = LL_RW;
	sandbox_maildir_root(maildir, dirs[1].path, sizeof(dirs[1].path));
	dirs[1].access = LL_RW;
	n = sandbox_add_proc(dirs, n);
	return sandbox_apply("worker", dirs, n, NULL, sandbox_worker_calls,
			     'w');
}

int
sandbox_guard(bool on, const char *users_file, const char *cfg_path,
	      const char *control_socket)
{
	static struct sandbox_dir dirs[4];
	size_t n = 0;

	if (!on) {
		log_warning("-", "sandbox off process=guard");
		return 0;
	}
	if (users_file != NULL) {
		sandbox_dirname(users_file, dirs[n].path,
				sizeof(dirs[n].path));
		dirs[n++].access = LL_READ;
	}
	if (cfg_path != NULL) {
		sandbox_dirname(cfg_path, dirs[n].path, sizeof(dirs[n].path));
		dirs[n++].access = LL_READ;
	}
	if (control_socket != NULL) {
		sandbox_dirname(control_socket, dirs[n].path,
				sizeof(dirs[n].path));
		dirs[n++].access = LL_SOCKDIR;
	}
	n = sandbox_add_proc(dirs, n);
	return sandbox_apply("guard", dirs, n, NULL, sandbox_guard_calls, 'g');
}

int
sandbox_queue(bool on, const struct sandbox_queue_rules *rules)
{
	static struct sandbox_dir dirs[SANDBOX_QUEUE_RW + SANDBOX_QUEUE_READ +
				       2];
	struct sandbox_net net = {rules->ports, rules->n_ports};
	size_t n = 0;

	if (!on) {
		log_warning("-", "sandbox off process=queue");
		return 0;
	}
	for (size_t i = 0; i < SANDBOX_QUEUE_RW; i++) {
		if (rules->rw[i] == NULL)
			continue;
		snprintf(dirs[n].path, sizeof(dirs[n].path), "%s",
			 rules->rw[i]);
		dirs[n].optional = false;
		dirs[n++].access = LL_RW;
	}
	if (rules->maildir != NULL) {
		sandbox_maildir_root(rules->maildir, dirs[n].path,
				     sizeof(dirs[n].path));
		dirs[n].optional = false;
		dirs[n++].access = LL_RW;
	}
	for (size_t i = 0; i < SANDBOX_QUEUE_READ; i++) {
		if (rules->read[i] == NULL)
			continue;
		snprintf(dirs[n].path, sizeof(dirs[n].path), "%s",
			 rules->read[i]);
		dirs[n].optional = true;
		dirs[n++].access = LL_READ;
	}
	n = sandbox_add_proc(dirs, n);
	return sandbox_apply("queue", dirs, n, &net, sandbox_queue_calls,
			     'q');
}

int
sandbox_metrics(bool on)
{
	static struct sandbox_dir dirs[1];
	size_t n;

	if (!on) {
		log_warning("-", "sandbox off process=metrics");
		return 0;
	}
	/* No file at all: the mapping is open already. */
	n = sandbox_add_proc(dirs, 0);
	return sandbox_apply("metrics", dirs, n, NULL, sandbox_worker_calls,
			     'w');
}
