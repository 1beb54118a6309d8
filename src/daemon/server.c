/*
 * server.c - the master and its workers. See server.h.
 */
#include "daemon/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sys/random.h>

#include <grp.h>

#include "auth/guard.h"
#include "metrics/metrics.h"
#include "metrics/metrics_http.h"
#include "outbound/queue.h"
#include "lib/log.h"
#include "daemon/accounts.h"
#include "daemon/dirs.h"
#include "daemon/proc.h"
#include "daemon/worker.h"
#include "store/spool.h"
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

/* --- master ---------------------------------------------------------- */

/*
 * A child that dies within MASTER_STABLE_MS of its start died young: it
 * is restarted after a delay that doubles with each such death in a row,
 * from 1 s up to MASTER_BACKOFF_MAX_MS. One that lived longer is
 * restarted at once.
 */
#define MASTER_STABLE_MS 10000
#define MASTER_BACKOFF_MAX_MS 60000

/* The restart bookkeeping of one child (a worker's place or the guard). */
struct master_backoff {
	int64_t started; /* ms on the monotonic clock */
	unsigned streak; /* young deaths in a row */
	bool waiting;	 /* dead, to be restarted at `due` */
	int64_t due;	 /* ms on the monotonic clock */
};

struct master {
	struct config *cfg;
	const char *path;
	struct worker_listener *listeners;
	size_t n_listeners;
	pid_t workers[WORKER_MAX]; /* 0: dead (see wb) */
	struct master_backoff wb[WORKER_MAX];
	pid_t slot_pid[WORKER_SLOTS]; /* who counts in each shared slot */
	unsigned n_workers;
	pid_t retired[WORKER_MAX * 4]; /* asked to stop */
	unsigned n_retired;
	volatile sig_atomic_t got_chld, got_hup, got_term;
	struct master_backoff gb;     /* the guard's */
	struct worker_shared *shared; /* session counts (MAP_SHARED) */
	struct tls_server *tls;	    /* NULL when no certificate */
	unsigned char ticket_secret[32];
	pid_t guard;		    /* the guard process */
	int guard_fd;		    /* master's end of the guard channel */
	pid_t queue;		    /* the queue process (outbound) */
	struct master_backoff qb;   /* the queue process's */
	int wake_rd, wake_wr;	    /* workers wake the queue process */
	struct worker_env env[WORKER_SLOTS]; /* what each worker got */
	struct metrics_map *metrics; /* the shared counters (or NULL) */
	int metrics_fd;		     /* the endpoint's socket, or -1 */
	pid_t metrics_pid;	     /* the endpoint process */
	struct master_backoff mb;    /* its restarts */
};

static struct master *master_self;

static int64_t
master_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
master_backoff_started(struct master_backoff *b, int64_t now)
{
	b->started = now;
	b->waiting = false;
}

/* The child of `b` died (or could not be started) at `now`: schedule its
   restart. Returns the delay in ms. */
static int64_t
master_backoff_died(struct master_backoff *b, int64_t now)
{
	int64_t delay = 0;

	if (now - b->started < MASTER_STABLE_MS) {
		unsigned shift = b->streak < 6 ? b->streak : 6;

		b->streak++;
		delay = (int64_t)1000 << shift;
		if (delay > MASTER_BACKOFF_MAX_MS)
			delay = MASTER_BACKOFF_MAX_MS;
	} else {
		b->streak = 0;
	}
	b->waiting = true;
	b->due = now + delay;
	return delay;
}

/* Log why a child ended and when it comes back. */
static void
master_log_death(const char *what, pid_t pid, int index, int status,
		 const struct master_backoff *b, int64_t now, int64_t delay)
{
	char why[64], idx[32] = "";

	proc_exit_text(status, why, sizeof(why));
	if (index >= 0)
		snprintf(idx, sizeof(idx), " worker=%d", index);
	log_error("-", "%s died pid=%ld%s %s lived=%lld.%llds restart-in=%llds",
		  what, (long)pid, idx, why,
		  (long long)((now - b->started) / 1000),
		  (long long)((now - b->started) % 1000 / 100),
		  (long long)(delay / 1000));
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

/* Recover spool areas in a child running as the worker account. */
static void
master_recover(const struct config *cfg, const char *area)
{
	pid_t pid = fork();
	int status;

	if (pid < 0) {
		log_error("-", "recover error=\"%s\"", strerror(errno));
		return;
	}
	if (pid == 0) {
		const char *areas[2] = {area, NULL};
		int n;

		proc_reset_signals();
		if (proc_drop_privileges(cfg->user) < 0)
			_exit(2);
		n = spool_recover(cfg->spool, area ? areas : NULL,
				  cfg->hostname);
		if (n > 0)
			log_notice("-", "recovered messages=%d area=%s", n,
				   area ? area : "all");
		_exit(n < 0 ? 1 : 0);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

/* A dead worker's sessions are gone: take them off the shared count. */
static void
master_free_slot(struct master *m, pid_t pid)
{
	for (unsigned i = 0; i < WORKER_SLOTS; i++) {
		if (m->slot_pid[i] != pid)
			continue;
		atomic_fetch_sub(&m->shared->total,
				 atomic_exchange(&m->shared->slot[i], 0));
		metrics_slot_reset_gauges(m->metrics, i);
		m->slot_pid[i] = 0;
	}
}

static pid_t
master_spawn(struct master *m)
{
	unsigned slot = 0;
	pid_t pid;

	while (slot < WORKER_SLOTS && m->slot_pid[slot] != 0)
		slot++;
	if (slot == WORKER_SLOTS) {
		log_error("-", "fork error=\"no free worker slot\"");
		return -1;
	}
	{
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) <
		    0) {
			log_error("-", "socketpair error=\"%s\"",
				  strerror(errno));
			return -1;
		}
		/* sv[1] goes to the guard; sv[0] to the worker. */
		if (guard_send_worker_fd(m->guard_fd, sv[1]) < 0)
			log_error("-", "guard error=\"cannot hand over a "
				       "worker socket\"");
		close(sv[1]);
		m->env[slot].cfg = m->cfg;
		m->env[slot].listeners = m->listeners;
		m->env[slot].n_listeners = m->n_listeners;
		m->env[slot].shared = m->shared;
		m->env[slot].slot = slot;
		m->env[slot].tls = m->tls;
		m->env[slot].guard_fd = sv[0];
		m->env[slot].queue_wake_fd = m->wake_wr;
		m->env[slot].metrics = m->metrics;
	}
	pid = fork();
	if (pid < 0) {
		log_error("-", "fork error=\"%s\"", strerror(errno));
		close(m->env[slot].guard_fd);
		m->env[slot].guard_fd = -1;
		return -1;
	}
	if (pid == 0) {
		master_self = NULL;
		close(m->guard_fd);
		if (m->metrics_fd >= 0)
			close(m->metrics_fd);
		metrics_attach(m->metrics, slot);
		worker_main(&m->env[slot]);
	}
	close(m->env[slot].guard_fd);
	m->env[slot].guard_fd = -1;
	if (pid > 0)
		m->slot_pid[slot] = pid;
	return pid;
}

/* Start the guard process: it alone reads the users file. */
static int
master_spawn_guard(struct master *m)
{
	int sv[2], ctl;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		log_error("-", "socketpair error=\"%s\"", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		log_error("-", "fork error=\"%s\"", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		master_self = NULL;
		close(sv[0]);
		for (size_t i = 0; i < m->n_listeners; i++)
			close(m->listeners[i].fd);
		if (m->metrics_fd >= 0)
			close(m->metrics_fd);
		proc_reset_signals();
		/* The control socket is made while still root; then the
		   guard becomes its own account (docs/security.md). */
		ctl = guard_control_bind(m->cfg);
		if (proc_drop_privileges(accounts_guard(m->cfg)) < 0)
			_exit(2);
		metrics_attach(m->metrics, METRICS_SLOT_GUARD);
		guard_main(m->cfg, m->path, sv[1], ctl);
	}
	close(sv[1]);
	m->guard = pid;
	m->guard_fd = sv[0];
	return 0;
}

/* Start the queue process (outbound delivery, docs/outbound.md): it
   alone reads and changes <spool>/queue/. */
static int
master_spawn_queue(struct master *m)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_error("-", "fork error=\"%s\"", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		master_self = NULL;
		if (m->guard_fd >= 0)
			close(m->guard_fd);
		close(m->wake_wr);
		for (size_t i = 0; i < m->n_listeners; i++)
			close(m->listeners[i].fd);
		if (m->metrics_fd >= 0)
			close(m->metrics_fd);
		proc_reset_signals();
		if (proc_drop_privileges(m->cfg->user) < 0)
			_exit(2);
		metrics_attach(m->metrics, METRICS_SLOT_QUEUE);
		queue_main(m->cfg, m->wake_rd);
	}
	m->queue = pid;
	return 0;
}

/* Start the metrics endpoint (docs/metrics.md): the mapping read-only
   (opened again while root), then the workers' account, then the
   sandbox. */
static int
master_spawn_metrics(struct master *m)
{
	pid_t pid = fork();
	const char *err = NULL;

	if (pid < 0) {
		log_error("-", "fork error=\"%s\"", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		master_self = NULL;
		if (m->guard_fd >= 0)
			close(m->guard_fd);
		close(m->wake_wr);
		close(m->wake_rd);
		for (size_t i = 0; i < m->n_listeners; i++)
			close(m->listeners[i].fd);
		proc_reset_signals();
		if (metrics_reopen_readonly(m->metrics, &err) < 0) {
			log_error("-", "metrics error=\"%s\"", err);
			_exit(2);
		}
		if (proc_drop_privileges(m->cfg->user) < 0)
			_exit(2);
		metrics_http_main(m->metrics_fd, m->metrics, m->cfg->sandbox);
	}
	m->metrics_pid = pid;
	return 0;
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

static unsigned
master_worker_count(const struct config *cfg)
{
	long n = cfg->workers ? (long)cfg->workers
			      : sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	if (n > WORKER_MAX)
		n = WORKER_MAX;
	return (unsigned)n;
}

/* Start every worker afresh (start, reload, a new guard): the young
   deaths counted so far are forgotten. */
static void
master_start_workers(struct master *m)
{
	int64_t now = master_now_ms();

	m->n_workers = master_worker_count(m->cfg);
	for (unsigned i = 0; i < m->n_workers; i++) {
		m->wb[i].streak = 0;
		master_backoff_started(&m->wb[i], now);
		m->workers[i] = master_spawn(m);
		if (m->workers[i] < 0) {
			m->workers[i] = 0;
			master_backoff_died(&m->wb[i], now);
		}
	}
}

/* Ask every worker to finish its sessions and exit (SIGUSR1). */
static void
master_retire_workers(struct master *m)
{
	for (unsigned i = 0; i < m->n_workers; i++) {
		if (m->workers[i] <= 0)
			continue;
		kill(m->workers[i], SIGUSR1);
		if (m->n_retired < sizeof(m->retired) / sizeof(m->retired[0]))
			m->retired[m->n_retired++] = m->workers[i];
		m->workers[i] = 0;
	}
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

static bool
master_forget_retired(struct master *m, pid_t pid)
{
	for (unsigned i = 0; i < m->n_retired; i++) {
		if (m->retired[i] == pid) {
			m->retired[i] = m->retired[--m->n_retired];
			return true;
		}
	}
	return false;
}

/* The guard died: a new one is due after its back-off (master_restart). */
static void
master_guard_died(struct master *m, int status, int64_t now)
{
	int64_t delay = m->got_term ? 0 : master_backoff_died(&m->gb, now);

	master_log_death("guard", m->guard, -1, status, &m->gb, now, delay);
	metrics_slot_reset_gauges(m->metrics, METRICS_SLOT_GUARD);
	close(m->guard_fd);
	m->guard_fd = -1;
	m->guard = 0;
}

/* The queue process ended: after a reload (exit 0 on our SIGTERM) it
   comes back at once with the new configuration; a death gets the
   back-off of the other children (master_restart). */
static void
master_queue_ended(struct master *m, int status, int64_t now)
{
	pid_t pid = m->queue;

	m->queue = 0;
	metrics_slot_reset_gauges(m->metrics, METRICS_SLOT_QUEUE);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		m->qb.waiting = true;
		m->qb.due = now;
		return;
	}
	master_log_death("queue", pid, -1, status, &m->qb, now,
			 m->got_term ? 0 : master_backoff_died(&m->qb, now));
}

static int
master_worker_index(const struct master *m, pid_t pid)
{
	for (unsigned i = 0; i < m->n_workers; i++)
		if (m->workers[i] == pid)
			return (int)i;
	return -1;
}

/*
 * Collect every child that ended. Nothing waits here: a dead worker's
 * spool area is recovered, and its restart is scheduled with back-off
 * (master_restart starts it when due), so that signals are looked at
 * between any two deaths however fast workers die.
 */
static void
master_reap(struct master *m)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		int64_t now = master_now_ms();
		char area[32];
		int i;

		snprintf(area, sizeof(area), "%ld", (long)pid);
		if (pid == m->guard) {
			master_guard_died(m, status, now);
			continue;
		}
		if (pid == m->queue) {
			master_queue_ended(m, status, now);
			continue;
		}
		if (pid == m->metrics_pid) {
			m->metrics_pid = 0;
			master_log_death("metrics", pid, -1, status, &m->mb, now,
					 m->got_term ? 0 : master_backoff_died(
							       &m->mb, now));
			continue;
		}
		master_free_slot(m, pid);
		i = master_worker_index(m, pid);
		if (master_forget_retired(m, pid) || m->got_term || i < 0) {
			master_recover(m->cfg, area);
			continue;
		}
		m->workers[i] = 0;
		metrics_add(MC_RESTARTS, 1);
		master_log_death("worker", pid, i, status, &m->wb[i], now,
				 master_backoff_died(&m->wb[i], now));
		/* Finish what it committed before its place is taken. */
		master_recover(m->cfg, area);
	}
}

/*
 * Start the children whose back-off is over. A new guard replaces every
 * worker (their guard sockets led to the dead one; the old workers finish
 * their sessions); while the guard is away, workers wait for it.
 */
static void
master_restart(struct master *m)
{
	int64_t now = master_now_ms();

	if (m->queue == 0 && m->qb.waiting && now >= m->qb.due &&
	    !m->got_term) {
		master_backoff_started(&m->qb, now);
		if (master_spawn_queue(m) < 0)
			master_backoff_died(&m->qb, now);
	}
	if (m->metrics_fd >= 0 && m->metrics_pid == 0 && m->mb.waiting &&
	    now >= m->mb.due && !m->got_term) {
		master_backoff_started(&m->mb, now);
		if (master_spawn_metrics(m) < 0)
			master_backoff_died(&m->mb, now);
	}
	if (m->guard == 0) {
		if (!m->gb.waiting || now < m->gb.due)
			return;
		master_backoff_started(&m->gb, now);
		if (master_spawn_guard(m) < 0) {
			master_backoff_died(&m->gb, now);
			return;
		}
		master_retire_workers(m);
		master_start_workers(m);
		return;
	}
	for (unsigned i = 0; i < m->n_workers; i++) {
		if (m->workers[i] > 0 || !m->wb[i].waiting || now < m->wb[i].due)
			continue;
		master_backoff_started(&m->wb[i], now);
		m->workers[i] = master_spawn(m);
		if (m->workers[i] < 0) {
			m->workers[i] = 0;
			master_backoff_died(&m->wb[i], now);
		}
	}
}

/* How long the master may sleep: until the next restart is due (NULL:
   until a signal). */
static struct timespec *
master_next_wake(const struct master *m, struct timespec *ts)
{
	int64_t now = master_now_ms(), due = -1;

	if (m->guard == 0 && m->gb.waiting)
		due = m->gb.due;
	if (m->queue == 0 && m->qb.waiting && (due < 0 || m->qb.due < due))
		due = m->qb.due;
	if (m->metrics_fd >= 0 && m->metrics_pid == 0 && m->mb.waiting &&
	    (due < 0 || m->mb.due < due))
		due = m->mb.due;
	for (unsigned i = 0; m->guard != 0 && i < m->n_workers; i++)
		if (m->workers[i] <= 0 && m->wb[i].waiting &&
		    (due < 0 || m->wb[i].due < due))
			due = m->wb[i].due;
	if (due < 0)
		return NULL;
	due = due > now ? due - now : 0;
	ts->tv_sec = (time_t)(due / 1000);
	ts->tv_nsec = (long)(due % 1000) * 1000000;
	return ts;
}

static void
master_stop(struct master *m)
{
	time_t deadline = time(NULL) + m->cfg->timeout_shutdown + 5;
	unsigned alive;

	log_notice("-", "stopping");
	for (size_t i = 0; i < m->n_listeners; i++) {
		close(m->listeners[i].fd);
		m->listeners[i].fd = -1;
	}
	for (unsigned i = 0; i < m->n_workers; i++)
		if (m->workers[i] > 0)
			kill(m->workers[i], SIGTERM);
	for (unsigned i = 0; i < m->n_retired; i++)
		kill(m->retired[i], SIGTERM);
	if (m->queue > 0)
		kill(m->queue, SIGTERM);
	if (m->metrics_pid > 0)
		kill(m->metrics_pid, SIGTERM);
	do {
		pid_t pid;
		int status;

		alive = 0;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			char area[32];

			snprintf(area, sizeof(area), "%ld", (long)pid);
			master_recover(m->cfg, area);
			for (unsigned i = 0; i < m->n_workers; i++)
				if (m->workers[i] == pid)
					m->workers[i] = 0;
			if (pid == m->guard)
				m->guard = 0;
			if (pid == m->queue)
				m->queue = 0;
			if (pid == m->metrics_pid)
				m->metrics_pid = 0;
			master_forget_retired(m, pid);
		}
		for (unsigned i = 0; i < m->n_workers; i++)
			if (m->workers[i] > 0)
				alive++;
		alive += m->n_retired + (m->queue > 0) + (m->metrics_pid > 0);
		if (alive > 0) {
			struct timespec ts = {0, 50 * 1000 * 1000};

			nanosleep(&ts, NULL);
		}
	} while (alive > 0 && time(NULL) < deadline);
	if (alive > 0) {
		for (unsigned i = 0; i < m->n_workers; i++)
			if (m->workers[i] > 0)
				kill(m->workers[i], SIGKILL);
		for (unsigned i = 0; i < m->n_retired; i++)
			kill(m->retired[i], SIGKILL);
		if (m->queue > 0)
			kill(m->queue, SIGKILL);
		if (m->metrics_pid > 0)
			kill(m->metrics_pid, SIGKILL);
		if (m->guard > 0)
			kill(m->guard, SIGKILL);
		while (waitpid(-1, NULL, 0) > 0)
			;
		master_recover(m->cfg, NULL);
	}
	if (m->guard > 0) {
		kill(m->guard, SIGTERM);
		while (waitpid(m->guard, NULL, 0) < 0 && errno == EINTR)
			;
	}
	/* The guard, as its own account, cannot remove it (root's
	   directory). */
	if (m->cfg->control_socket != NULL)
		unlink(m->cfg->control_socket);
	tls_server_free(&m->tls);
	log_notice("-", "stopped");
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
/* The wake-up pipe (workers write, the queue process reads), then the
   queue process. */
static int
master_start_queue(struct master *m)
{
	int wake[2];

	if (pipe2(wake, O_CLOEXEC) < 0) {
		log_error("-", "pipe error=\"%s\"", strerror(errno));
		return -1;
	}
	m->wake_rd = wake[0];
	m->wake_wr = wake[1];
	fcntl(m->wake_wr, F_SETFL, O_NONBLOCK); /* workers never wait */
	master_backoff_started(&m->qb, master_now_ms());
	return master_spawn_queue(m);
}

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
