/*
 * proc.c - signal reset and privilege drop for the master's children, and
 * how the master tells why one ended. See proc.h.
 */
#include "daemon/proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"

void
proc_reset_signals(void)
{
	static const int sigs[] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGUSR1};
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

int
proc_drop_privileges(const char *user)
{
	struct passwd *pw;
	uid_t uid;
	gid_t gid;

	if (user == NULL || geteuid() != 0)
		return 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		log_error("-", "user name=%s error=\"no such user\"", user);
		return -1;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	/* The account's groups too: docs/users.md shares the users file
	   with Dovecot through a group. */
	if (initgroups(user, gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		log_error("-", "setuid user=%s error=\"%s\"", user,
			  strerror(errno));
		return -1;
	}
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		log_error("-", "setuid user=%s error=\"root can be taken "
			       "back\"",
			  user);
		return -1;
	}
	return 0;
}

const char *
proc_exit_text(int status, char *buf, size_t size)
{
	const char *core = "";

	if (WIFEXITED(status)) {
		snprintf(buf, size, "status=%d", WEXITSTATUS(status));
		return buf;
	}
	if (!WIFSIGNALED(status)) {
		snprintf(buf, size, "wait-status=%#x", (unsigned)status);
		return buf;
	}
	if (WCOREDUMP(status))
		core = " core=yes";
	if (sigabbrev_np(WTERMSIG(status)) != NULL)
		snprintf(buf, size, "signal=%s%s", sigabbrev_np(WTERMSIG(status)),
			 core);
	else
		snprintf(buf, size, "signal=%d%s", WTERMSIG(status), core);
	return buf;
}

int
proc_addr_text(const struct sockaddr *sa, char *buf, size_t size)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, buf, (socklen_t)size);
		return ntohs(sin->sin_port);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, buf, (socklen_t)size);
		return ntohs(sin6->sin6_port);
	}
	snprintf(buf, size, "unknown");
	return 0;
}
