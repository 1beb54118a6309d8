/*
 * main.c - the command line: serve, check, version.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "server.h"

static void
main_usage(FILE *out)
{
	fprintf(out,
		"usage: postern serve [-c FILE] [-f]\n"
		"       postern check -c FILE\n"
		"       postern version\n");
}

/* Parse "-c FILE" and "-f"; returns 0 or -1 (usage printed). */
static int
main_options(int argc, char **argv, const char **file_r, bool *fg_r,
	     bool allow_fg)
{
	int opt;

	optind = 1;
	while ((opt = getopt(argc, argv, allow_fg ? "c:f" : "c:")) != -1) {
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
	if (optind != argc) {
		main_usage(stderr);
		return -1;
	}
	return 0;
}

static int
main_check(int argc, char **argv)
{
	const char *file = NULL;
	bool fg = false;
	struct config *cfg = NULL;

	if (main_options(argc, argv, &file, &fg, false) < 0)
		return 2;
	if (file == NULL) {
		fprintf(stderr, "postern check: -c FILE is required\n");
		return 2;
	}
	if (config_load(file, &cfg, stderr) < 0)
		return 1;
	printf("%s: ok (%zu listeners, %zu domains, %zu mailboxes)\n", file,
	       cfg->n_listeners, cfg->n_domains, cfg->n_mailboxes);
	config_free(&cfg);
	return 0;
}

static int
main_serve(int argc, char **argv)
{
	const char *file = NULL;
	bool fg = false;
	struct config *cfg = NULL;
	int rc;

	if (main_options(argc, argv, &file, &fg, true) < 0)
		return 2;
	rc = file != NULL ? config_load(file, &cfg, stderr)
			  : config_load_builtin(&cfg, stderr);
	if (rc < 0) {
		fprintf(stderr, "postern: configuration refused, not "
				"starting\n");
		return 1;
	}
	if (file == NULL)
		printf("postern: development configuration (built-in), "
		       "state under ./var\n");
	return server_run(cfg, file, fg);
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
	if (strcmp(argv[1], "version") == 0) {
		printf("postern %s\n", POSTERN_VERSION);
		return 0;
	}
	main_usage(stderr);
	return 2;
}
