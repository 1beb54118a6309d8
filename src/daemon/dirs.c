/*
 * dirs.c - the master's directories for the workers, made without
 * following links. See dirs.h.
 */
#include "daemon/dirs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"

#define DIRS_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define DIRS_PATH_MAX 4096

/* Who gets the directories the master makes (none: nobody changes). */
struct dirs_owner {
	bool is_set;
	uid_t uid;
	gid_t gid;
	const char *name;
};

static const char *
dirs_why(int err)
{
	if (err == ELOOP)
		return "a symbolic link where a directory belongs, not followed";
	if (err == ENOTDIR)
		return "not a directory";
	return strerror(err);
}

static void
dirs_log(const char *what, const char *path, const char *why)
{
	char esc[DIRS_PATH_MAX + 8];

	log_error("-", "%s dir=%s error=\"%s\"", what,
		  log_escape(esc, sizeof(esc), path, strlen(path), 1000), why);
}

/*
 * The directory `name` was just made in `dfd` (mode 0700) and opened as
 * `fd`: give it to the worker account. Only if it still is what the
 * master made (its own, empty): a directory swapped in meanwhile keeps
 * its owner.
 */
static int
dirs_give(int fd, const struct dirs_owner *ow)
{
	struct stat st;

	if (!ow->is_set)
		return 0;
	if (fstat(fd, &st) < 0)
		return -1;
	if (st.st_uid != geteuid() || st.st_nlink != 2)
		return 0;
	return fchown(fd, ow->uid, ow->gid);
}

/*
 * Open the directory `name` in `dfd`, making it (0700) when it is
 * missing, never following a link. One the master makes is given to the
 * worker account; one that exists keeps its owner. Returns a descriptor,
 * or -1 with errno (ELOOP: a link; ENOTDIR: not a directory).
 */
static int
dirs_open_nofollow(int dfd, const char *name)
{
	int fd = openat(dfd, name, DIRS_FLAGS);
	struct stat st;

	/* Linux says ENOTDIR or ELOOP for a link: tell which it was. */
	if (fd < 0 && (errno == ENOTDIR || errno == ELOOP) &&
	    fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		errno = S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR;
	return fd;
}

static int
dirs_open_at(int dfd, const char *name, const struct dirs_owner *ow)
{
	int fd = dirs_open_nofollow(dfd, name);

	if (fd >= 0 || errno != ENOENT)
		return fd;
	if (mkdirat(dfd, name, 0700) < 0)
		return errno == EEXIST ? dirs_open_nofollow(dfd, name) : -1;
	fd = dirs_open_nofollow(dfd, name);
	if (fd >= 0 && dirs_give(fd, ow) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/*
 * Open the directory `path` (absolute, or relative to the working
 * directory) one component at a time from "/" or ".", making what is
 * missing. Returns its descriptor, or -1 with errno and the path up to
 * the component that failed in `at`.
 */
static int
dirs_walk(const char *path, const struct dirs_owner *ow, char *at,
	  size_t at_size)
{
	size_t len = strlen(path), i = 0;
	int fd;

	snprintf(at, at_size, "%s", path);
	fd = dirs_open_nofollow(AT_FDCWD, path[0] == '/' ? "/" : ".");
	while (fd >= 0 && i < len) {
		size_t n = strcspn(path + i, "/");
		char name[NAME_MAX + 1];
		int next, saved;

		if (n == 0 || (n == 1 && path[i] == '.')) {
			i += n + (i + n < len);
			continue;
		}
		snprintf(at, at_size, "%.*s", (int)(i + n), path);
		if (n > NAME_MAX) {
			close(fd);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(name, path + i, n);
		name[n] = '\0';
		next = dirs_open_at(fd, name, ow);
		saved = errno;
		close(fd);
		errno = saved;
		fd = next;
		i += n + (i + n < len);
	}
	return fd;
}

/* The spool: made like the others, and it must be the worker account's
   (it writes its areas and queue/ in it). */
static int
dirs_spool(const char *spool, const struct dirs_owner *ow)
{
	char at[DIRS_PATH_MAX], why[256];
	struct stat st;
	int fd = dirs_walk(spool, ow, at, sizeof(at));

	if (fd < 0) {
		dirs_log("spool", at, dirs_why(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		dirs_log("spool", spool, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	if (!ow->is_set || st.st_uid == ow->uid)
		return 0;
	snprintf(why, sizeof(why),
		 "belongs to uid %lu, not to %s: chown it, or remove it and "
		 "postern makes it",
		 (unsigned long)st.st_uid, ow->name);
	dirs_log("spool", spool, why);
	return -1;
}

/* A Maildir (qmail's layout): the directory and its tmp/, new/ and
   cur/. */
static int
dirs_maildir(const char *dir, const struct dirs_owner *ow)
{
	static const char *const subs[] = {"tmp", "new", "cur"};
	char at[DIRS_PATH_MAX];
	int fd = dirs_walk(dir, ow, at, sizeof(at));

	if (fd < 0) {
		dirs_log("maildir", at, dirs_why(errno));
		return -1;
	}
	for (size_t k = 0; k < sizeof(subs) / sizeof(subs[0]); k++) {
		int sfd = dirs_open_at(fd, subs[k], ow);

		if (sfd < 0) {
			int n = snprintf(at, sizeof(at), "%s/%s", dir, subs[k]);

			if (n < 0 || (size_t)n >= sizeof(at)) /* cut: mark it */
				memcpy(at + sizeof(at) - 4, "...", 4);
			dirs_log("maildir", at, dirs_why(errno));
			close(fd);
			return -1;
		}
		close(sfd);
	}
	close(fd);
	return 0;
}

/* The fixed part of the Maildir template (before the first %): the
   workers make what lies below it for new users. */
static int
dirs_maildir_root(const char *tmpl, const struct dirs_owner *ow)
{
	char root[DIRS_PATH_MAX], at[DIRS_PATH_MAX];
	const char *pct = strchr(tmpl, '%');
	size_t n = pct != NULL ? (size_t)(pct - tmpl) : strlen(tmpl);
	int fd;

	while (n > 1 && tmpl[n - 1] == '/')
		n--;
	if (n <= 1 || n >= sizeof(root))
		return 0;
	memcpy(root, tmpl, n);
	root[n] = '\0';
	fd = dirs_walk(root, ow, at, sizeof(at));
	if (fd < 0) {
		dirs_log("maildir", at, dirs_why(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/* The guard's state (docs/guard-state.md): the guard's own account's,
   mode 0700 (gstore.c refuses anything else). */
static int
dirs_guard_state(const struct config *cfg)
{
	const char *name = cfg->guard_user != NULL ? cfg->guard_user : cfg->user;
	struct dirs_owner ow = {.is_set = false};
	char at[DIRS_PATH_MAX], why[256];
	struct passwd *pw;
	struct stat st;
	int fd;

	if (cfg->guard_state == NULL)
		return 0;
	if (name != NULL && geteuid() == 0) {
		if ((pw = getpwnam(name)) == NULL) {
			log_error("-", "user name=%s error=\"no such user\"",
				  name);
			return -1;
		}
		ow = (struct dirs_owner){true, pw->pw_uid, pw->pw_gid, name};
	}
	if ((fd = dirs_walk(cfg->guard_state, &ow, at, sizeof(at))) < 0) {
		dirs_log("guard-state", at, dirs_why(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 ||
	    st.st_uid != (ow.is_set ? ow.uid : geteuid())) {
		snprintf(why, sizeof(why),
			 "not the guard account's: chown it, or remove it "
			 "and postern makes it");
		dirs_log("guard-state", cfg->guard_state, why);
		close(fd);
		return -1;
	}
	if ((st.st_mode & 077) != 0 && fchmod(fd, 0700) < 0) {
		dirs_log("guard-state", cfg->guard_state, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
dirs_prepare(const struct config *cfg)
{
	struct dirs_owner ow = {.is_set = false};
	char dir[DIRS_PATH_MAX];

	if (cfg->user != NULL && geteuid() == 0) {
		struct passwd *pw = getpwnam(cfg->user);

		if (pw == NULL) {
			log_error("-", "user name=%s error=\"no such user\"",
				  cfg->user);
			return -1;
		}
		ow = (struct dirs_owner){true, pw->pw_uid, pw->pw_gid,
					 cfg->user};
	}
	if (dirs_spool(cfg->spool, &ow) < 0)
		return -1;
	if (dirs_maildir_root(cfg->maildir, &ow) < 0)
		return -1;
	if (dirs_guard_state(cfg) < 0)
		return -1;
	for (size_t i = 0; i < cfg->n_mailboxes; i++) {
		if (config_maildir_path(cfg, &cfg->mailboxes[i], dir,
					sizeof(dir)) < 0)
			continue;
		if (dirs_maildir(dir, &ow) < 0)
			return -1;
	}
	return 0;
}
