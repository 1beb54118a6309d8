/*
 * guard_pool.c - the guard's password hashing threads (DESIGN.md: a KDF
 * never blocks an event loop). The loop queues jobs, one queue per client
 * network served in turn (guard_fair.c), so that one network's guesses do
 * not make every other login wait; a thread takes the next job, verifies
 * it (users_verify, or a dummy for an unknown user) and puts it on the
 * done list; an eventfd wakes the loop, which hands each finished job to
 * the guard's `done` callback.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/guard_fair.h"
#include "auth/guard_int.h"
#include "auth/users.h"
#include "lib/log.h"
#include "metrics/metrics.h"

#define GUARD_POOL_QUEUE_MAX 4096 /* jobs waiting for a thread */
#define GUARD_POOL_THREADS_MAX 64

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct guard_fair *queue;
	struct guard_job *done;
	int efd;
	struct event *efd_ev;
	guard_pool_done_fn *done_fn;
} P;

/*
 * Verify one job. An unknown user costs a verification against a dummy
 * with the scheme and cost of a real entry (or the default dummy); its
 * verdict is 0 whatever the dummy's: it can never log in.
 */
static void
guard_pool_verify(struct guard_job *j)
{
	int r;

	if (j->hash == NULL) {
		users_verify_dummy(j->pass, j->pass_len);
		j->verdict = 0;
	} else if (j->is_dummy) {
		r = users_verify(j->hash, j->pass, j->pass_len);
		(void)r; /* only the time matters */
		j->verdict = 0;
	} else {
		j->verdict = users_verify(j->hash, j->pass, j->pass_len);
	}
}

static void *
guard_pool_thread(void *arg)
{
	uint64_t one = 1;

	(void)arg;
	for (;;) {
		struct guard_job *j;

		double t0;

		pthread_mutex_lock(&P.mu);
		while ((j = guard_fair_pop(P.queue)) == NULL)
			pthread_cond_wait(&P.cv, &P.mu);
		metrics_gauge_set(MG_HASH_QUEUE,
				  (int64_t)guard_fair_count(P.queue));
		pthread_mutex_unlock(&P.mu);

		t0 = metrics_now();
		guard_pool_verify(j);
		metrics_observe(MH_GUARD_VERIFY, metrics_now() - t0);

		pthread_mutex_lock(&P.mu);
		j->next = P.done;
		P.done = j;
		pthread_mutex_unlock(&P.mu);
		if (write(P.efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			abort(); /* the loop could never hear of it */
	}
	return NULL;
}

/* The eventfd fired: take the done list and hand each job back. */
static void
guard_pool_efd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct guard_job *list, *next;
	uint64_t v;

	(void)what;
	(void)arg;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_error(GUARD_SID, "eventfd error=\"%s\"", strerror(errno));
	pthread_mutex_lock(&P.mu);
	list = P.done;
	P.done = NULL;
	pthread_mutex_unlock(&P.mu);
	for (; list != NULL; list = next) {
		next = list->next;
		P.done_fn(list);
	}
}

static int
guard_pool_threads(long n)
{
	pthread_t t;
	sigset_t all, old;

	if (n == 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > GUARD_POOL_THREADS_MAX)
		n = GUARD_POOL_THREADS_MAX;
	/* Threads take no signals: the loop's thread handles them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (long i = 0; i < n; i++)
		if (pthread_create(&t, NULL, guard_pool_thread, NULL) != 0) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			return i > 0 ? 0 : -1;
		} else {
			pthread_detach(t);
		}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	log_info(GUARD_SID, "pool threads=%ld", n);
	return 0;
}

int
guard_pool_start(struct event_base *base, long n_threads, size_t net_max,
		 guard_pool_done_fn *done)
{
	memset(&P, 0, sizeof(P));
	P.done_fn = done;
	P.queue = guard_fair_new(GUARD_POOL_QUEUE_MAX, net_max);
	if (P.queue == NULL)
		return -1;
	pthread_mutex_init(&P.mu, NULL);
	pthread_cond_init(&P.cv, NULL);
	P.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (P.efd < 0)
		return -1;
	P.efd_ev = event_new(base, P.efd, EV_READ | EV_PERSIST,
			     guard_pool_efd_cb, NULL);
	if (P.efd_ev == NULL || event_add(P.efd_ev, NULL) < 0)
		return -1;
	return guard_pool_threads(n_threads);
}

void
guard_pool_set_net_max(size_t net_max)
{
	pthread_mutex_lock(&P.mu);
	guard_fair_set_net_max(P.queue, net_max);
	pthread_mutex_unlock(&P.mu);
}

enum guard_fair_result
guard_pool_submit(struct guard_job *j)
{
	enum guard_fair_result r;

	pthread_mutex_lock(&P.mu);
	r = guard_fair_push(P.queue, j);
	metrics_gauge_set(MG_HASH_QUEUE, (int64_t)guard_fair_count(P.queue));
	if (r == GUARD_FAIR_OK)
		pthread_cond_signal(&P.cv);
	pthread_mutex_unlock(&P.mu);
	return r;
}
