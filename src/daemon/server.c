/*
 * server.c - the master's life: start-up (directories, listeners, TLS,
 * the metrics file), the signal loop, SIGHUP reload, the end. Its
 * children are started, restarted and stopped by master.c. See server.h.
 */
#include "daemon/server.h"

#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth/guard.h"
#include "metrics/metrics.h"
#include "metrics/metrics_http.h"
#include "lib/log.h"
#include "daemon/accounts.h"
#include "daemon/dirs.h"
#include "daemon/master.h"
#include "daemon/worker.h"
#include "daemon/tls.h"

static int
server_bind(struct config_listener *l, const char **error_r)
{
	int fd, on = 1;

	fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
						 SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (l->addr.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&l->addr, l->addr_len) < 0 ||
	    listen(fd, 1024) < 0) {
		*error_r = strerror(errno);
		close(fd);
		return -1;
	}
	return fd;
}

/* Bind the listeners of `cfg`, reusing sockets of `old` that listen on the
   same address (a reload must not drop connections waiting in the
   backlog). Returns 0, or -1 with every new socket closed. */
static int
server_bind_all(const struct config *cfg, struct worker_listener *old,
		size_t n_old, struct worker_listener **out_r)
{
	struct worker_listener *out = calloc(cfg->n_listeners + 1,
					     sizeof(*out));

	if (out == NULL)
		return -1;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const char *err = NULL;

		out[i].conf = cfg->listeners[i];
		out[i].fd = -1;
		for (size_t j = 0; j < n_old; j++) {
			if (old[j].fd >= 0 &&
			    old[j].conf.addr_len == out[i].conf.addr_len &&
			    memcmp(&old[j].conf.addr, &out[i].conf.addr,
				   out[i].conf.addr_len) == 0) {
				out[i].fd = old[j].fd;
				old[j].fd = -1;
				break;
			}
		}
		if (out[i].fd < 0)
			out[i].fd = server_bind(&out[i].conf, &err);
		if (out[i].fd < 0) {
			log_error("-", "listen addr=%s error=\"%s\"",
				  out[i].conf.addr_text, err);
			for (size_t k = 0; k < i; k++)
				close(out[k].fd);
			free(out);
			return -1;
		}
	}
	*out_r = out;
	return 0;
}

static void
master_signal(int sig)
{
	if (master_self == NULL)
		return;
	if (sig == SIGCHLD)
		master_self->got_chld = 1;
	else if (sig == SIGHUP)
		master_self->got_hup = 1;
	else
		master_self->got_term = 1;
}

/* The shared counters, before any child (the group of admin-group may
   read them: `postern status`), and the endpoint's socket when one is
   configured (its process starts after the others). */
static int
master_start_metrics(struct master *m)
{
	const struct config *cfg = m->cfg;
	struct group *gr = cfg->admin_group != NULL
			       ? getgrnam(cfg->admin_group)
			       : NULL;
	const char *err = NULL;
	char path[4096];

	m->metrics_fd = -1;
	if (metrics_path(cfg->control_socket, path, sizeof(path)) < 0 ||
	    metrics_create(path, gr != NULL ? (long)gr->gr_gid : -1,
			   &m->metrics, &err) < 0) {
		log_error("-", "metrics file=%s error=\"%s\"", path,
			  err != NULL ? err : "path too long");
		return -1;
	}
	metrics_attach(m->metrics, METRICS_SLOT_MASTER);
	metrics_gauge_set(MG_START_TIME, (int64_t)time(NULL));
	if (cfg->metrics_listen.addr_len == 0)
		return 0;
	m->metrics_fd = metrics_http_bind(&cfg->metrics_listen, &err);
	if (m->metrics_fd < 0) {
		log_error("-", "listen addr=%s error=\"%s\"",
			  cfg->metrics_listen.addr_text, err);
		return -1;
	}
	log_info("-", "listening addr=%s role=metrics",
		 cfg->metrics_listen.addr_text);
	return 0;
}

/* Log each line of `text` (errors collected in memory) as one event;
   `text` is modified. */
static void
master_log_lines(const char *event, char *text)
{
	for (char *line = text, *nl; line != NULL && *line != '\0';
	     line = nl) {
		nl = strchr(line, '\n');
		if (nl != NULL)
			*nl++ = '\0';
		log_error("-", "%s error=\"%s\"", event, line);
	}
}

/* Build the TLS contexts of `cfg` (NULL when it has no certificate). */
static int
master_load_tls(const struct config *cfg, const unsigned char *secret,
		struct tls_server **tls_r)
{
	char *errs = NULL;
	size_t errs_len = 0;
	FILE *ef;
	int rc = 0;

	*tls_r = NULL;
	if (cfg->n_certs == 0)
		return 0;
	ef = open_memstream(&errs, &errs_len);
	if (ef == NULL)
		return -1;
	rc = tls_server_new(cfg, secret, tls_r, ef);
	fclose(ef);
	if (rc < 0)
		master_log_lines("tls", errs);
	free(errs);
	return rc;
}

static void
master_announce(const struct master *m)
{
	for (size_t i = 0; i < m->n_listeners; i++) {
		printf("postern: listening on %s (%s)\n",
		       m->listeners[i].conf.addr_text,
		       config_role_name(m->listeners[i].conf.role));
		log_info("-", "listening addr=%s role=%s",
			 m->listeners[i].conf.addr_text,
			 config_role_name(m->listeners[i].conf.role));
	}
	fflush(stdout);
}

/* SIGHUP: a bad file is refused and the old configuration kept. */
static void
master_reload(struct master *m)
{
	struct config *cfg = NULL;
	struct worker_listener *ls = NULL;
	struct tls_server *tls = NULL;
	char *errs = NULL;
	size_t errs_len = 0;
	FILE *ef;
	int rc;

	if (m->path == NULL) {
		log_notice("-", "reload skipped reason=built-in-configuration");
		return;
	}
	ef = open_memstream(&errs, &errs_len);
	rc = config_load(m->path, &cfg, ef);
	fclose(ef);
	if (rc < 0) {
		master_log_lines("reload refused", errs);
		free(errs);
		return;
	}
	free(errs);
	if (master_load_tls(cfg, m->ticket_secret, &tls) < 0) {
		log_error("-", "reload refused error=\"tls\"");
		config_free(&cfg);
		return;
	}
	if (dirs_prepare(cfg) < 0 || accounts_control_dir(cfg) < 0 ||
	    server_bind_all(cfg, m->listeners, m->n_listeners, &ls) < 0) {
		log_error("-", "reload refused error=\"cannot apply\"");
		/* Give back the sockets moved into ls: none on failure. */
		tls_server_free(&tls);
		config_free(&cfg);
		return;
	}
	for (size_t i = 0; i < m->n_listeners; i++)
		if (m->listeners[i].fd >= 0)
			close(m->listeners[i].fd);
	free(m->listeners);
	m->listeners = ls;
	m->n_listeners = cfg->n_listeners;
	/* Old workers drain with the old configuration (their copy). */
	master_retire_workers(m);
	/* The old workers keep their copies (fork); the master's can go. */
	tls_server_free(&m->tls);
	m->tls = tls;
	config_free(&m->cfg);
	m->cfg = cfg;
	log_set_level(cfg->log_level);
	if (guard_send_reload(m->guard_fd) < 0)
		log_error("-", "guard error=\"reload not delivered\"");
	if (m->queue > 0)
		kill(m->queue, SIGTERM); /* master_reap starts it again */
	master_start_workers(m);
	log_notice("-", "reloaded file=%s workers=%u", m->path, m->n_workers);
	master_announce(m);
}

static void
server_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * Everything before the workers: directories, listeners, the daemon fork,
 * recovery of a previous run, TLS, the guard. 0, or -1 (logged); what was
 * made is freed by master_free().
 */

static int
master_start(struct master *m, bool foreground)
{
	const struct config *cfg = m->cfg;

	log_init("postern", foreground, cfg->log_level);
	server_raise_nofile();
	if (geteuid() == 0 && cfg->user == NULL)
		log_warning("-", "running as root: set `user` to the account "
				 "that owns the spool and the Maildirs");
	if (dirs_prepare(cfg) < 0 || accounts_control_dir(cfg) < 0)
		return -1;
	accounts_check(cfg);
	if (server_bind_all(cfg, NULL, 0, &m->listeners) < 0)
		return -1;
	m->n_listeners = cfg->n_listeners;
	if (!foreground && daemon(1, 0) < 0) {
		log_error("-", "daemon error=\"%s\"", strerror(errno));
		return -1;
	}
	/* Committed but undelivered messages from a previous run. */
	master_recover(cfg, NULL);
	if (getrandom(m->ticket_secret, sizeof(m->ticket_secret), 0) !=
		    sizeof(m->ticket_secret) ||
	    master_load_tls(cfg, m->ticket_secret, &m->tls) < 0)
		return -1;
	if (master_start_metrics(m) < 0)
		return -1;
	master_backoff_started(&m->gb, master_now_ms());
	if (master_spawn_guard(m) < 0 || master_start_queue(m) < 0)
		return -1;
	if (m->metrics_fd < 0)
		return 0;
	master_backoff_started(&m->mb, master_now_ms());
	return master_spawn_metrics(m);
}

static void
master_free(struct master *m)
{
	for (size_t i = 0; i < m->n_listeners; i++)
		if (m->listeners[i].fd >= 0)
			close(m->listeners[i].fd);
	free(m->listeners);
	m->listeners = NULL;
	tls_server_free(&m->tls);
	if (m->wake_wr > 0) {
		close(m->wake_rd);
		close(m->wake_wr);
	}
	config_free(&m->cfg);
	if (m->metrics_fd >= 0)
		close(m->metrics_fd);
	metrics_close(&m->metrics);
	munmap(m->shared, sizeof(*m->shared));
	master_self = NULL;
}

int
server_run(struct config *cfg, const char *path, bool foreground)
{
	struct master m;
	struct sigaction sa;
	sigset_t mask, old;

	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.path = path;
	m.metrics_fd = -1;
	m.shared = mmap(NULL, sizeof(*m.shared), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m.shared == MAP_FAILED) {
		perror("postern: mmap");
		config_free(&m.cfg);
		return 1;
	}
	master_self = &m;
	if (master_start(&m, foreground) < 0) {
		master_free(&m);
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = master_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, &old);

	master_start_workers(&m);
	master_announce(&m);
	log_notice("-", "started workers=%u config=%s", m.n_workers,
		   path ? path : "(built-in)");
	/* Signals are blocked but while waiting here, so each is acted on
	   between any two steps, in every state (issue 6 item 10). */
	while (!m.got_term) {
		struct timespec ts;

		ppoll(NULL, 0, master_next_wake(&m, &ts), &old);
		if (m.got_chld) {
			m.got_chld = 0;
			master_reap(&m);
		}
		if (m.got_term)
			break;
		if (m.got_hup) {
			m.got_hup = 0;
			master_reload(&m);
		}
		master_restart(&m);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	master_stop(&m);
	master_free(&m);
	return 0;
}
