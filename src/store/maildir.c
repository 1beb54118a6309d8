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

/* May copy_file_range(2) not do this copy (another file system, an old
   kernel, a file system without it), so that read/write must? */
static bool
maildir_copy_unsupported(int err)
{
	return err == EXDEV || err == EINVAL || err == ENOSYS ||
	       err == EOPNOTSUPP;
}

/*
 * Append octets [0, src_len) of `src_fd` to `out` (at its file offset):
 * copy_file_range(2), which copies in the kernel (or shares extents), or
 * pread/write where it cannot. The source is never changed; one that
 * turns out shorter than src_len fails with EIO. 0 or -1 (errno).
 */
static int
maildir_copy_data(int src_fd, uint64_t src_len, int out)
{
	char buf[65536];
	off_t off = 0;
	bool plain = false;

	while ((uint64_t)off < src_len) {
		uint64_t left = src_len - (uint64_t)off;
		size_t want = left > (1u << 30) ? (1u << 30) : (size_t)left;
		ssize_t n;

		if (!plain) {
			n = storefs.copy_range(src_fd, &off, out, want);
			if (n < 0 && off == 0 &&
			    maildir_copy_unsupported(errno)) {
				plain = true;
				continue;
			}
		} else {
			n = pread(src_fd, buf, want < sizeof(buf) ? want : sizeof(buf),
				  off);
			if (n > 0 && storefs_write_all(out, buf, (size_t)n) < 0)
				return -1;
			if (n > 0)
				off += n;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO; /* the source shrank */
			return -1;
		}
	}
	return 0;
}

/* A name we make: not empty, no leading '.', no '/' or ':'. */
static bool
maildir_name_ok(const char *name)
{
	return name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL &&
	       strchr(name, ':') == NULL;
}

/*
 * The trace fields of one delivered copy: "Return-Path: <sender>" (RFC
 * 5321 section 4.4: the reverse-path, "<>" for the null sender) and
 * "Delivered-To: rcpt" (the recipient this copy is for), each ending in
 * CRLF. The values come from the envelope, checked by the SMTP layer, but
 * a CR or LF in one (a header injection) is refused here anyway (EINVAL);
 * a NUL cannot be in a C string. EOVERFLOW when buf is too small.
 */
int
maildir_trace_header(const char *sender, const char *rcpt, char *buf,
		     size_t size, size_t *len_r)
{
	int n;

	if (sender == NULL || rcpt == NULL || rcpt[0] == '\0' ||
	    strpbrk(sender, "\r\n") != NULL || strpbrk(rcpt, "\r\n") != NULL) {
		errno = EINVAL;
		return -1;
	}
	n = snprintf(buf, size, "Return-Path: <%s>\r\nDelivered-To: %s\r\n",
		     sender, rcpt);
	if (n < 0 || (size_t)n >= size) {
		errno = EOVERFLOW;
		return -1;
	}
	*len_r = (size_t)n;
	return 0;
}

/*
 * Write tmp/<name> in directory `tfd`: `head`, then the data, fsync'd
 * when asked. A stale tmp/<name> (left by a crash, or planted as a
 * symlink) is removed once - unlinkat() never follows it - and the file
 * made again with O_EXCL|O_NOFOLLOW. On failure nothing is left. 0 or -1.
 */
static int
maildir_write_file(int tfd, const char *name, const char *head,
		   size_t head_len, int src_fd, uint64_t src_len,
		   bool do_fsync)
{
	int out = -1, saved;

	for (int attempt = 0; attempt < 2 && out < 0; attempt++) {
		out = storefs.openat(tfd, name,
				     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
					 O_CLOEXEC,
				     0600);
		if (out >= 0 || errno != EEXIST || attempt > 0)
			break;
		if (storefs.unlinkat(tfd, name, 0) < 0 && errno != ENOENT)
			return -1;
	}
	if (out < 0)
		return -1;
	if (storefs_write_all(out, head, head_len) == 0 &&
	    maildir_copy_data(src_fd, src_len, out) == 0 &&
	    (!do_fsync || storefs.fsync(out) == 0)) {
		close(out);
		return 0;
	}
	saved = errno;
	close(out);
	storefs.unlinkat(tfd, name, 0);
	errno = saved;
	return -1;
}

/* Open <dir>/<sub> (tmp/ or new/) and, when asked, <dir>/new too. */
static int
maildir_open_subs(const char *dir, const char *sub, int *fd_r, int *nfd_r)
{
	int dfd, saved;

	*fd_r = -1;
	if (nfd_r != NULL)
		*nfd_r = -1;
	dfd = maildir_open_dir(AT_FDCWD, dir);
	if (dfd < 0)
		return -1;
	*fd_r = maildir_open_dir(dfd, sub);
	if (*fd_r >= 0 && nfd_r != NULL) {
		*nfd_r = maildir_open_dir(dfd, "new");
		if (*nfd_r < 0) {
			saved = errno;
			close(*fd_r);
			*fd_r = -1;
			errno = saved;
		}
	}
	saved = errno;
	close(dfd);
	errno = saved;
	return *fd_r >= 0 ? 0 : -1;
}

int
maildir_write_tmp(const char *dir, const char *name, const char *head,
		  size_t head_len, int src_fd, uint64_t src_len, bool do_fsync)
{
	int tfd, r, saved;

	if (!maildir_name_ok(name)) {
		errno = EINVAL;
		return -1;
	}
	if (maildir_open_subs(dir, "tmp", &tfd, NULL) < 0)
		return -1;
	r = maildir_write_file(tfd, name, head, head_len, src_fd, src_len,
			       do_fsync);
	saved = errno;
	close(tfd);
	errno = saved;
	return r;
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

int
maildir_publish(const char *dir, const char *name)
{
	int tfd, nfd, r, saved;

	if (!maildir_name_ok(name)) {
		errno = EINVAL;
		return -1;
	}
	if (maildir_open_subs(dir, "tmp", &tfd, &nfd) < 0)
		return -1;
	r = maildir_move_new(tfd, nfd, name);
	saved = errno;
	close(nfd);
	close(tfd);
	errno = saved;
	return r;
}

int
maildir_has(const char *dir, const char *name)
{
	struct stat st;
	int dfd, nfd, r = -1, saved;

	if (!maildir_name_ok(name)) {
		errno = EINVAL;
		return -1;
	}
	dfd = maildir_open_dir(AT_FDCWD, dir);
	if (dfd < 0)
		return -1;
	nfd = maildir_open_dir(dfd, "new");
	if (nfd >= 0) {
		if (fstatat(nfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			r = 1;
		else if (errno == ENOENT)
			r = maildir_in_cur(dfd, name);
		saved = errno;
		close(nfd);
		errno = saved;
	}
	saved = errno;
	close(dfd);
	errno = saved;
	return r;
}

int
maildir_remove(const char *dir, const char *sub, const char *name)
{
	int fd, r, saved;

	if (!maildir_name_ok(name) ||
	    (strcmp(sub, "tmp") != 0 && strcmp(sub, "new") != 0)) {
		errno = EINVAL;
		return -1;
	}
	if (maildir_open_subs(dir, sub, &fd, NULL) < 0)
		return -1;
	r = storefs.unlinkat(fd, name, 0) == 0 || errno == ENOENT ? 0 : -1;
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

int
maildir_deliver(const char *dir, const char *name, const char *head,
		size_t head_len, int src_fd, uint64_t src_len)
{
	int r = maildir_has(dir, name);

	if (r != 0)
		return r;
	if (maildir_write_tmp(dir, name, head, head_len, src_fd, src_len,
			      true) < 0)
		return -1;
	return maildir_publish(dir, name);
}
