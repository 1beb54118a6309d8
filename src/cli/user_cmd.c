/*
 * user_cmd.c - `postern user add|passwd|del|alias|list`: edits the users
 * file (auth/users.h) atomically under a lock on its directory. Passwords
 * come from the terminal without echo, or from standard input with
 * --stdin; never from argv. docs/users.md.
 */
#include "cli/user_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "auth/users.h"

#define USER_CMD_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* One command: the edit (users.h), or a listing. */
struct user_cmd {
	struct users_edit ed;
	bool is_list;
	const char *path;
	bool from_stdin;
};

static void USER_CMD_PRINTF(1, 2) user_cmd_say(const char *fmt, ...)
{
	va_list ap;

	fputs("postern user: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int
user_cmd_usage(const char *why)
{
	if (why != NULL)
		user_cmd_say("%s", why);
	fputs("usage: postern user add ADDRESS [--stdin] [--alias ADDRESS]...\n"
	      "       postern user passwd ADDRESS [--stdin]\n"
	      "       postern user del ADDRESS\n"
	      "       postern user alias ADDRESS --add ALIAS | --del ALIAS\n"
	      "       postern user list\n",
	      stderr);
	return 1;
}

/*
 * Read one line (without its terminator) from fd, byte by byte so that
 * nothing after it is consumed. Returns its length, or -1 on EOF before
 * any byte, an error, or a line longer than the buffer.
 */
static ssize_t
user_cmd_read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	bool got = false, too_long = false;

	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got = true;
		if (c == '\n')
			break;
		if (n + 1 < size)
			buf[n++] = c;
		else
			too_long = true;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	if (!got || too_long)
		return -1;
	return (ssize_t)n;
}

/*
 * Prompt on the terminal with echo (and signals) off, like getpass(3).
 * Echo goes off before the prompt is shown, so nothing typed after the
 * prompt appears can be echoed or flushed away.
 */
static ssize_t
user_cmd_ask(int tty, const char *prompt, char *buf, size_t size)
{
	struct termios old, quiet;
	ssize_t n = -1;

	if (tcgetattr(tty, &old) < 0)
		return -1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ISIG);
	if (tcsetattr(tty, TCSAFLUSH, &quiet) < 0)
		return -1;
	if (write(tty, prompt, strlen(prompt)) >= 0)
		n = user_cmd_read_line(tty, buf, size);
	(void)tcsetattr(tty, TCSAFLUSH, &old);
	(void)!write(tty, "\n", 1);
	return n;
}

/*
 * Get the new password: one line of standard input with --stdin, else
 * twice from the terminal (they must match). Never from argv.
 */
static int
user_cmd_get_password(bool from_stdin, char *pw, size_t size, size_t *len_r)
{
	char again[USERS_PASSWORD_MAX + 2];
	ssize_t n, m;
	int tty, ret = -1;

	if (from_stdin) {
		n = user_cmd_read_line(STDIN_FILENO, pw, size);
		if (n < 0) {
			user_cmd_say("no password line on standard input (or "
				     "longer than %d bytes)",
				     USERS_PASSWORD_MAX);
			return -1;
		}
	} else {
		tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
		if (tty < 0) {
			user_cmd_say("no terminal to ask for the password; use "
				     "--stdin");
			return -1;
		}
		n = user_cmd_ask(tty, "New password: ", pw, size);
		m = n < 0 ? -1
			  : user_cmd_ask(tty, "Retype new password: ", again,
					 sizeof(again));
		close(tty);
		if (n < 0 || m < 0) {
			user_cmd_say("could not read the password (or longer "
				     "than %d bytes)",
				     USERS_PASSWORD_MAX);
			goto out;
		}
		if (n != m || sodium_memcmp(pw, again, (size_t)n) != 0) {
			user_cmd_say("passwords do not match");
			goto out;
		}
	}
	if ((size_t)n > USERS_PASSWORD_MAX) {
		user_cmd_say("password longer than %d bytes",
			     USERS_PASSWORD_MAX);
		goto out;
	}
	if (n < USERS_PASSWORD_MIN) {
		user_cmd_say("password too short (at least %d characters)",
			     USERS_PASSWORD_MIN);
		goto out;
	}
	if (memchr(pw, '\0', (size_t)n) != NULL) {
		user_cmd_say("password contains a NUL byte");
		goto out;
	}
	*len_r = (size_t)n;
	ret = 0;
out:
	sodium_memzero(again, sizeof(again));
	return ret;
}

/* Who claims `addr` already (as a name or alias)? NULL when free. */
static const struct user *
user_cmd_claimed_by(const struct users *us, const char *addr)
{
	for (size_t i = 0; i < users_count(us); i++)
		if (users_may_send_as(users_get(us, i), addr))
			return users_get(us, i);
	return NULL;
}

/* Is the edit possible on this file? Explains on stderr when not. */
static int
user_cmd_check_edit(const struct users *us, const struct users_edit *ed)
{
	const struct user *u = users_find(us, ed->address), *o;

	if (ed->op == USERS_OP_ADD) {
		if ((o = user_cmd_claimed_by(us, ed->address)) != NULL) {
			if (o == u)
				user_cmd_say("%s exists already", ed->address);
			else
				user_cmd_say("%s is an alias of %s",
					     ed->address, o->name);
			return -1;
		}
		for (size_t i = 0; i < ed->n_aliases; i++) {
			o = user_cmd_claimed_by(us, ed->aliases[i]);
			if (o != NULL) {
				user_cmd_say("alias %s is taken by %s",
					     ed->aliases[i], o->name);
				return -1;
			}
			if (strcmp(ed->aliases[i], ed->address) == 0) {
				user_cmd_say("alias %s is the user's own name",
					     ed->aliases[i]);
				return -1;
			}
			for (size_t j = 0; j < i; j++)
				if (strcmp(ed->aliases[i], ed->aliases[j]) ==
				    0) {
					user_cmd_say("alias %s given twice",
						     ed->aliases[i]);
					return -1;
				}
		}
		return 0;
	}
	if (u == NULL) {
		user_cmd_say("no such user %s", ed->address);
		return -1;
	}
	if (ed->op == USERS_OP_ALIAS_ADD) {
		o = user_cmd_claimed_by(us, ed->aliases[0]);
		if (o != NULL) {
			user_cmd_say("alias %s is taken by %s", ed->aliases[0],
				     o->name);
			return -1;
		}
	} else if (ed->op == USERS_OP_ALIAS_DEL) {
		for (size_t i = 0; i < u->n_aliases; i++)
			if (strcmp(u->aliases[i], ed->aliases[0]) == 0)
				return 0;
		user_cmd_say("%s has no alias %s", u->name, ed->aliases[0]);
		return -1;
	}
	return 0;
}

static int
user_cmd_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Split path into its directory (malloc'd) and base name. */
static char *
user_cmd_dir_of(const char *path, const char **base_r)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL) {
		*base_r = path;
		return strdup(".");
	}
	*base_r = slash + 1;
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/*
 * Replace the file with `data` atomically: temporary file in the same
 * directory (mode 0600 at creation, then the original's mode and owner),
 * written, fsync'd, re-loaded as a check, renamed over, directory fsync'd.
 * The temporary file never survives a failure.
 */
static int
user_cmd_replace(const char *path, int dirfd, const char *dir, const char *base,
		 const struct stat *orig, const char *data, size_t len)
{
	char *tmp = NULL;
	struct users *check = NULL;
	int fd = -1;
	bool placed = false;

	if (asprintf(&tmp, "%s/.%s.tmpXXXXXX", dir, base) < 0) {
		tmp = NULL;
		user_cmd_say("out of memory");
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		user_cmd_say("cannot create a file in %s: %s", dir,
			     strerror(errno));
		goto fail;
	}
	placed = true;
	if (orig != NULL) {
		if (fchmod(fd, orig->st_mode & 07777) < 0) {
			user_cmd_say("cannot set the mode of %s: %s", tmp,
				     strerror(errno));
			goto fail;
		}
		if ((orig->st_uid != geteuid() || orig->st_gid != getegid()) &&
		    fchown(fd, orig->st_uid, orig->st_gid) < 0) {
			user_cmd_say("cannot keep the owner of %s (%s); run as "
				     "root or as its owner",
				     path, strerror(errno));
			goto fail;
		}
	}
	if (user_cmd_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		user_cmd_say("cannot write %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		user_cmd_say("cannot write %s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (users_load(tmp, &check, stderr) < 0) {
		user_cmd_say("the new file does not load; %s left unchanged",
			     path);
		goto fail;
	}
	users_free(&check);
	if (rename(tmp, path) < 0) {
		user_cmd_say("cannot rename over %s: %s", path,
			     strerror(errno));
		goto fail;
	}
	placed = false;
	if (fsync(dirfd) < 0) {
		user_cmd_say("cannot fsync %s: %s", dir, strerror(errno));
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (placed)
		(void)unlink(tmp);
	free(tmp);
	return -1;
}

/*
 * Load the file for an edit. A missing file is an empty one for `add`
 * only. Symbolic links are refused: rename would replace the link.
 */
static int
user_cmd_load(const struct user_cmd *c, char **buf_r, size_t *len_r,
	      struct users **us_r, struct stat *st_r, bool *exists_r)
{
	*exists_r = false;
	*buf_r = NULL;
	*us_r = NULL;
	if (lstat(c->path, st_r) < 0) {
		if (errno != ENOENT || c->ed.op != USERS_OP_ADD) {
			user_cmd_say("%s: %s", c->path, strerror(errno));
			return -1;
		}
		*buf_r = strdup("");
		*len_r = 0;
		if (*buf_r == NULL)
			return -1;
	} else {
		if (S_ISLNK(st_r->st_mode)) {
			user_cmd_say(
			    "%s is a symbolic link; give the real path",
			    c->path);
			return -1;
		}
		*exists_r = true;
		if (users_read_file(c->path, buf_r, len_r) < 0) {
			user_cmd_say("%s: %s", c->path, strerror(errno));
			return -1;
		}
	}
	if (users_parse(c->path, *buf_r, *len_r, us_r, stderr) < 0) {
		user_cmd_say("fix %s first", c->path);
		free(*buf_r);
		*buf_r = NULL;
		return -1;
	}
	return 0;
}

/* Under the directory lock: re-load, re-check, apply, replace. */
static int
user_cmd_commit(const struct user_cmd *c)
{
	const char *base;
	char *dir = user_cmd_dir_of(c->path, &base), *buf = NULL, *out = NULL;
	struct users *us = NULL;
	struct stat st;
	size_t len = 0, out_len = 0;
	bool exists;
	int dirfd = -1, ret = -1;

	if (dir == NULL)
		return -1;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0 || flock(dirfd, LOCK_EX) < 0) {
		user_cmd_say("%s: %s", dir, strerror(errno));
		goto out;
	}
	if (user_cmd_load(c, &buf, &len, &us, &st, &exists) < 0 ||
	    user_cmd_check_edit(us, &c->ed) < 0)
		goto out;
	if (users_edit_apply(buf, len, us, &c->ed, &out, &out_len) < 0) {
		user_cmd_say("out of memory");
		goto out;
	}
	ret = user_cmd_replace(c->path, dirfd, dir, base, exists ? &st : NULL,
			       out, out_len);
out:
	if (dirfd >= 0)
		close(dirfd); /* drops the lock */
	if (buf != NULL) {
		sodium_memzero(buf, len);
		free(buf);
	}
	if (out != NULL) {
		sodium_memzero(out, out_len);
		free(out);
	}
	users_free(&us);
	free(dir);
	return ret;
}

static int
user_cmd_list(const char *path)
{
	struct users *us;

	if (users_load(path, &us, stderr) < 0)
		return 1;
	for (size_t i = 0; i < users_count(us); i++) {
		const struct user *u = users_get(us, i);

		fputs(u->name, stdout);
		for (size_t j = 0; j < u->n_aliases; j++) {
			fputc(j == 0 ? '\t' : ',', stdout);
			fputs(u->aliases[j], stdout);
		}
		fputc('\n', stdout);
	}
	users_free(&us);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* Validate and lower-case an address from the command line. */
static char *
user_cmd_address(const char *s, const char *what)
{
	size_t len = strlen(s);
	char *r;

	if (!users_valid_address(s, len)) {
		user_cmd_say("invalid %s '%.80s'", what, s);
		return NULL;
	}
	r = malloc(len + 1);
	if (r == NULL) {
		user_cmd_say("out of memory");
		return NULL;
	}
	for (size_t i = 0; i <= len; i++)
		r[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
	return r;
}

static int
user_cmd_add_alias(struct users_edit *ed, const char *s)
{
	char **a = reallocarray(ed->aliases, ed->n_aliases + 1, sizeof(*a));

	if (a == NULL)
		return -1;
	ed->aliases = a;
	a[ed->n_aliases] = user_cmd_address(s, "alias");
	if (a[ed->n_aliases] == NULL)
		return -1;
	ed->n_aliases++;
	return 0;
}

/* The subcommand in argv[1]: sets c->ed.op or c->is_list; -1 unknown. */
static int
user_cmd_verb(const char *word, struct user_cmd *c)
{
	static const struct {
		const char *name;
		enum users_op op;
	} cmds[] = {
	    {"add", USERS_OP_ADD},
	    {"passwd", USERS_OP_PASSWD},
	    {"del", USERS_OP_DEL},
	    {"alias", USERS_OP_ALIAS_ADD},
	};

	if (strcmp(word, "list") == 0) {
		c->is_list = true;
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(word, cmds[i].name) == 0) {
			c->ed.op = cmds[i].op;
			return 0;
		}
	return -1;
}

/*
 * Parse "user SUBCOMMAND ..." into c. Returns 0, or the exit status of a
 * usage error. Options are recognised anywhere after the subcommand;
 * exactly one positional ADDRESS (none for list), so a password given on
 * the command line is a usage error.
 */
static int
user_cmd_parse(int argc, char **argv, struct user_cmd *c)
{
	struct users_edit *ed = &c->ed;
	const char *address = NULL;
	int n_alias_ops = 0, i;
	bool alias_cmd;

	if (argc < 2)
		return user_cmd_usage(NULL);
	if (user_cmd_verb(argv[1], c) < 0)
		return user_cmd_usage("unknown subcommand");
	alias_cmd = !c->is_list && ed->op == USERS_OP_ALIAS_ADD;
	for (i = 2; i < argc; i++) {
		const char *a = argv[i];
		bool takes = strcmp(a, "--alias") == 0 ||
			     strcmp(a, "--add") == 0 || strcmp(a, "--del") == 0;
		bool is_add = !c->is_list && ed->op == USERS_OP_ADD;

		if (takes && i + 1 >= argc)
			return user_cmd_usage("option needs an address");
		if (strcmp(a, "--stdin") == 0 &&
		    (is_add || (!c->is_list && ed->op == USERS_OP_PASSWD))) {
			c->from_stdin = true;
		} else if (strcmp(a, "--alias") == 0 && is_add) {
			if (user_cmd_add_alias(ed, argv[++i]) < 0)
				return 1;
		} else if ((strcmp(a, "--add") == 0 ||
			    strcmp(a, "--del") == 0) &&
			   alias_cmd) {
			if (strcmp(a, "--del") == 0)
				ed->op = USERS_OP_ALIAS_DEL;
			n_alias_ops++;
			if (user_cmd_add_alias(ed, argv[++i]) < 0)
				return 1;
		} else if (a[0] == '-') {
			return user_cmd_usage("unknown option for this "
					      "subcommand");
		} else if (address == NULL && !c->is_list) {
			address = a;
		} else {
			return user_cmd_usage("too many arguments (passwords "
					      "are never taken from the "
					      "command line: use the prompt "
					      "or --stdin)");
		}
	}
	if (c->is_list)
		return 0;
	if (address == NULL)
		return user_cmd_usage("missing ADDRESS");
	if (alias_cmd && n_alias_ops != 1)
		return user_cmd_usage("alias needs exactly one --add or --del");
	ed->address = user_cmd_address(address, "address");
	return ed->address == NULL ? 1 : 0;
}

static void
user_cmd_free(struct user_cmd *c)
{
	struct users_edit *ed = &c->ed;

	free(ed->address);
	for (size_t i = 0; i < ed->n_aliases; i++)
		free(ed->aliases[i]);
	free(ed->aliases);
	free(ed->hash);
	memset(c, 0, sizeof(*c));
}

static const char *
user_cmd_done_msg(enum users_op op)
{
	switch (op) {
	case USERS_OP_ADD:
		return "added";
	case USERS_OP_PASSWD:
		return "password changed for";
	case USERS_OP_DEL:
		return "deleted";
	case USERS_OP_ALIAS_ADD:
		return "alias added to";
	case USERS_OP_ALIAS_DEL:
		return "alias removed from";
	}
	return "";
}

/* add and passwd: refuse early, before asking for a password; then ask
   and hash it. */
static int
user_cmd_new_password(struct user_cmd *c)
{
	char pw[USERS_PASSWORD_MAX + 2];
	struct users *us = NULL;
	char *buf = NULL;
	size_t len, pwlen = 0;
	struct stat st;
	bool exists;
	int ret = -1;

	if (user_cmd_load(c, &buf, &len, &us, &st, &exists) < 0 ||
	    user_cmd_check_edit(us, &c->ed) < 0)
		goto out;
	if (user_cmd_get_password(c->from_stdin, pw, sizeof(pw), &pwlen) < 0)
		goto out;
	if (users_hash(pw, pwlen, &c->ed.hash) < 0) {
		user_cmd_say("hashing the password failed");
		goto out;
	}
	ret = 0;
out:
	sodium_memzero(pw, sizeof(pw));
	users_free(&us);
	free(buf);
	return ret;
}

int
user_cmd_run(const char *path, int argc, char **argv)
{
	struct user_cmd c = {.path = path};
	int ret = 1;

	if (path == NULL || *path == '\0') {
		user_cmd_say("no users file configured");
		return 1;
	}
	if (user_cmd_parse(argc, argv, &c) != 0)
		goto out;
	if (c.is_list) {
		ret = user_cmd_list(path);
		goto out;
	}
	if ((c.ed.op == USERS_OP_ADD || c.ed.op == USERS_OP_PASSWD) &&
	    user_cmd_new_password(&c) < 0)
		goto out;
	if (user_cmd_commit(&c) < 0)
		goto out;
	user_cmd_say("%s %s", user_cmd_done_msg(c.ed.op), c.ed.address);
	ret = 0;
out:
	user_cmd_free(&c);
	return ret;
}
