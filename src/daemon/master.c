/*
 * master.c - the master's children: starting each kind (workers, guard,
 * queue, metrics endpoint), collecting the dead, restarting them with
 * back-off, and stopping them all. See master.h.
 */
#include "daemon/master.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth/guard.h"
#include "metrics/metrics.h"
#include "metrics/metrics_http.h"
#include "outbound/queue.h"
#include "lib/log.h"
#include "daemon/accounts.h"
#include "daemon/proc.h"
#include "store/spool.h"
#include "daemon/tls.h"

struct master *master_self;

/*
 * A child that dies within MASTER_STABLE_MS of its start died young: it
 * is restarted after a delay that doubles with each such death in a row,
 * from 1 s up to MASTER_BACKOFF_MAX_MS. One that lived longer is
 * restarted at once.
 */
#define MASTER_STABLE_MS 10000
#define MASTER_BACKOFF_MAX_MS 60000

int64_t
master_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
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

/* Recover spool areas in a child running as the worker account. */
void
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
int
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

/* First in a new queue or metrics process: forget the master, close the
   guard channel, the workers' end of the wake-up pipe and the listeners
   (each closes what else it must not hold). */
static void
master_child_close(struct master *m)
{
	master_self = NULL;
	if (m->guard_fd >= 0)
		close(m->guard_fd);
	close(m->wake_wr);
	for (size_t i = 0; i < m->n_listeners; i++)
		close(m->listeners[i].fd);
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
		master_child_close(m);
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
int
master_spawn_metrics(struct master *m)
{
	pid_t pid = fork();
	const char *err = NULL;

	if (pid < 0) {
		log_error("-", "fork error=\"%s\"", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		master_child_close(m);
		close(m->wake_rd);
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
void
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
void
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
void
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
void
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
struct timespec *
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

/* Send `sig` to every child but the guard, which stops last (the
   workers may ask it something until they are gone). */
static void
master_kill_children(const struct master *m, int sig)
{
	for (unsigned i = 0; i < m->n_workers; i++)
		if (m->workers[i] > 0)
			kill(m->workers[i], sig);
	for (unsigned i = 0; i < m->n_retired; i++)
		kill(m->retired[i], sig);
	if (m->queue > 0)
		kill(m->queue, sig);
	if (m->metrics_pid > 0)
		kill(m->metrics_pid, sig);
}

/* While stopping: collect the children that ended, each one's spool area
   recovered. Returns how many besides the guard are still alive. */
static unsigned
master_stop_collect(struct master *m)
{
	unsigned alive = 0;
	pid_t pid;
	int status;

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
	return alive + m->n_retired + (m->queue > 0) + (m->metrics_pid > 0);
}

void
master_stop(struct master *m)
{
	time_t deadline = time(NULL) + m->cfg->timeout_shutdown + 5;
	unsigned alive;

	log_notice("-", "stopping");
	for (size_t i = 0; i < m->n_listeners; i++) {
		close(m->listeners[i].fd);
		m->listeners[i].fd = -1;
	}
	master_kill_children(m, SIGTERM);
	do {
		alive = master_stop_collect(m);
		if (alive > 0) {
			struct timespec ts = {0, 50 * 1000 * 1000};

			nanosleep(&ts, NULL);
		}
	} while (alive > 0 && time(NULL) < deadline);
	if (alive > 0) {
		master_kill_children(m, SIGKILL);
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

/* The wake-up pipe (workers write, the queue process reads), then the
   queue process. */
int
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
