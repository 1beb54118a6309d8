/*
 * queue_cmd.c - `postern queue [-c FILE] [COMMAND [ARG]]`: asks the queue
 * process over its control socket, <spool>/queue/control.sock (see
 * src/outbound/queue_ctl.c for the commands), and prints the answer.
 * Exit status: 0 when the answer ends in "ok", 1 otherwise, 2 for usage
 * or when the queue process cannot be reached.
 *
 * `release --account ADDRESS` (docs/sendlimit.md) first clears the
 * account's send-burst alarm in the guard (its control socket: RELEASE),
 * so that its new mail is no longer held, then releases every held
 * message the alarm held for the account in the queue ("release-account
 * ADDRESS"; not those an admin held with `hold ID`).
 *
 * `delete --account ADDRESS` first tells the guard the alarm's mail was
 * spam (DISCARD: a later release does not teach the account's baseline
 * its volume), then deletes every message the alarm held for the
 * account ("delete-account ADDRESS"), printing how many.
 */
#include "cli/queue_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "auth/guard.h"
#include "conf/config.h"

static int
queue_cmd_connect(const struct config *cfg, FILE *err)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd, n = snprintf(sun.sun_path, sizeof(sun.sun_path),
			     "%s/queue/control.sock", cfg->spool);
	struct timeval tv = {10, 0};

	if (n < 0 || (size_t)n >= sizeof(sun.sun_path))
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(err, "postern: %s: %s (is the server running?)\n",
			sun.sun_path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Copy the answer to `out`; 0 when its last line is "ok". */
static int
queue_cmd_answer(int fd, FILE *out)
{
	char buf[8192], end[4] = "";
	size_t have = 0; /* octets in end[], the answer's last three */
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		fwrite(buf, 1, (size_t)n, out);
		for (ssize_t i = 0; i < n; i++) {
			if (have == 3) {
				memmove(end, end + 1, 2);
				have = 2;
			}
			end[have++] = buf[i];
		}
	}
	end[have] = '\0';
	return strcmp(end, "ok\n") == 0 ? 0 : 1;
}

int
queue_cmd_ask(const struct config *cfg, const char *line, FILE *out)
{
	size_t n = strlen(line);
	int fd = queue_cmd_connect(cfg, out), rc;

	if (fd < 0)
		return 2;
	if (write(fd, line, n) != (ssize_t)n) {
		close(fd);
		return 2;
	}
	rc = queue_cmd_answer(fd, out);
	close(fd);
	return rc;
}

int
queue_cmd_main(int argc, char **argv)
{
	const char *file = NULL, *account = NULL;
	struct config *cfg = NULL;
	char line[400];
	int opt, fd, rc, n;

	optind = 1;
	while ((opt = getopt(argc, argv, "+c:")) != -1) {
		if (opt != 'c')
			goto usage;
		file = optarg;
	}
	if (argc - optind == 3 &&
	    (strcmp(argv[optind], "release") == 0 ||
	     strcmp(argv[optind], "delete") == 0) &&
	    strcmp(argv[optind + 1], "--account") == 0) {
		account = argv[optind + 2];
		if (account[0] == '\0' || strpbrk(account, " \r\n") != NULL)
			goto usage;
		n = snprintf(line, sizeof(line), "%s-account %s\n",
			     argv[optind], account);
	} else if (argc - optind > 2) {
		goto usage;
	} else {
		n = snprintf(line, sizeof(line), "%s%s%s\n",
			     optind < argc ? argv[optind] : "summary",
			     optind + 1 < argc ? " " : "",
			     optind + 1 < argc ? argv[optind + 1] : "");
	}
	if (n < 0 || (size_t)n >= sizeof(line) ||
	    strpbrk(line, "\r") != NULL || strchr(line, '\n') != line + n - 1)
		goto usage;
	if ((file != NULL ? config_load(file, &cfg, stderr)
			  : config_load_builtin(&cfg, stderr)) < 0)
		return 2;
	if (account != NULL) {
		char cmd[400];

		/* The guard first: from now on the account's mail flows
		   (RELEASE), or its alarm's volume teaches nothing
		   (DISCARD). An account without an alarm (already released,
		   or `log`) is not an error: the queue still does its part. */
		snprintf(cmd, sizeof(cmd), "%s %s",
			 line[0] == 'r' ? "RELEASE" : "DISCARD", account);
		guard_control(cfg->control_socket, cmd, stdout);
	}
	fd = queue_cmd_connect(cfg, stderr);
	config_free(&cfg);
	if (fd < 0)
		return 2;
	if (write(fd, line, (size_t)n) != n) {
		close(fd);
		return 2;
	}
	rc = queue_cmd_answer(fd, stdout);
	close(fd);
	return rc;
usage:
	fprintf(stderr, "usage: postern queue [-c FILE] [summary | list | "
			"show ID | flush [ID|DOMAIN] | hold ID | release ID | "
			"release --account ADDRESS | delete ID | "
			"delete --account ADDRESS]\n");
	return 2;
}
