/*
 * sandbox_test.c - the compromised worker of tests/integration/
 * test_sandbox.py. Compiled only with meson -Dtest_hooks=true (the
 * Makefile's build-test); a release build has none of it.
 *
 * When $POSTERN_TEST_ATTACK names a file that exists, the worker (done
 * with its setup, not yet sandboxed) forks one child per attempt; each
 * child installs the very sandbox the worker is about to install
 * (sandbox_worker) and then makes the attempt. A denial by errno
 * (Landlock, permissions) is logged by the child; a call seccomp forbids
 * kills the child with SIGSYS, which the worker logs. Lines:
 *   test-attack attempt=NAME result=denied errno=EACCES   (the child)
 *   test-attack attempt=NAME result=ALLOWED               (the child)
 *   test-attack attempt=NAME exit=signal=SYS              (the worker)
 * The file holds "guard-pid N", "outside PATH" and "port N" lines; a
 * "violate" line instead makes the worker itself, once sandboxed, make a
 * forbidden call (sandbox_test_violate): the master must see signal=SYS.
 */
#include "daemon/sandbox_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/proc.h"
#include "lib/log.h"
#include "lib/sandbox.h"

static bool attack_violate;

struct attack {
	const struct config *cfg;
	long guard_pid;
	char outside[1024];
	int port;
};

static void
attack_result(const char *name, int rc)
{
	if (rc < 0)
		log_notice("-", "test-attack attempt=%s result=denied errno=%s",
			   name, strerrorname_np(errno));
	else
		log_notice("-", "test-attack attempt=%s result=ALLOWED", name);
}

static int
attack_connect_unix(const char *path, int type)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return -1;
	return fd;
}

static int
attack_connect_tcp(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return connect(fd, (struct sockaddr *)&sin, sizeof(sin));
}

static int
attack_write(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return -1;
	if (write(fd, "pwned\n", 6) != 6)
		return -1;
	return close(fd);
}

/* One attempt, by name, in a sandboxed child. */
static int
attack_do(const struct attack *a, const char *name)
{
	char path[1200];

	if (strcmp(name, "read-users") == 0)
		return open(a->cfg->users_file ? a->cfg->users_file : "/",
			    O_RDONLY | O_CLOEXEC);
	if (strcmp(name, "control-stream") == 0)
		return attack_connect_unix(a->cfg->control_socket, SOCK_STREAM);
	if (strcmp(name, "control-dgram") == 0)
		return attack_connect_unix(a->cfg->control_socket, SOCK_DGRAM);
	if (strcmp(name, "ptrace-guard") == 0)
		return (int)ptrace(PTRACE_ATTACH, (pid_t)a->guard_pid, 0, 0);
	if (strcmp(name, "kill-guard") == 0)
		return kill((pid_t)a->guard_pid, SIGTERM);
	if (strcmp(name, "write-outside") == 0)
		return attack_write(a->outside);
	if (strcmp(name, "exec-shell") == 0) {
		char *argv[] = {"/bin/sh", "-c", "exit 0", NULL};

		return execv("/bin/sh", argv);
	}
	if (strcmp(name, "connect-tcp") == 0)
		return attack_connect_tcp(a->port);
	if (strcmp(name, "mmap-exec") == 0)
		return mmap(NULL, 4096, PROT_READ | PROT_EXEC,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED
			   ? -1
			   : 0;
	/* The control: the spool stays writable. */
	snprintf(path, sizeof(path), "%s/test-attack-probe", a->cfg->spool);
	if (attack_write(path) < 0)
		return -1;
	return unlink(path);
}

static void
attack_one(const struct attack *a, const char *name)
{
	char text[64];
	int status;
	pid_t pid = fork();

	if (pid < 0) {
		log_error("-", "test-attack error=\"fork: %s\"", strerror(errno));
		return;
	}
	if (pid == 0) {
		if (sandbox_worker(a->cfg->sandbox, a->cfg->spool,
				   a->cfg->maildir) < 0)
			_exit(3);
		errno = 0;
		attack_result(name, attack_do(a, name));
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	log_notice("-", "test-attack attempt=%s exit=%s", name,
		   proc_exit_text(status, text, sizeof(text)));
}

static void
attack_read(const char *file, struct attack *a)
{
	char line[1200];
	FILE *f = fopen(file, "re");

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "guard-pid ", 10) == 0)
			a->guard_pid = strtol(line + 10, NULL, 10);
		else if (strncmp(line, "outside ", 8) == 0)
			snprintf(a->outside, sizeof(a->outside), "%s", line + 8);
		else if (strncmp(line, "port ", 5) == 0)
			a->port = (int)strtol(line + 5, NULL, 10);
		else if (strcmp(line, "violate") == 0)
			attack_violate = true;
	}
	fclose(f);
}

void
sandbox_test_attack(const struct config *cfg)
{
	static const char *const names[] = {
	    "write-spool", "read-users", "control-stream", "control-dgram",
	    "ptrace-guard", "kill-guard", "write-outside", "exec-shell",
	    "connect-tcp", "mmap-exec"};
	const char *file = getenv("POSTERN_TEST_ATTACK");
	struct attack a = {.cfg = cfg};

	if (file == NULL || access(file, R_OK) != 0)
		return;
	attack_read(file, &a);
	if (attack_violate)
		return;
	if (a.guard_pid <= 1 || a.outside[0] == '\0' || a.port <= 0) {
		log_error("-", "test-attack error=\"incomplete file\"");
		return;
	}
	log_notice("-", "test-attack start pid=%ld", (long)getpid());
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		attack_one(&a, names[i]);
	log_notice("-", "test-attack done pid=%ld", (long)getpid());
}

void
sandbox_test_violate(void)
{
	if (!attack_violate)
		return;
	log_notice("-", "test-attack violate pid=%ld", (long)getpid());
	syscall(SYS_getppid); /* on no allow-list: SIGSYS */
	log_error("-", "test-attack violate result=ALLOWED");
}
