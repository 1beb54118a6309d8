/*
 * users_edit.c - the file image after an edit by `postern user`
 * (cli/user_cmd.c): a new user appended, a password replaced, a user
 * removed, an alias added or removed. Only the edited user's line
 * changes; every other byte of the file stays as it was (comments,
 * Dovecot's extra fields, line ends).
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "auth/users_int.h"

/* Append " userdb_postern_aliases=a,b" (no space first) when n > 0. */
static void
users_edit_put_aliases(struct users_buf *b, size_t *n_out, const char *const *a,
		       size_t n)
{
	if (n == 0)
		return;
	if ((*n_out)++ > 0)
		users_buf_add(b, " ", 1);
	users_buf_str(b, USERS_ALIASES_KEY);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			users_buf_add(b, ",", 1);
		users_buf_str(b, a[i]);
	}
}

/*
 * Write the extra field of `u` with its alias list changed by `ed`: the
 * other extra fields first, in order, single-space separated, then the
 * alias field, or none when no alias is left.
 */
static void
users_edit_extra(struct users_buf *b, const struct users_fields *fl,
		 const struct user *u, const struct users_edit *ed)
{
	const size_t klen = strlen(USERS_ALIASES_KEY);
	const char *extra = fl->n == USERS_N_FIELDS ? fl->f[7] : "";
	size_t len = fl->n == USERS_N_FIELDS ? fl->len[7] : 0, i = 0;
	size_t n_out = 0, n = 0;
	const char **list;

	while (i < len) {
		size_t j = i;

		while (j < len && extra[j] != ' ')
			j++;
		if (j > i &&
		    !(j - i >= klen &&
		      memcmp(extra + i, USERS_ALIASES_KEY, klen) == 0)) {
			if (n_out++ > 0)
				users_buf_add(b, " ", 1);
			users_buf_add(b, extra + i, j - i);
		}
		i = j + 1;
	}
	list = calloc(u->n_aliases + 1, sizeof(*list));
	if (list == NULL) {
		b->oom = true;
		return;
	}
	for (i = 0; i < u->n_aliases; i++)
		if (ed->op != USERS_OP_ALIAS_DEL ||
		    strcmp(u->aliases[i], ed->aliases[0]) != 0)
			list[n++] = u->aliases[i];
	if (ed->op == USERS_OP_ALIAS_ADD)
		list[n++] = ed->aliases[0];
	users_edit_put_aliases(b, &n_out, list, n);
	free(list);
}

/* Pad fl to all eight fields and make `extra` the last one. */
static void
users_edit_set_extra(struct users_fields *fl, const struct users_buf *extra)
{
	while (fl->n < USERS_N_FIELDS) {
		fl->f[fl->n] = "";
		fl->len[fl->n++] = 0;
	}
	fl->f[7] = extra->p == NULL ? "" : extra->p;
	fl->len[7] = extra->len;
}

/*
 * Rewrite the line of user `u` (without terminator) into b. A new
 * password replaces the second field only; everything else on the line
 * stays byte for byte.
 */
static void
users_edit_line(struct users_buf *b, const char *line, size_t len,
		const struct user *u, const struct users_edit *ed)
{
	struct users_fields fl;
	struct users_buf extra = {0};
	const char *after;

	users_split_fields(line, len, &fl);
	if (ed->op == USERS_OP_PASSWD) {
		after = fl.f[1] + fl.len[1];
		users_buf_add(b, line, (size_t)(fl.f[1] - line));
		users_buf_str(b, ed->hash);
		users_buf_add(b, after, (size_t)(line + len - after));
		return;
	}
	users_edit_extra(&extra, &fl, u, ed);
	if (extra.oom)
		b->oom = true;
	users_edit_set_extra(&fl, &extra);
	users_join_fields(b, &fl);
	users_buf_free(&extra);
}

/* Build the new image into out (users_edit_apply). */
static void
users_edit_image(const char *buf, size_t len, const struct users *us,
		 const struct users_edit *ed, struct users_buf *out)
{
	const struct user *u = users_find(us, ed->address);
	unsigned lineno = 0;
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl == NULL ? len : (size_t)(nl - buf) + 1;
		size_t keep = (nl == NULL ? len : (size_t)(nl - buf)) - pos;

		lineno++;
		if (u == NULL || lineno != u->line) {
			users_buf_add(out, buf + pos, end - pos);
		} else if (ed->op != USERS_OP_DEL) {
			if (keep > 0 && buf[pos + keep - 1] == '\r')
				keep--;
			users_edit_line(out, buf + pos, keep, u, ed);
			users_buf_add(out, buf + pos + keep, end - pos - keep);
		}
		pos = end;
	}
	if (ed->op == USERS_OP_ADD) {
		struct users_fields fl = {
		    {ed->address, ed->hash},
		    {strlen(ed->address), strlen(ed->hash)},
		    2};
		struct users_buf extra = {0};
		size_t n_out = 0;

		if (out->len > 0 && out->p[out->len - 1] != '\n')
			users_buf_add(out, "\n", 1);
		if (ed->n_aliases > 0) {
			users_edit_put_aliases(&extra, &n_out,
					       (const char *const *)ed->aliases,
					       ed->n_aliases);
			users_edit_set_extra(&fl, &extra);
		}
		users_join_fields(out, &fl);
		users_buf_add(out, "\n", 1);
		if (extra.oom)
			out->oom = true;
		users_buf_free(&extra);
	}
	if (out->p == NULL)
		users_buf_add(out, "", 0);
}

int
users_edit_apply(const char *buf, size_t len, const struct users *us,
		 const struct users_edit *ed, char **out_r, size_t *out_len_r)
{
	struct users_buf out = {0};

	*out_r = NULL;
	*out_len_r = 0;
	users_edit_image(buf, len, us, ed, &out);
	if (out.oom) {
		if (out.p != NULL)
			sodium_memzero(out.p, out.len);
		users_buf_free(&out);
		return -1;
	}
	*out_r = out.p;
	*out_len_r = out.len;
	return 0;
}
