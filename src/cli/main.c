/*
 * main.c - the command line: serve, check, user, locks, unlock, probe,
 * version.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/config.h"
#include "auth/guard.h"
#include "daemon/server.h"
#include "auth/users.h"
#include "cli/queue_cmd.h"
#include "cli/route_cmd.h"
#include "cli/user_cmd.h"
#include "probe/probe.h"

static void
main_usage(FILE *out)
{
	fprintf(out,
		"usage: postern serve [-c FILE] [-f]\n"
		"       postern check -c FILE\n"
		"       postern user [-c FILE] add|passwd|del|alias|list ...\n"
		"       postern user [-c FILE] limits ADDRESS\n"
		"       postern locks [-c FILE]\n"
		"       postern unlock [-c FILE] ADDRESS|ACCOUNT\n"
		"       postern route [-c FILE] DOMAIN\n"
		"       postern queue [-c FILE] [list|show ID|flush [ID|DOMAIN]|"
		"hold ID|release ID|\n"
		"                     release --account ADDRESS|delete ID]\n"
		"       postern probe HOST|--self [options] (postern probe "
		"--help)\n"
		"       postern version\n");
}

/* Parse "-c FILE" and "-f"; returns 0 or -1 (usage printed). Stops at the
   first operand when `operands` is set. */
static int
main_options(int argc, char **argv, const char **file_r, bool *fg_r,
	     bool allow_fg, bool operands)
{
	int opt;

	optind = 1;
	while ((opt = getopt(argc, argv, allow_fg ? "+c:f" : "+c:")) != -1) {
		switch (opt) {
		case 'c':
			*file_r = optarg;
			break;
		case 'f':
			*fg_r = true;
			break;
		default:
			main_usage(stderr);
			return -1;
		}
	}
	if (!operands && optind != argc) {
		main_usage(stderr);
		return -1;
	}
	return 0;
}

static int
main_load(const char *file, struct config **cfg_r)
{
	int rc = file != NULL ? config_load(file, cfg_r, stderr)
			      : config_load_builtin(cfg_r, stderr);

	if (rc < 0)
		fprintf(stderr, "postern: configuration refused\n");
	return rc;
}

/*
 * Read and check the users file the configuration names, as the guard
 * will: every error goes to stderr as "file:line: message". A missing
 * file is an error. *n_r is the number of users (0 without a file).
 */
static int
main_check_users(const struct config *cfg, size_t *n_r)
{
	struct users *us = NULL;

	*n_r = 0;
	if (cfg->users_file == NULL)
		return 0;
	if (users_load(cfg->users_file, &us, stderr) < 0)
		return -1;
	*n_r = users_count(us);
	users_free(&us);
	return 0;
}

static int
main_check(int argc, char **argv)
{
	const char *file = NULL;
	bool fg = false;
	struct config *cfg = NULL;
	size_t n_users;

	if (main_options(argc, argv, &file, &fg, false, false) < 0)
		return 2;
	if (file == NULL) {
		fprintf(stderr, "postern check: -c FILE is required\n");
		return 2;
	}
	if (config_load(file, &cfg, stderr) < 0)
		return 1;
	if (main_check_users(cfg, &n_users) < 0) {
		fprintf(stderr, "postern check: users file %s refused\n",
			cfg->users_file);
		config_free(&cfg);
		return 1;
	}
	printf("%s: ok (%zu listeners, %zu domains, %zu mailboxes, %zu "
	       "users)\n",
	       file, cfg->n_listeners, cfg->n_domains, cfg->n_mailboxes,
	       n_users);
	config_free(&cfg);
	return 0;
}

/* mkdir -p for the parents of `path` (mode 0700). */
static void
main_mkdirs(const char *path)
{
	char tmp[4096];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(tmp, 0700);
		*p = '/';
	}
}

/*
 * The development configuration's demo user: created with a random
 * password on first start; the password is kept beside the users file
 * (dev only) so that `make run` can print it every time.
 */
static int
main_dev_user(const struct config *cfg)
{
	static const char alphabet[] =
		"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	char pwfile[4200], password[21], *hash = NULL;
	unsigned char rnd[20];
	FILE *f;
	int fd;

	if (cfg->users_file == NULL)
		return 0;
	snprintf(pwfile, sizeof(pwfile), "%s.demo-password", cfg->users_file);
	if (access(cfg->users_file, F_OK) == 0) {
		f = fopen(pwfile, "r");
		if (f != NULL && fgets(password, sizeof(password), f) != NULL)
			printf("postern: demo user demo@example.test, "
			       "password %s\n",
			       password);
		if (f != NULL)
			fclose(f);
		return 0;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -1;
	for (size_t i = 0; i < 20; i++)
		password[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
	password[20] = '\0';
	if (users_hash(password, 20, &hash) < 0)
		return -1;
	main_mkdirs(cfg->users_file);
	fd = open(cfg->users_file, O_WRONLY | O_CREAT | O_EXCL, 0600);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (f == NULL) {
		free(hash);
		return -1;
	}
	fprintf(f, "# postern development users (Dovecot passwd-file)\n"
		   "demo@example.test:%s\n",
		hash);
	free(hash);
	if (fclose(f) != 0)
		return -1;
	fd = open(pwfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		if (write(fd, password, 20) != 20) {
			/* only a convenience */
		}
		close(fd);
	}
	printf("postern: created demo user demo@example.test, password %s\n",
	       password);
	return 0;
}

static int
main_serve(int argc, char **argv)
{
	const char *file = NULL;
	bool fg = false;
	struct config *cfg = NULL;
	size_t n_users;

	if (main_options(argc, argv, &file, &fg, true, false) < 0)
		return 2;
	if (main_load(file, &cfg) < 0)
		return 1;
	if (file == NULL) {
		printf("postern: development configuration (built-in), "
		       "state under ./var\n");
		if (main_dev_user(cfg) < 0) {
			fprintf(stderr, "postern: cannot create the demo "
					"user: %s\n",
				strerror(errno));
			config_free(&cfg);
			return 1;
		}
	}
	/* A broken users file would lock every user out (each login a
	   failure) and bounce their mail: refuse to start instead. */
	if (main_check_users(cfg, &n_users) < 0) {
		fprintf(stderr,
			"postern: users file %s refused; not starting\n",
			cfg->users_file);
		config_free(&cfg);
		return 1;
	}
	fflush(stdout);
	return server_run(cfg, file, fg);
}

/* user, locks, unlock: need the configuration for their paths. */
static int
main_admin(const char *cmd, int argc, char **argv)
{
	const char *file = NULL;
	bool fg = false;
	struct config *cfg = NULL;
	int rc;

	if (main_options(argc, argv, &file, &fg, false, true) < 0)
		return 2;
	if (main_load(file, &cfg) < 0)
		return 1;
	argc -= optind;
	argv += optind;
	if (strcmp(cmd, "user") == 0 && argc == 2 &&
	    strcmp(argv[0], "limits") == 0) {
		/* The counts live in the guard (docs/sendlimit.md). */
		char line[600];

		snprintf(line, sizeof(line), "LIMITS %s", argv[1]);
		rc = strpbrk(argv[1], " \r\n") != NULL || argv[1][0] == '\0'
			 ? 2
			 : guard_control(cfg->control_socket, line, stdout);
	} else if (strcmp(cmd, "user") == 0) {
		if (cfg->users_file == NULL) {
			fprintf(stderr, "postern user: no `users` file in "
					"the configuration\n");
			rc = 1;
		} else {
			/* user_cmd_run wants argv[0] == "user". */
			char **args = calloc((size_t)argc + 2, sizeof(char *));

			if (args == NULL) {
				config_free(&cfg);
				return 1;
			}
			args[0] = (char *)"user";
			for (int i = 0; i < argc; i++)
				args[i + 1] = argv[i];
			rc = user_cmd_run(cfg->users_file, argc + 1, args);
			free(args);
		}
	} else if (strcmp(cmd, "locks") == 0 && argc == 0) {
		rc = guard_control(cfg->control_socket, "LOCKS", stdout);
	} else if (strcmp(cmd, "unlock") == 0 && argc == 1) {
		char line[600];

		snprintf(line, sizeof(line), "UNLOCK %s", argv[0]);
		rc = strpbrk(argv[0], " \r\n") != NULL
			     ? 2
			     : guard_control(cfg->control_socket, line,
					     stdout);
	} else {
		main_usage(stderr);
		rc = 2;
	}
	config_free(&cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		main_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "serve") == 0)
		return main_serve(argc - 1, argv + 1);
	if (strcmp(argv[1], "check") == 0)
		return main_check(argc - 1, argv + 1);
	if (strcmp(argv[1], "user") == 0 || strcmp(argv[1], "locks") == 0 ||
	    strcmp(argv[1], "unlock") == 0)
		return main_admin(argv[1], argc - 1, argv + 1);
	if (strcmp(argv[1], "route") == 0)
		return route_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "queue") == 0)
		return queue_cmd_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "probe") == 0)
		return probe_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0) {
		printf("postern %s\n", POSTERN_VERSION);
		return 0;
	}
	main_usage(stderr);
	return 2;
}
