/*
 * status_cmd.c - `postern status [-c FILE]`: one screen for a person
 * (docs/metrics.md): uptime, open sessions, messages of the last hour
 * and day, logins, the queue, held mail, locks, the top senders of the
 * last hour and the alarms.
 *
 * The numbers come from the metrics mapping, read-only (readable by root
 * and admin-group); locks, top senders and alarms from the guard's
 * control socket (LOCKS, TOP, ALARMS); the queue from the queue
 * process's. A part that cannot be had says "not available" and why; the
 * rest is still shown. Exit 0 when the mapping could be read, 1 if not.
 */
#include "cli/status_cmd.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/guard.h"
#include "cli/queue_cmd.h"
#include "conf/config.h"
#include "metrics/metrics.h"

#define STATUS_LIST_MAX 10 /* lines of a list shown */

/* Print `text` with every control octet but the newline as '?': the
   answers carry account names and client data. */
static void
status_put(FILE *out, const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		fputc(c == '\n' || (c >= 0x20 && c != 0x7f) ? c : '?', out);
	}
}

static void
status_duration(FILE *out, int64_t s)
{
	if (s < 0)
		s = 0;
	if (s >= 86400)
		fprintf(out, "%lldd ", (long long)(s / 86400));
	fprintf(out, "%02lld:%02lld:%02lld", (long long)(s % 86400 / 3600),
		(long long)(s % 3600 / 60), (long long)(s % 60));
}

static void
status_numbers(FILE *out, const struct metrics_snapshot *snap)
{
	const int64_t *c = snap->cell;

	fputs("uptime       ", out);
	if (c[MG_START_TIME] > 0)
		status_duration(out, snap->now - c[MG_START_TIME]);
	else
		fputs("not available (the server is not running)", out);
	fprintf(out, "\nsessions     mx %lld, submission %lld, submissions "
		     "%lld\n",
		(long long)c[MG_SESSIONS_MX], (long long)c[MG_SESSIONS_SUB],
		(long long)c[MG_SESSIONS_SUBS]);
	fprintf(out, "messages     last hour %llu, last day %llu "
		     "(accepted)\n",
		(unsigned long long)snap->last_hour,
		(unsigned long long)snap->last_day);
	fprintf(out, "logins       %lld ok, %lld failed, %lld locked out "
		     "(since start)\n",
		(long long)c[MC_LOGIN_OK], (long long)c[MC_LOGIN_FAIL],
		(long long)c[MC_LOGIN_LOCKED]);
	fprintf(out, "held mail    %lld message%s\n", (long long)c[MG_HELD],
		c[MG_HELD] == 1 ? "" : "s");
}

/* Ask the guard; the answer (without "OK "/"ERR ") in *text_r. 0 ok. */
static int
status_ask_guard(const struct config *cfg, const char *cmd, char **text_r,
		 size_t *len_r)
{
	FILE *f = open_memstream(text_r, len_r);
	int rc;

	if (f == NULL)
		return -1;
	rc = guard_control(cfg->control_socket, cmd, f);
	fclose(f);
	return rc == 0 ? 0 : -1;
}

/* Why a guard answer is missing: its first line, or, from a guard that
   does not know `cmd` (an older one), that. */
static void
status_unavailable(FILE *out, const char *cmd, const char *text, size_t len)
{
	const char *nl = text != NULL ? strchr(text, '\n') : NULL;

	fputs("not available (", out);
	if (text != NULL && strstr(text, "unknown command") != NULL)
		fprintf(out, "this guard has no %s command", cmd);
	else if (text != NULL)
		status_put(out, text, nl != NULL ? (size_t)(nl - text) : len);
	fputs(")\n", out);
}

/* Print one guard answer under `title`: its lines after the first (the
   count), at most STATUS_LIST_MAX; "not available" when the guard cannot
   be asked or does not know the command (an older guard). */
static void
status_guard_list(FILE *out, const struct config *cfg, const char *title,
		  const char *cmd, const char *header)
{
	char *text = NULL, *line, *nl;
	size_t len = 0, shown = 0;

	fprintf(out, "%-12s ", title);
	if (status_ask_guard(cfg, cmd, &text, &len) < 0) {
		status_unavailable(out, cmd, text, len);
		free(text);
		return;
	}
	nl = strchr(text, '\n');
	status_put(out, text, nl != NULL ? (size_t)(nl - text + 1) : len);
	if (nl != NULL && nl[1] != '\0' && header != NULL)
		fprintf(out, "             %s\n", header);
	for (line = nl != NULL ? nl + 1 : NULL; line != NULL && *line != '\0';
	     line = nl != NULL ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (++shown > STATUS_LIST_MAX)
			continue;
		fputs("             ", out);
		status_put(out, line,
			   nl != NULL ? (size_t)(nl - line) : strlen(line));
		fputc('\n', out);
	}
	if (shown > STATUS_LIST_MAX)
		fprintf(out, "             ... and %zu more\n",
			shown - STATUS_LIST_MAX);
	free(text);
}

/* The queue's summary line and its busiest destinations. */
static void
status_queue(FILE *out, const struct config *cfg)
{
	char *text = NULL, *end;
	size_t len = 0, lines = 0;
	FILE *f = open_memstream(&text, &len);
	int rc;

	if (f == NULL)
		return;
	rc = queue_cmd_ask(cfg, "summary\n", f);
	fclose(f);
	fputs("queue        ", out);
	if (rc != 0) {
		end = strchr(text, '\n');
		fputs("not available (", out);
		status_put(out, text, end != NULL ? (size_t)(end - text) : len);
		fputs(")\n", out);
		free(text);
		return;
	}
	for (char *line = text; *line != '\0'; line = end + 1) {
		end = strchr(line, '\n');
		if (end == NULL || strncmp(line, "ok\n", 3) == 0)
			break;
		if (lines++ > 0)
			fputs("             ", out);
		if (lines <= STATUS_LIST_MAX + 1)
			status_put(out, line, (size_t)(end - line + 1));
	}
	free(text);
}

int
status_cmd_main(int argc, char **argv)
{
	const char *file = NULL, *err = NULL;
	struct config *cfg = NULL;
	struct metrics_map *map = NULL;
	struct metrics_snapshot snap;
	char path[4096];
	int opt, rc = 0;

	optind = 1;
	while ((opt = getopt(argc, argv, "+c:")) != -1) {
		if (opt != 'c')
			goto usage;
		file = optarg;
	}
	if (optind != argc)
		goto usage;
	if ((file != NULL ? config_load(file, &cfg, stderr)
			  : config_load_builtin(&cfg, stderr)) < 0)
		return 2;
	printf("postern status, %s\n", cfg->hostname);
	if (metrics_path(cfg->control_socket, path, sizeof(path)) < 0 ||
	    metrics_open(path, &map, &err) < 0) {
		printf("numbers      not available (%s: %s)\n", path,
		       err != NULL ? err : "path too long");
		rc = 1;
	} else {
		metrics_read(map, (int64_t)time(NULL), &snap);
		status_numbers(stdout, &snap);
		metrics_close(&map);
	}
	status_queue(stdout, cfg);
	status_guard_list(stdout, cfg, "locks", "LOCKS", NULL);
	status_guard_list(stdout, cfg, "top senders", "TOP",
			  "account count_hour baseline alarmed");
	status_guard_list(stdout, cfg, "alarms", "ALARMS",
			  "unix_time kind account detail");
	config_free(&cfg);
	return rc;
usage:
	fprintf(stderr, "usage: postern status [-c FILE]\n");
	return 2;
}
