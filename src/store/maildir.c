/*
 * maildir.c - Maildir paths and delivery (https://cr.yp.to/proto/maildir.html).
 *
 * Every call that changes the file system goes through the storefs seam
 * (storefs.h) so that tests can fail or "crash" at any of them. Directories
 * are opened with O_DIRECTORY|O_NOFOLLOW and files are named relative to
 * those descriptors, so a symbolic link planted as tmp/, new/ or cur/, or at
 * tmp/<name>, is never followed (THREATS F-04).
 */
#include "store/maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/storefs.h"

#define MAILDIR_HOST_MAX 128 /* octets of the escaped host part of a name */
#define MAILDIR_DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* Append `len` bytes to buf at *o, keeping room for the NUL. */
static int
maildir_append(char *buf, size_t size, size_t *o, const char *s, size_t len)
{
	if (len >= size - *o)
		return -1;
	memcpy(buf + *o, s, len);
	*o += len;
	return 0;
}

/* Octets of the host name `c` as written in a file name: the Maildir
   convention writes '/' as \057 and ':' as \072; we also write any octet
   outside 0x21-0x7e that way, so the name never holds a space, a control
   octet or a non-ASCII byte. */
static size_t
maildir_host_octet(unsigned char c, char esc[4])
{
	if (c != '/' && c != ':' && c >= 0x21 && c <= 0x7e) {
		esc[0] = (char)c;
		return 1;
	}
	esc[0] = '\\';
	esc[1] = (char)('0' + (c >> 6));
	esc[2] = (char)('0' + ((c >> 3) & 7));
	esc[3] = (char)('0' + (c & 7));
	return 4;
}

/* The host part, escaped, as long as it stays within `limit` octets (an
   escape is never cut in two). */
static int
maildir_append_host(char *buf, size_t size, size_t *o, const char *host,
		    size_t limit)
{
	size_t used = 0;

	for (const char *h = host; *h != '\0'; h++) {
		char esc[4];
		size_t n = maildir_host_octet((unsigned char)*h, esc);

		if (used + n > limit)
			break;
		if (maildir_append(buf, size, o, esc, n) < 0)
			return -1;
		used += n;
	}
	return 0;
}

/* FNV-1a, 64 bits: a stable digest of a long host name (not a secret). */
static uint64_t
maildir_fnv64(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/*
 * "<when>.<queue_id>.<host>", the host part escaped (see above) and at
 * most MAILDIR_HOST_MAX octets, so that the name stays well under
 * NAME_MAX (255) with room for the ":2,<flags>" a reader appends in cur/
 * (a 253-octet hostname would otherwise make every delivery fail with
 * ENAMETOOLONG). A longer host part keeps its first octets and ends in
 * "-" and 16 hex digits of a digest of the whole host name: still
 * derived only from the arguments, so recovery finds the same name.
 */
int
maildir_name(long when, const char *queue_id, const char *hostname, char *buf,
	     size_t size)
{
	size_t o, esc_len = 0;
	char tail[18];
	int n;

	if (buf == NULL || size == 0)
		return -1;
	n = snprintf(buf, size, "%ld.%s.", when, queue_id);
	if (n < 0 || (size_t)n >= size)
		goto fail;
	o = (size_t)n;
	for (const char *h = hostname; *h != '\0'; h++) {
		char esc[4];

		esc_len += maildir_host_octet((unsigned char)*h, esc);
	}
	if (esc_len <= MAILDIR_HOST_MAX) {
		if (maildir_append_host(buf, size, &o, hostname, esc_len) < 0)
			goto fail;
	} else {
		n = snprintf(tail, sizeof(tail), "-%016" PRIx64,
			     maildir_fnv64(hostname));
		if (n < 0 || (size_t)n >= sizeof(tail) ||
		    maildir_append_host(buf, size, &o, hostname,
					MAILDIR_HOST_MAX - (size_t)n) < 0 ||
		    maildir_append(buf, size, &o, tail, (size_t)n) < 0)
			goto fail;
	}
	buf[o] = '\0';
	return 0;
fail:
	buf[0] = '\0';
	return -1;
}

/* mkdirat() that treats an existing entry as success (checked later). */
static int
maildir_mkdir(int dfd, const char *path)
{
	if (storefs.mkdirat(dfd, path, 0700) == 0 || errno == EEXIST)
		return 0;
	return -1;
}

/* Open `path` relative to `dfd` as a directory, never through a symlink. */
static int
maildir_open_dir(int dfd, const char *path)
{
	return storefs.openat(dfd, path, MAILDIR_DIR_FLAGS, 0);
}

/*
 * Create the parents of `dir` (mkdir -p). Parents that exist already are
 * the administrator's layout and may be symbolic links (e.g. /var/mail);
 * the Maildir itself and its tmp/ new/ cur/ may not (maildir_create).
 */
static int
maildir_create_parents(const char *dir)
{
	char path[4096];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, dir, len + 1);
	for (size_t i = 1; i < len; i++) {
		if (path[i] != '/' || path[i - 1] == '/')
			continue;
		path[i] = '\0';
		if (maildir_mkdir(AT_FDCWD, path) < 0) {
			path[i] = '/';
			return -1;
		}
		path[i] = '/';
	}
	return 0;
}

/*
 * Create <dir>, <dir>/tmp, <dir>/new and <dir>/cur (0700) when missing.
 * The Maildir and its three subdirectories must be real directories: each
 * is reopened with O_NOFOLLOW, so a symbolic link in their place fails with
 * ELOOP or ENOTDIR.
 */
int
maildir_create(const char *dir)
{
	static const char *const subs[] = {"tmp", "new", "cur"};
	int dfd, fd, saved;

	if (dir == NULL || dir[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	dfd = maildir_open_dir(AT_FDCWD, dir);
	if (dfd < 0 && errno == ENOENT) {
		if (maildir_create_parents(dir) < 0 ||
		    maildir_mkdir(AT_FDCWD, dir) < 0)
			return -1;
		dfd = maildir_open_dir(AT_FDCWD, dir);
	}
	if (dfd < 0)
		return -1;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (maildir_mkdir(dfd, subs[i]) < 0)
			goto fail;
		fd = maildir_open_dir(dfd, subs[i]);
		if (fd < 0)
			goto fail;
		close(fd);
	}
	close(dfd);
	return 0;
fail:
	saved = errno;
	close(dfd);
	errno = saved;
	return -1;
}

/*
 * Is there an entry "<name>:..." in cur/ (a delivered message that a
 * reader has seen and given flags)? 1 yes, 0 no, -1 error.
 */
static int
maildir_in_cur(int dfd, const char *name)
{
	size_t len = strlen(name);
	struct dirent *de;
	DIR *d;
	int fd, found = 0;

	fd = maildir_open_dir(dfd, "cur");
	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, name, len) == 0 &&
		    de->d_name[len] == ':') {
			found = 1;
			break;
		}
	}
	if (de == NULL && errno != 0)
		found = -1;
	closedir(d);
	return found;
}

/*
 * Copy `src_path` to tmp/<name> (spool and Maildir on different file
 * systems). The copy is fsync'd here, because with SYNC_FSYNC the caller
 * only syncs new/; the fallback is rare, so the extra cost is acceptable.
 */
static int
maildir_copy(const char *src_path, int tfd, const char *name)
{
	char buf[65536];
	int in, out, saved;
	ssize_t n;

	in = storefs.openat(AT_FDCWD, src_path,
			     O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (in < 0)
		return -1;
	out = storefs.openat(
	    tfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (out < 0)
		goto fail_in;
	for (;;) {
		n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail_out;
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w =
			    storefs.write(out, buf + off, (size_t)(n - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				if (w == 0)
					errno = EIO;
				goto fail_out;
			}
			off += w;
		}
	}
	if (storefs.fsync(out) < 0)
		goto fail_out;
	close(out);
	close(in);
	return 0;
fail_out:
	saved = errno;
	close(out);
	storefs.unlinkat(tfd, name, 0);
	errno = saved;
fail_in:
	saved = errno;
	close(in);
	errno = saved;
	return -1;
}

/*
 * Make tmp/<name> a link to (or copy of) src_path. A stale tmp/<name>
 * (left by a crash, or planted as a symlink) is removed once - unlinkat()
 * never follows it - and the link is tried again.
 */
static int
maildir_link_tmp(const char *src_path, int tfd, const char *name)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int r = storefs.linkat(AT_FDCWD, src_path, tfd, name, 0);

		if (r < 0 && errno == EXDEV)
			r = maildir_copy(src_path, tfd, name);
		if (r == 0)
			return 0;
		if (errno != EEXIST || attempt > 0)
			return -1;
		if (storefs.unlinkat(tfd, name, 0) < 0 && errno != ENOENT)
			return -1;
	}
	return -1;
}

/*
 * Move tmp/<name> to new/<name> without ever replacing an existing entry
 * (RENAME_NOREPLACE; on a file system without it, check then rename).
 * Returns 0, 1 when new/<name> was there already, or -1.
 */
static int
maildir_move_new(int tfd, int nfd, const char *name)
{
	struct stat st;
	int saved;

	if (storefs.renameat(tfd, name, nfd, name, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EINVAL) {
		if (fstatat(nfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			errno = EEXIST;
		else if (storefs.renameat(tfd, name, nfd, name, 0) == 0)
			return 0;
	}
	saved = errno;
	storefs.unlinkat(tfd, name, 0);
	if (saved == EEXIST)
		return 1;
	errno = saved;
	return -1;
}

/* The delivery itself; check_cur: also look for "<name>:*" in cur/. */
static int
maildir_put(const char *dir, const char *name, const char *src_path,
	    bool check_cur)
{
	int dfd, tfd = -1, nfd = -1, r = -1, saved;
	struct stat st;

	if (name[0] == '\0' || name[0] == '.' || strchr(name, '/') != NULL ||
	    strchr(name, ':') != NULL) {
		errno = EINVAL;
		return -1;
	}
	dfd = maildir_open_dir(AT_FDCWD, dir);
	if (dfd < 0)
		return -1;
	tfd = maildir_open_dir(dfd, "tmp");
	if (tfd < 0)
		goto out;
	nfd = maildir_open_dir(dfd, "new");
	if (nfd < 0)
		goto out;
	if (check_cur) {
		if (fstatat(nfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			r = 1;
			goto out;
		}
		r = maildir_in_cur(dfd, name);
		if (r != 0)
			goto out;
		r = -1;
	}
	if (maildir_link_tmp(src_path, tfd, name) < 0)
		goto out;
	r = maildir_move_new(tfd, nfd, name);
out:
	saved = errno;
	if (nfd >= 0)
		close(nfd);
	if (tfd >= 0)
		close(tfd);
	close(dfd);
	errno = saved;
	return r;
}

int
maildir_deliver(const char *dir, const char *name, const char *src_path)
{
	return maildir_put(dir, name, src_path, true);
}

int
maildir_deliver_fresh(const char *dir, const char *name, const char *src_path)
{
	return maildir_put(dir, name, src_path, false);
}
