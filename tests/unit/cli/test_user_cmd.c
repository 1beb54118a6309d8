/*
 * test_user_cmd.c - `postern user add|passwd|del|alias|list` on real
 * files: round trips, refusals, file modes and owners, the terminal
 * prompt. (Moved from tests/unit/auth/test_users.c.)
 */
#include <crypt.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/users.h"
#include "cli/user_cmd.h"
#include "../auth/users_harness.h"

/* --- helpers ------------------------------------------------------- */

static char *
read_all(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0;
	FILE *m;

	assert_non_null(f);
	m = open_memstream(&buf, &len);
	assert_non_null(m);
	for (int c; (c = fgetc(f)) != EOF;)
		fputc(c, m);
	fclose(f);
	fclose(m);
	if (len_r != NULL)
		*len_r = len;
	return buf;
}

static int
group_setup(void **state)
{
	(void)state;
	return users_harness_setup("test_user_cmd");
}

static int
group_teardown(void **state)
{
	(void)state;
	return users_harness_teardown();
}

/* --- the CLI ------------------------------------------------------- */

struct cli_out {
	int rc;
	char *out; /* captured stdout */
	char *err; /* captured stderr */
};

static char *
slurp_fd(int fd)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	char chunk[512];
	ssize_t n;

	assert_non_null(m);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		fwrite(chunk, 1, (size_t)n, m);
	fclose(m);
	return buf;
}

static int
tmp_fd(void)
{
	char path[256];
	int fd;

	path_of(path, sizeof(path), "cap.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

/*
 * Run `postern user ARGV...` on `path` with standard input fed from
 * `input` (NULL: empty) and stdout/stderr captured.
 */
static struct cli_out
run_cli_argv(const char *path, const char *input, int argc, char **argv)
{
	int in = tmp_fd(), out = tmp_fd(), err = tmp_fd();
	int save_in = dup(0), save_out = dup(1), save_err = dup(2);
	struct cli_out r;

	if (input != NULL)
		assert_int_equal(write(in, input, strlen(input)),
				 (ssize_t)strlen(input));
	assert_int_equal(lseek(in, 0, SEEK_SET), 0);
	fflush(stdout);
	fflush(stderr);
	dup2(in, 0);
	dup2(out, 1);
	dup2(err, 2);
	r.rc = user_cmd_run(path, argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(save_in, 0);
	dup2(save_out, 1);
	dup2(save_err, 2);
	close(save_in);
	close(save_out);
	close(save_err);
	r.out = slurp_fd(out);
	r.err = slurp_fd(err);
	close(in);
	close(out);
	close(err);
	return r;
}

/* The same with the arguments after "user" as a NULL-terminated list. */
static struct cli_out
run_cli(const char *path, const char *input, ...)
{
	char *argv[16];
	int argc = 0;
	va_list ap;

	argv[argc++] = "user";
	va_start(ap, input);
	for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 15;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	return run_cli_argv(path, input, argc, argv);
}

static void
cli_free(struct cli_out *r)
{
	free(r->out);
	free(r->err);
}

/* Only the users file may be left in the directory. */
static void
assert_dir_holds_only(const char *dir, const char *name)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		print_message("dir entry: %s\n", e->d_name);
		assert_string_equal(e->d_name, name);
		n++;
	}
	closedir(d);
	assert_int_equal(n, 1);
}

static const struct user *
load_user(const char *path, struct users **us, const char *name)
{
	assert_int_equal(users_load(path, us, stderr), 0);
	return users_find(*us, name);
}

static void
test_cli_round_trip(void **state)
{
	char dir[256], path[300], want[4096];
	char *orig =
	    expand("# postern users\n"
		   "\n"
		   "bob@example.test:%B:1000:1000:Bob:/home/bob:/bin/false:"
		   "userdb_mail=maildir:~/Maildir\n"
		   "# a comment between users\n"
		   "carol@example.test:%S\r\n"
		   "dave@example.test:%Y");
	struct users *us = NULL;
	const struct user *u;
	struct cli_out r;
	struct stat st;
	char *now;
	size_t olen = strlen(orig), len;

	(void)state;
	path_of(dir, sizeof(dir), "cli");
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/users", dir);
	write_bytes(path, orig, olen);
	assert_int_equal(chmod(path, 0640), 0);

	/* add, with two aliases, password from standard input */
	r = run_cli(path, "correct horse\n", "add", "Alice@Example.test",
		    "--stdin", "--alias", "info@example.test", "--alias",
		    "Sales@Example.TEST", NULL);
	assert_string_equal(r.err, "postern user: added alice@example.test\n");
	assert_int_equal(r.rc, 0);
	cli_free(&r);
	u = load_user(path, &us, "alice@example.test");
	assert_non_null(u);
	assert_int_equal(users_verify(u->hash, "correct horse", 13), 1);
	assert_int_equal(u->n_aliases, 2);
	assert_string_equal(u->aliases[1], "sales@example.test");
	now = read_all(path, &len);
	assert_true(len > olen + 1);
	assert_memory_equal(now, orig, olen); /* old lines byte for byte */
	snprintf(want, sizeof(want),
		 "\nalice@example.test:%s::::::userdb_postern_aliases="
		 "info@example.test,sales@example.test\n",
		 u->hash);
	assert_string_equal(now + olen, want);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640); /* mode kept */
	free(now);
	users_free(&us);

	/* passwd */
	r = run_cli(path, "battery staple\n", "passwd", "ALICE@example.test",
		    "--stdin", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.err, "postern user: password changed for "
				   "alice@example.test\n");
	cli_free(&r);
	u = load_user(path, &us, "alice@example.test");
	assert_int_equal(users_verify(u->hash, "battery staple", 14), 1);
	assert_int_equal(users_verify(u->hash, "correct horse", 13), 0);
	assert_int_equal(u->n_aliases, 2);
	now = read_all(path, NULL);
	assert_memory_equal(now, orig, olen);
	free(now);
	users_free(&us);

	/* passwd keeps the rest of a long line byte for byte */
	r = run_cli(path, "bob's new one\n", "passwd", "bob@example.test",
		    "--stdin", NULL);
	assert_int_equal(r.rc, 0);
	cli_free(&r);
	u = load_user(path, &us, "bob@example.test");
	assert_int_equal(users_verify(u->hash, "bob's new one", 13), 1);
	now = read_all(path, NULL);
	snprintf(want, sizeof(want),
		 "bob@example.test:%s:1000:1000:Bob:/home/bob:/bin/false:"
		 "userdb_mail=maildir:~/Maildir\n# a comment",
		 u->hash);
	assert_non_null(strstr(now, want));
	assert_memory_equal(now, orig, 17); /* "# postern users\n\n" */
	free(now);
	users_free(&us);

	/* alias add / del */
	r = run_cli(path, NULL, "alias", "alice@example.test", "--add",
		    "postmaster@example.test", NULL);
	assert_int_equal(r.rc, 0);
	cli_free(&r);
	r = run_cli(path, NULL, "alias", "alice@example.test", "--del",
		    "INFO@example.test", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.err, "postern user: alias removed from "
				   "alice@example.test\n");
	cli_free(&r);
	r = run_cli(path, NULL, "alias", "bob@example.test", "--add",
		    "x@example.test", NULL);
	assert_int_equal(r.rc, 0);
	cli_free(&r);
	now = read_all(path, NULL);
	assert_non_null(strstr(now, ":1000:1000:Bob:/home/bob:/bin/false:"
				    "userdb_mail=maildir:~/Maildir "
				    "userdb_postern_aliases=x@example.test\n"));
	free(now);
	r = run_cli(path, NULL, "alias", "bob@example.test", "--del",
		    "x@example.test", NULL);
	assert_int_equal(r.rc, 0);
	cli_free(&r);
	now = read_all(path, NULL);
	assert_non_null(strstr(now, ":1000:1000:Bob:/home/bob:/bin/false:"
				    "userdb_mail=maildir:~/Maildir\n"
				    "# a comment between users\n"
				    "carol@example.test:"));
	free(now);
	/* carol's line (CRLF) and the rest never changed */
	now = read_all(path, NULL);
	assert_non_null(strstr(now, strstr(orig, "# a comment")));
	free(now);

	/* list: names and aliases, never hashes */
	r = run_cli(path, NULL, "list", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "bob@example.test\n"
				   "carol@example.test\n"
				   "dave@example.test\n"
				   "alice@example.test\tsales@example.test,"
				   "postmaster@example.test\n");
	assert_null(strchr(r.out, '$'));
	assert_null(strchr(r.out, '{'));
	cli_free(&r);

	/* del alice: the file is the original plus the newline that the
	   add put after dave's unterminated line, bob's new hash aside */
	r = run_cli(path, NULL, "del", "alice@example.test", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.err,
			    "postern user: deleted alice@example.test\n");
	cli_free(&r);
	now = read_all(path, &len);
	assert_int_equal(now[len - 1], '\n');
	assert_null(strstr(now, "alice"));
	assert_non_null(strstr(now, strstr(orig, "# a comment")));
	free(now);

	/* del bob: his line goes, all others stay as they were */
	r = run_cli(path, NULL, "del", "bob@example.test", NULL);
	assert_int_equal(r.rc, 0);
	cli_free(&r);
	now = read_all(path, &len);
	{
		const char *tail = strstr(orig, "# a comment");

		assert_int_equal(len, 17 + strlen(tail) + 1);
		assert_memory_equal(now, orig, 17);
		assert_memory_equal(now + 17, tail, strlen(tail));
		assert_int_equal(now[len - 1], '\n');
	}
	free(now);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_dir_holds_only(dir, "users");
	free(orig);
}

struct refusal {
	const char *input;
	const char *args[8];
	const char *want; /* substring of stderr */
};

static const struct refusal refusals[] = {
    /* the password is never taken from argv */
    {"password12\n",
     {"add", "new@example.test", "password12", "--stdin"},
     "never taken from the command line"},
    {NULL, {"add", "new@example.test", "password12"}, "too many"},
    {"password12\n",
     {"passwd", "bob@example.test", "--stdin", "password12"},
     "never taken from the command line"},
    {"password12\n",
     {"add", "bob@example.test", "--stdin"},
     "postern user: bob@example.test exists already\n"},
    {"password12\n", {"add", "BOB@example.test", "--stdin"}, "exists already"},
    {"password12\n",
     {"add", "info@example.test", "--stdin"},
     "info@example.test is an alias of bob@example.test"},
    {"short\n",
     {"add", "new@example.test", "--stdin"},
     "password too short (at least 8 characters)"},
    {"", {"add", "new@example.test", "--stdin"}, "no password line"},
    {"password12\n",
     {"add", "new@example.test", "--stdin", "--alias", "carol@example.test"},
     "alias carol@example.test is taken by carol@example.test"},
    {"password12\n",
     {"add", "new@example.test", "--stdin", "--alias", "new@example.test"},
     "alias new@example.test is the user's own name"},
    {"password12\n",
     {"add", "new@example.test", "--stdin", "--alias", "a@x.test", "--alias",
      "A@x.test"},
     "alias a@x.test given twice"},
    {"password12\n",
     {"add", "not an address", "--stdin"},
     "invalid address 'not an address'"},
    {"password12\n",
     {"add", "new@example.test", "--stdin", "--alias", "x..y@z.test"},
     "invalid alias 'x..y@z.test'"},
    {"password12\n",
     {"add", "new@example.test", "--stdin", "--alias"},
     "option needs an address"},
    {"password12\n",
     {"passwd", "nobody@example.test", "--stdin"},
     "no such user nobody@example.test"},
    {NULL, {"del", "nobody@example.test"}, "no such user"},
    {NULL, {"del", "info@example.test"}, "no such user"},
    {NULL, {"del", "bob@example.test", "--stdin"}, "unknown option"},
    {NULL, {"del"}, "missing ADDRESS"},
    {NULL, {"alias", "bob@example.test"}, "exactly one --add or --del"},
    {NULL,
     {"alias", "bob@example.test", "--add", "a@x.test", "--del",
      "info@example.test"},
     "exactly one --add or --del"},
    {NULL,
     {"alias", "bob@example.test", "--add", "carol@example.test"},
     "alias carol@example.test is taken by carol@example.test"},
    {NULL,
     {"alias", "carol@example.test", "--add", "info@example.test"},
     "alias info@example.test is taken by bob@example.test"},
    {NULL,
     {"alias", "bob@example.test", "--del", "zz@example.test"},
     "bob@example.test has no alias zz@example.test"},
    {NULL,
     {"alias", "nobody@example.test", "--add", "zz@example.test"},
     "no such user"},
    {NULL, {"list", "extra"}, "too many"},
    {NULL, {"frob"}, "unknown subcommand"},
    {NULL, {NULL}, "usage: postern user add"},
};

static void
test_cli_refusals(void **state)
{
	char dir[256], path[300];
	char *orig = expand("# users\n"
			    "bob@example.test:%B::::::userdb_postern_aliases="
			    "info@example.test\n"
			    "carol@example.test:%S\n");
	struct cli_out r;

	(void)state;
	path_of(dir, sizeof(dir), "refuse");
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/users", dir);
	write_bytes(path, orig, strlen(orig));
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		const struct refusal *c = &refusals[i];
		char *argv[10], *now;
		int argc = 0;

		argv[argc++] = "user";
		for (size_t k = 0; k < 8 && c->args[k] != NULL; k++)
			argv[argc++] = (char *)c->args[k];
		argv[argc] = NULL;
		print_message("refusal %zu: %s\n", i,
			      argc > 1 ? argv[1] : "(none)");
		r = run_cli_argv(path, c->input, argc, argv);
		print_message("  stderr: %s", r.err);
		assert_int_equal(r.rc, 1);
		assert_non_null(strstr(r.err, c->want));
		assert_string_equal(r.out, "");
		cli_free(&r);
		now = read_all(path, NULL);
		assert_string_equal(now, orig); /* untouched */
		free(now);
	}
	assert_dir_holds_only(dir, "users");
	free(orig);
}

static void
test_cli_files(void **state)
{
	char dir[256], path[300], link[300];
	struct cli_out r;
	struct users *us = NULL;
	struct stat st;
	char *text;

	(void)state;
	path_of(dir, sizeof(dir), "files");
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/users", dir);

	/* a missing file: only add creates it, mode 0600 */
	r = run_cli(path, NULL, "del", "a@example.test", NULL);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "No such file"));
	cli_free(&r);
	r = run_cli(path, NULL, "list", NULL);
	assert_int_equal(r.rc, 1);
	cli_free(&r);
	r = run_cli(path, "password12\n", "add", "a@example.test", "--stdin",
		    NULL);
	assert_int_equal(r.rc, 0);
	cli_free(&r);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_non_null(load_user(path, &us, "a@example.test"));
	users_free(&us);

	/* a broken file is never edited: its errors are shown */
	text = expand("a@example.test:%A\nbroken@example.test\n");
	write_bytes(path, text, strlen(text));
	r = run_cli(path, "password12\n", "add", "b@example.test", "--stdin",
		    NULL);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "users:2: missing password"));
	assert_non_null(strstr(r.err, "fix "));
	cli_free(&r);
	free(text);
	text = read_all(path, NULL);
	assert_non_null(strstr(text, "broken@"));
	free(text);

	/* a symbolic link is refused (rename would replace the link) */
	write_bytes(path, "", 0);
	snprintf(link, sizeof(link), "%s/link", dir);
	assert_int_equal(symlink("users", link), 0);
	r = run_cli(link, NULL, "del", "a@example.test", NULL);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "symbolic link"));
	cli_free(&r);
	assert_int_equal(unlink(link), 0);
	assert_dir_holds_only(dir, "users");

	r = run_cli("", NULL, "list", NULL);
	assert_int_equal(r.rc, 1);
	cli_free(&r);

	/* a write that fails half-way (file size limit, as on a full disk)
	   leaves the old file and no temporary file behind */
	text = expand("a@example.test:%A\n");
	write_bytes(path, text, strlen(text));
	{
		pid_t p = fork();
		int status;

		assert_true(p >= 0);
		if (p == 0) {
			struct rlimit rl = {strlen(text) + 20,
					    strlen(text) + 20};

			signal(SIGXFSZ, SIG_IGN);
			setrlimit(RLIMIT_FSIZE, &rl);
			r = run_cli(path, "password12\n", "add",
				    "b@example.test", "--stdin", NULL);
			_exit(r.rc == 1 && strstr(r.err, "cannot write") ? 0
									 : 1);
		}
		assert_int_equal(waitpid(p, &status, 0), p);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	{
		char *now = read_all(path, NULL);

		assert_string_equal(now, text);
		free(now);
	}
	free(text);
	assert_dir_holds_only(dir, "users");
}

/* Read from the pty master until `want` shows up (or fail on timeout). */
static void
pty_expect(int master, char *seen, size_t size, size_t *len, const char *want)
{
	while (strstr(seen, want) == NULL) {
		struct pollfd p = {.fd = master, .events = POLLIN};
		ssize_t n;

		assert_true(poll(&p, 1, 20000) == 1);
		n = read(master, seen + *len, size - 1 - *len);
		assert_true(n > 0);
		*len += (size_t)n;
		seen[*len] = '\0';
	}
}

/* Drain the pty until the child is gone; return its exit status. */
static int
pty_finish(pid_t pid, int master, char *seen, size_t size, size_t *len)
{
	int status;

	for (;;) {
		struct pollfd p = {.fd = master, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 20000) != 1)
			break;
		n = read(master, seen + *len, size - 1 - *len);
		if (n <= 0)
			break; /* EIO once the child closed its side */
		*len += (size_t)n;
		seen[*len] = '\0';
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static pid_t
pty_spawn(const char *path, const char *user, int *master)
{
	pid_t pid = forkpty(master, NULL, NULL, NULL);

	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[] = {"user", "add", (char *)user, NULL};

		_exit(user_cmd_run(path, 3, argv));
	}
	return pid;
}

static void
test_cli_terminal(void **state)
{
	char dir[256], path[300], seen[4096];
	struct users *us = NULL;
	const struct user *u;
	size_t len = 0;
	int master;
	pid_t pid;

	(void)state;
	path_of(dir, sizeof(dir), "tty");
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/users", dir);

	/* asked twice, without echo */
	seen[0] = '\0';
	pid = pty_spawn(path, "tty@example.test", &master);
	pty_expect(master, seen, sizeof(seen), &len, "New password: ");
	assert_int_equal(write(master, "tty-secret-1\n", 13), 13);
	pty_expect(master, seen, sizeof(seen), &len, "Retype new password: ");
	assert_int_equal(write(master, "tty-secret-1\n", 13), 13);
	assert_int_equal(pty_finish(pid, master, seen, sizeof(seen), &len), 0);
	close(master);
	print_message("terminal said: %s\n", seen);
	assert_null(strstr(seen, "tty-secret-1")); /* never echoed */
	assert_non_null(strstr(seen, "added tty@example.test"));
	u = load_user(path, &us, "tty@example.test");
	assert_non_null(u);
	assert_int_equal(users_verify(u->hash, "tty-secret-1", 12), 1);
	users_free(&us);

	/* the two must match */
	len = 0;
	seen[0] = '\0';
	pid = pty_spawn(path, "tty2@example.test", &master);
	pty_expect(master, seen, sizeof(seen), &len, "New password: ");
	assert_int_equal(write(master, "tty-secret-1\n", 13), 13);
	pty_expect(master, seen, sizeof(seen), &len, "Retype new password: ");
	assert_int_equal(write(master, "tty-secret-2\n", 13), 13);
	assert_int_equal(pty_finish(pid, master, seen, sizeof(seen), &len), 1);
	close(master);
	assert_non_null(strstr(seen, "passwords do not match"));
	assert_null(strstr(seen, "tty-secret"));
	assert_null(load_user(path, &us, "tty2@example.test"));
	users_free(&us);

	/* no terminal and no --stdin: refused, not hung */
	{
		struct cli_out r;
		pid_t p = fork();
		int status;

		assert_true(p >= 0);
		if (p == 0) {
			setsid(); /* no controlling terminal */
			r = run_cli(path, NULL, "add", "tty3@example.test",
				    NULL);
			_exit(r.rc == 1 && strstr(r.err, "use --stdin") ? 0
									: 1);
		}
		assert_int_equal(waitpid(p, &status, 0), p);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_dir_holds_only(dir, "users");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cli_round_trip),
	    cmocka_unit_test(test_cli_refusals),
	    cmocka_unit_test(test_cli_files),
	    cmocka_unit_test(test_cli_terminal),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
