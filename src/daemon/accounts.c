/*
 * accounts.c - which account each process runs as, the checks of the
 * users file against them, and the control socket's directory
 * (accounts.h, docs/security.md).
 */
#include "daemon/accounts.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/proc.h"
#include "lib/log.h"

const char *
accounts_guard(const struct config *cfg)
{
	return cfg->guard_user != NULL ? cfg->guard_user : cfg->user;
}

/*
 * Can `account` open `path` for reading? Asked of the kernel, in a child
 * that becomes the account: modes, ACLs and directories all count.
 * 1 yes, 0 no, -1 could not tell.
 */
static int
accounts_can_read(const char *account, const char *path)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd;

		if (proc_drop_privileges(account) < 0)
			_exit(2);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		_exit(fd >= 0 ? 1 : 0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
		return -1;
	return WEXITSTATUS(status);
}

/* The primary group's name of `account`, for the advice ("GROUP"). */
static void
accounts_group_of(const char *account, char *buf, size_t size)
{
	struct passwd *pw = getpwnam(account);
	struct group *gr = pw != NULL ? getgrgid(pw->pw_gid) : NULL;

	snprintf(buf, size, "%s", gr != NULL ? gr->gr_name : "GROUP");
}

/* Warn when the workers may read the users file, or the guard may not. */
static void
accounts_check_users_file(const struct config *cfg)
{
	const char *guard = accounts_guard(cfg);
	char group[256];

	if (cfg->users_file == NULL)
		return;
	if (cfg->user != NULL && cfg->guard_user != NULL &&
	    strcmp(cfg->user, cfg->guard_user) != 0 &&
	    accounts_can_read(cfg->user, cfg->users_file) == 1) {
		accounts_group_of(cfg->guard_user, group, sizeof(group));
		log_warning("-",
			    "users-file-readable path=%s account=%s "
			    "fix=\"chown root:%s %s && chmod 0640 %s\" "
			    "reason=\"the workers' account can read the "
			    "password hashes\"",
			    cfg->users_file, cfg->user, group,
			    cfg->users_file, cfg->users_file);
	}
	if (guard != NULL && accounts_can_read(guard, cfg->users_file) == 0)
		log_error("-",
			  "users-file-unreadable path=%s account=%s "
			  "reason=\"the guard cannot read it: AUTH answers "
			  "454 4.7.0\"",
			  cfg->users_file, guard);
}

/* The workers carry their account's groups (initgroups): one of them
   must not be the admin group, or the control socket would answer them. */
static void
accounts_check_admin(const struct config *cfg)
{
	gid_t groups[256];
	int n = (int)(sizeof(groups) / sizeof(groups[0]));
	struct passwd *pw;
	struct group *gr;
	gid_t admin;

	if (cfg->user == NULL || cfg->admin_group == NULL ||
	    (gr = getgrnam(cfg->admin_group)) == NULL)
		return;
	admin = gr->gr_gid;
	if ((pw = getpwnam(cfg->user)) == NULL)
		return;
	if (getgrouplist(cfg->user, pw->pw_gid, groups, &n) < 0)
		n = (int)(sizeof(groups) / sizeof(groups[0]));
	for (int i = 0; i < n; i++)
		if (groups[i] == admin) {
			log_warning("-",
				    "admin-group-has-workers account=%s "
				    "group=%s reason=\"the workers may use "
				    "the control socket: take %s out of %s\"",
				    cfg->user, cfg->admin_group, cfg->user,
				    cfg->admin_group);
			return;
		}
}

void
accounts_check(const struct config *cfg)
{
	struct passwd *pw;

	if (geteuid() != 0) {
		pw = getpwuid(geteuid());
		log_notice("-",
			   "accounts single account=%s reason=\"not started "
			   "as root: the workers and the guard share this "
			   "account, so the users file is not kept from the "
			   "workers (docs/security.md)\"",
			   pw != NULL ? pw->pw_name : "?");
		return;
	}
	if (cfg->user != NULL &&
	    (cfg->guard_user == NULL || strcmp(cfg->user, cfg->guard_user) == 0))
		log_warning("-",
			    "accounts shared account=%s reason=\"the guard "
			    "runs as the workers' account: set guard-user to "
			    "a second account (docs/security.md)\"",
			    cfg->user);
	else
		log_info("-", "accounts workers=%s guard=%s",
			 cfg->user != NULL ? cfg->user : "root",
			 cfg->guard_user != NULL ? cfg->guard_user : "root");
	accounts_check_users_file(cfg);
	accounts_check_admin(cfg);
}

/* mkdir -p the parents of `dir` (root's, 0755), not `dir` itself. */
static int
accounts_mkparents(const char *dir)
{
	char tmp[4096];
	int n = snprintf(tmp, sizeof(tmp), "%s", dir);

	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

/*
 * No directory on the way to `dir` may be in the workers' hands: owned by
 * their account, or writable by all without the sticky bit (they could
 * rename the socket's directory away and put their own in its place).
 */
static int
accounts_check_parents(const char *dir, uid_t worker, const char **why_r)
{
	char tmp[4096];
	struct stat st;

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *slash = strrchr(tmp, '/'); slash != NULL;
	     slash = strrchr(tmp, '/')) {
		*slash = '\0';
		if (stat(tmp[0] != '\0' ? tmp : "/", &st) < 0)
			continue;
		if ((worker != 0 && st.st_uid == worker) ||
		    ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))) {
			*why_r = "a parent directory is owned by the workers' "
				 "account or writable by all";
			return -1;
		}
	}
	return 0;
}

/*
 * Check (or, when just made, set) the directory open as `fd`: not
 * writable by its group or by all. 0 with its owner in *owner_r (the
 * caller accepts root and the guard's account), or -1 (*why_r).
 */
static int
accounts_control_dir_mode(int fd, bool made, gid_t gid, uid_t *owner_r,
		      const char **why_r)
{
	struct stat st;

	if (made && (fchown(fd, 0, gid) < 0 || fchmod(fd, 0750) < 0)) {
		*why_r = strerror(errno);
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		*why_r = strerror(errno);
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		*why_r = "writable by its group or by all";
		return -1;
	}
	*owner_r = st.st_uid;
	return 0;
}

int
accounts_control_dir(const struct config *cfg)
{
	char dir[4096], *slash;
	struct passwd *wpw = NULL, *gpw = NULL;
	struct group *gr = NULL;
	const char *why = NULL, *guard = accounts_guard(cfg);
	bool made = false;
	uid_t owner = 0;
	int fd, rc;

	/* An unknown guard-user would leave the guard restarting. */
	if (geteuid() == 0 && cfg->guard_user != NULL &&
	    getpwnam(cfg->guard_user) == NULL) {
		log_error("-", "guard-user name=%s error=\"no such user\"",
			  cfg->guard_user);
		return -1;
	}
	if (cfg->control_socket == NULL)
		return 0;
	snprintf(dir, sizeof(dir), "%s", cfg->control_socket);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0; /* config.c makes it absolute: "/x" only */
	*slash = '\0';
	if (cfg->admin_group != NULL &&
	    (gr = getgrnam(cfg->admin_group)) == NULL) {
		log_error("-", "admin-group name=%s error=\"no such group\"",
			  cfg->admin_group);
		return -1;
	}
	if (geteuid() != 0) {
		/* One account: the directory is its own, as before. */
		if (accounts_mkparents(cfg->control_socket) < 0)
			goto fail_errno;
		return 0;
	}
	if (cfg->user != NULL && (wpw = getpwnam(cfg->user)) == NULL) {
		log_error("-", "user name=%s error=\"no such user\"", cfg->user);
		return -1;
	}
	if (accounts_mkparents(dir) < 0)
		goto fail_errno;
	if (mkdir(dir, 0700) == 0)
		made = true;
	else if (errno != EEXIST)
		goto fail_errno;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		goto fail_errno;
	rc = accounts_control_dir_mode(fd, made, gr != NULL ? gr->gr_gid : 0,
				   &owner, &why);
	close(fd);
	gpw = guard != NULL ? getpwnam(guard) : NULL;
	if (rc == 0 && owner != 0 &&
	    (gpw == NULL || owner != gpw->pw_uid ||
	     (wpw != NULL && owner == wpw->pw_uid))) {
		why = "not owned by root or the guard's account";
		rc = -1;
	}
	if (rc < 0 ||
	    accounts_check_parents(dir, wpw != NULL ? wpw->pw_uid : 0, &why) < 0) {
		log_error("-",
			  "control-socket dir=%s error=\"%s\" fix=\"use a "
			  "directory of its own, e.g. /run/postern: chown "
			  "root:%s DIR && chmod 0750 DIR\"",
			  dir, why, gr != NULL ? gr->gr_name : "root");
		return -1;
	}
	return 0;
fail_errno:
	log_error("-", "control-socket path=%s error=\"%s\"",
		  cfg->control_socket, strerror(errno));
	return -1;
}
