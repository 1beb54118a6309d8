/*
 * queue_sandbox.c - the queue process's sandbox (lib/sandbox.h), made
 * from the configuration once the process is set up (queue_main), and,
 * in test builds only (-Dtest_hooks=true), the compromised-queue hook of
 * tests/integration/test_sandbox_queue.py. docs/security.md, "Sandboxes".
 *
 * What it keeps: read/write beneath <spool>/queue (entries, journal,
 * control socket, the MTA-STS cache) and <spool>/quarantine, and beneath
 * the Maildir root (bounces and delay notices, dsn.c via
 * queue_result.c); read of the DNS trust anchor, /etc/resolv.conf,
 * outbound-tls-ca and the system's CA store (verified relay hosts,
 * `verify`, MTA-STS); TCP connect to 25, 465, 587, 443 (MTA-STS
 * policies), 53 (DNS over TCP), each `transport` and `relay-host` port
 * and each `dns-resolver` port.
 */
#include "outbound/queue_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/log.h"
#include "lib/sandbox.h"

#ifdef POSTERN_TEST_HOOKS
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

/* The system's CA store and OpenSSL's directory (Debian's layout). */
static const char *const qsb_ca_paths[] = {
    "/etc/ssl", "/usr/lib/ssl", "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates", "/etc/resolv.conf", NULL};

static void
qsb_port(struct sandbox_queue_rules *r, unsigned port)
{
	for (size_t i = 0; i < r->n_ports; i++)
		if (r->ports[i] == port)
			return;
	if (port > 0 && port < 65536 && r->n_ports < SANDBOX_QUEUE_PORTS)
		r->ports[r->n_ports++] = port;
	else if (port > 0)
		log_warning("-", "sandbox queue ports=%d error=\"too many "
				 "ports\" port=%u not allowed",
			    SANDBOX_QUEUE_PORTS, port);
}

/* "ADDR" or "ADDR@PORT" (config.h: dns_resolvers). */
static unsigned
qsb_resolver_port(const char *s)
{
	const char *at = strrchr(s, '@');

	return at != NULL ? (unsigned)strtoul(at + 1, NULL, 10) : 53;
}

/* The rules of this configuration; `paths` holds the strings. */
static void
qsb_rules(const struct config *cfg, struct sandbox_queue_rules *r,
	  char paths[2][4200])
{
	static const unsigned fixed[] = {25, 465, 587, 443, 53};
	size_t k = 0;

	memset(r, 0, sizeof(*r));
	snprintf(paths[0], sizeof(paths[0]), "%s/queue", cfg->spool);
	snprintf(paths[1], sizeof(paths[1]), "%s/quarantine", cfg->spool);
	(void)mkdir(paths[1], 0700); /* renamed into: must exist now */
	r->rw[0] = paths[0];
	r->rw[1] = paths[1];
	r->maildir = cfg->maildir;
	r->read[k++] = cfg->dns_trust_anchor;
	r->read[k++] = cfg->outbound_tls_ca;
	r->read[k++] = getenv("SSL_CERT_FILE");
	r->read[k++] = getenv("SSL_CERT_DIR");
	for (size_t i = 0; qsb_ca_paths[i] != NULL; i++)
		r->read[k++] = qsb_ca_paths[i];
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		qsb_port(r, fixed[i]);
	for (size_t i = 0; i < cfg->n_transports; i++)
		qsb_port(r, cfg->transports[i].port);
	if (cfg->relay_host != NULL)
		qsb_port(r, cfg->relay_host->port);
	for (size_t i = 0; i < cfg->n_dns_resolvers; i++)
		qsb_port(r, qsb_resolver_port(cfg->dns_resolvers[i]));
}

#ifdef POSTERN_TEST_HOOKS
/* The compromised queue process: $POSTERN_TEST_QUEUE_ATTACK names a file
   of "outside PATH", "port N" (a listener on a port the queue may not
   connect to), "smtp-port N" (one it may: a transport's) lines, or
   "violate". Each attempt runs in a child that installs the very
   sandbox first; lines as the worker's hook (daemon/sandbox_test.c):
     test-attack attempt=NAME result=denied errno=EACCES
     test-attack attempt=NAME result=ALLOWED
     test-attack attempt=NAME exit=signal=SYS | exit=status=N */
struct qsb_attack {
	char outside[1024];
	int port, smtp_port;
	bool violate;
};

static int
qsb_tcp(int port, bool do_bind)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (do_bind)
		return bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	return connect(fd, (struct sockaddr *)&sin, sizeof(sin));
}

static int
qsb_write(const char *path, bool keep)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	if (write(fd, "pwned\n", 6) != 6)
		return -1;
	close(fd);
	return keep ? 0 : unlink(path);
}

static int
qsb_do(const struct config *cfg, const struct qsb_attack *a,
       const char *name)
{
	char path[4300];

	if (strcmp(name, "write-queue") == 0) {
		snprintf(path, sizeof(path), "%s/queue/test-attack", cfg->spool);
		return qsb_write(path, false);
	}
	if (strcmp(name, "write-outside") == 0)
		return qsb_write(a->outside, true);
	if (strcmp(name, "write-spool") == 0) { /* the workers' area */
		snprintf(path, sizeof(path), "%s/test-attack", cfg->spool);
		return qsb_write(path, true);
	}
	if (strcmp(name, "read-users") == 0)
		return open(cfg->users_file ? cfg->users_file : "/etc/shadow",
			    O_RDONLY | O_CLOEXEC);
	if (strcmp(name, "connect-smtp") == 0)
		return qsb_tcp(a->smtp_port, false);
	if (strcmp(name, "connect-other") == 0)
		return qsb_tcp(a->port, false);
	if (strcmp(name, "bind-tcp") == 0)
		return qsb_tcp(0, true);
	if (strcmp(name, "unix-stream") == 0)
		return socket(AF_UNIX, SOCK_STREAM, 0);
	if (strcmp(name, "kill-master") == 0)
		return kill(getppid(), 0);
	if (strcmp(name, "ptrace-master") == 0)
		return (int)ptrace(PTRACE_ATTACH, getppid(), 0, 0);
	if (strcmp(name, "mmap-exec") == 0)
		return mmap(NULL, 4096, PROT_READ | PROT_EXEC,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED
			   ? -1
			   : 0;
	{
		char *argv[] = {"/bin/sh", "-c", "exit 0", NULL};

		return execv("/bin/sh", argv); /* exec-shell */
	}
}

static void
qsb_one(const struct config *cfg, const struct qsb_attack *a,
	const struct sandbox_queue_rules *r, const char *name)
{
	int status, rc;
	pid_t pid = fork();

	if (pid < 0)
		return;
	if (pid == 0) {
		if (sandbox_queue(cfg->sandbox, r) < 0)
			_exit(3);
		errno = 0;
		rc = qsb_do(cfg, a, name);
		if (rc < 0)
			log_notice("-", "test-attack attempt=%s result=denied "
					"errno=%s",
				   name, strerrorname_np(errno));
		else
			log_notice("-", "test-attack attempt=%s result=ALLOWED",
				   name);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status))
		log_notice("-", "test-attack attempt=%s exit=signal=%s", name,
			   sigabbrev_np(WTERMSIG(status)));
	else
		log_notice("-", "test-attack attempt=%s exit=status=%d", name,
			   WEXITSTATUS(status));
}

static bool
qsb_attack_read(struct qsb_attack *a)
{
	const char *file = getenv("POSTERN_TEST_QUEUE_ATTACK");
	char line[1200];
	FILE *f;

	if (file == NULL || (f = fopen(file, "re")) == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "outside ", 8) == 0)
			snprintf(a->outside, sizeof(a->outside), "%s", line + 8);
		else if (strncmp(line, "port ", 5) == 0)
			a->port = (int)strtol(line + 5, NULL, 10);
		else if (strncmp(line, "smtp-port ", 10) == 0)
			a->smtp_port = (int)strtol(line + 10, NULL, 10);
		else if (strcmp(line, "violate") == 0)
			a->violate = true;
	}
	fclose(f);
	return true;
}

static void
qsb_attack(const struct config *cfg, const struct sandbox_queue_rules *r,
	   struct qsb_attack *a)
{
	static const char *const names[] = {
	    "write-queue", "write-outside", "write-spool", "read-users",
	    "connect-smtp", "connect-other", "bind-tcp", "unix-stream",
	    "kill-master", "ptrace-master", "mmap-exec", "exec-shell"};

	if (!qsb_attack_read(a) || a->violate)
		return;
	log_notice("-", "test-attack start process=queue pid=%ld",
		   (long)getpid());
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		qsb_one(cfg, a, r, names[i]);
	log_notice("-", "test-attack done process=queue pid=%ld",
		   (long)getpid());
}
#endif

int
queue_sandbox(struct queue *q)
{
	static char paths[2][4200];
	struct sandbox_queue_rules r;
	int rc;

	qsb_rules(q->cfg, &r, paths);
#ifdef POSTERN_TEST_HOOKS
	struct qsb_attack a = {.port = 0};

	qsb_attack(q->cfg, &r, &a);
#endif
	rc = sandbox_queue(q->cfg->sandbox, &r);
#ifdef POSTERN_TEST_HOOKS
	if (rc == 0 && a.violate) {
		log_notice("-", "test-attack violate process=queue pid=%ld",
			   (long)getpid());
		syscall(SYS_getppid); /* on no allow-list: SIGSYS */
		log_error("-", "test-attack violate result=ALLOWED");
	}
#endif
	return rc;
}
