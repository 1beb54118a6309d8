/*
 * smtp_parse.c - SMTP command lines, RFC 5321 paths, MAIL and RCPT (whose
 * ESMTP parameters are read by smtp_param.c), BDAT and HELO arguments.
 *
 * Everything here reads a caller's buffer of known length and writes into a
 * caller's struct: no allocation, no I/O, no locale (ASCII classes are our
 * own, so a Turkish or UTF-8 locale cannot change a verdict). Inputs are not
 * NUL-terminated and are never read past their length.
 */
#include "smtp/smtp_parse_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* ---------------------------------------------------------------------
 * Character classes of the paths (the ASCII ones: smtp_parse_int.h)
 */

/* atext, RFC 5322 3.2.3 (used by RFC 5321 4.1.2 Atom). */
static bool
is_atext(unsigned char c)
{
	if (is_alnum(c))
		return true;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* qtextSMTP, RFC 5321 4.1.2: %d32-33 / %d35-91 / %d93-126. */
static bool
is_qtext(unsigned char c)
{
	return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

/* ---------------------------------------------------------------------
 * Verbs
 */

struct verb_row {
	const char *name;
	size_t len;
	enum smtp_verb verb;
};

/* clang-format off */
#define VERB(n, v) { n, sizeof(n) - 1, v }

/*
 * Every word we recognise. Unimplemented ones get 502 (THREATS N-03);
 * HTTP methods are cross-protocol traffic (THREATS P-05, ALPACA).
 */
static const struct verb_row verb_table[] = {
	VERB("HELO", SMTP_VERB_HELO),
	VERB("EHLO", SMTP_VERB_EHLO),
	VERB("MAIL", SMTP_VERB_MAIL),
	VERB("RCPT", SMTP_VERB_RCPT),
	VERB("DATA", SMTP_VERB_DATA),
	VERB("BDAT", SMTP_VERB_BDAT),
	VERB("RSET", SMTP_VERB_RSET),
	VERB("NOOP", SMTP_VERB_NOOP),
	VERB("QUIT", SMTP_VERB_QUIT),
	VERB("HELP", SMTP_VERB_HELP),
	VERB("VRFY", SMTP_VERB_VRFY),
	VERB("EXPN", SMTP_VERB_EXPN),
	VERB("STARTTLS", SMTP_VERB_STARTTLS),
	VERB("AUTH", SMTP_VERB_AUTH),
	VERB("TURN", SMTP_VERB_TURN),
	VERB("ATRN", SMTP_VERB_UNIMPLEMENTED),
	VERB("ETRN", SMTP_VERB_UNIMPLEMENTED),
	VERB("XCLIENT", SMTP_VERB_UNIMPLEMENTED),
	VERB("XFORWARD", SMTP_VERB_UNIMPLEMENTED),
	VERB("XEXCH50", SMTP_VERB_UNIMPLEMENTED),
	VERB("DEBUG", SMTP_VERB_UNIMPLEMENTED),
	VERB("WIZ", SMTP_VERB_UNIMPLEMENTED),
	VERB("KILL", SMTP_VERB_UNIMPLEMENTED),
	VERB("VERB", SMTP_VERB_UNIMPLEMENTED),
	VERB("SEND", SMTP_VERB_UNIMPLEMENTED),
	VERB("SOML", SMTP_VERB_UNIMPLEMENTED),
	VERB("SAML", SMTP_VERB_UNIMPLEMENTED),
	VERB("GET", SMTP_VERB_NON_SMTP),
	VERB("POST", SMTP_VERB_NON_SMTP),
	VERB("PUT", SMTP_VERB_NON_SMTP),
	VERB("HEAD", SMTP_VERB_NON_SMTP),
	VERB("CONNECT", SMTP_VERB_NON_SMTP),
	VERB("OPTIONS", SMTP_VERB_NON_SMTP),
	VERB("DELETE", SMTP_VERB_NON_SMTP),
};
/* clang-format on */

/* clang-format off */
static const char *const verb_names[SMTP_VERB_COUNT] = {
	[SMTP_VERB_UNKNOWN] = "UNKNOWN",
	[SMTP_VERB_HELO] = "HELO",
	[SMTP_VERB_EHLO] = "EHLO",
	[SMTP_VERB_MAIL] = "MAIL",
	[SMTP_VERB_RCPT] = "RCPT",
	[SMTP_VERB_DATA] = "DATA",
	[SMTP_VERB_BDAT] = "BDAT",
	[SMTP_VERB_RSET] = "RSET",
	[SMTP_VERB_NOOP] = "NOOP",
	[SMTP_VERB_QUIT] = "QUIT",
	[SMTP_VERB_HELP] = "HELP",
	[SMTP_VERB_VRFY] = "VRFY",
	[SMTP_VERB_EXPN] = "EXPN",
	[SMTP_VERB_STARTTLS] = "STARTTLS",
	[SMTP_VERB_AUTH] = "AUTH",
	[SMTP_VERB_TURN] = "TURN",
	[SMTP_VERB_UNIMPLEMENTED] = "UNIMPLEMENTED",
	[SMTP_VERB_NON_SMTP] = "NON-SMTP",
};
/* clang-format on */

/* The verb for the first word of a line; a word ending in ':' is a header
 * line sent as a command ("Host:", "User-Agent:"), THREATS P-05. */
static enum smtp_verb
verb_lookup(const char *word, size_t len)
{
	size_t i;

	if (len > 0 && word[len - 1] == ':')
		return SMTP_VERB_NON_SMTP;
	for (i = 0; i < sizeof(verb_table) / sizeof(verb_table[0]); i++) {
		if (verb_table[i].len == len &&
		    ascii_caseeq(word, verb_table[i].name, len))
			return verb_table[i].verb;
	}
	return SMTP_VERB_UNKNOWN;
}

/*
 * The verb is everything up to the first space (RFC 5321 4.1.1: the verb is
 * followed by one SP). Only that one space is consumed: "MAIL  FROM:<x>"
 * leaves " FROM:<x>" to the argument parser, which refuses it. A tab is not
 * a separator, so "MAIL\tFROM:<x>" is one unknown word.
 */
void
smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd_r)
{
	size_t w = 0;

	while (w < len && line[w] != ' ')
		w++;
	cmd_r->verb = verb_lookup(line, w);
	cmd_r->line_len = len;
	cmd_r->has_space = w < len;
	if (line == NULL) {
		cmd_r->args = NULL;
		cmd_r->args_len = 0;
	} else if (cmd_r->has_space) {
		cmd_r->args = line + w + 1;
		cmd_r->args_len = len - w - 1;
	} else {
		cmd_r->args = line + len;
		cmd_r->args_len = 0;
	}
}

const char *
smtp_verb_name(enum smtp_verb verb)
{
	if ((unsigned)verb >= SMTP_VERB_COUNT)
		return "?";
	return verb_names[verb];
}

/* ---------------------------------------------------------------------
 * UTF-8 (RFC 3629 4; RFC 6531 3.3 requires well-formed UTF-8)
 */

/*
 * Length of the well-formed UTF-8 sequence at s (1..4), or 0 when it is
 * ill-formed: a stray continuation octet, an overlong form (C0, C1,
 * E0 80..9F, F0 80..8F), a surrogate (ED A0..BF), a code point above
 * U+10FFFF (F4 90.., F5..FF) or a sequence cut by the end of the buffer.
 */
static size_t
utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return 0;
	if (c < 0xe0) {
		n = 2;
	} else if (c < 0xf0) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c < 0xf5) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

bool
smtp_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		n = utf8_seq(s + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/* ---------------------------------------------------------------------
 * Path parser (RFC 5321 4.1.2, RFC 6531 3.3)
 */

/* How octets >= 0x80 are treated. */
enum pp_mode {
	PP_ASCII,   /* refused: SMTPUTF8 not in force */
	PP_UTF8,    /* strict UTF-8 sequences accepted */
	PP_LENIENT, /* any such octet accepted: first pass over MAIL only */
};

struct pp {
	const unsigned char *s;
	size_t len;
	size_t pos;
	enum pp_mode mode;
	bool saw_8bit;
};

/* Longest literal body we look at: an IPv6 text form is at most 45. */
#define PP_LITERAL_MAX 64

static int
pp_peek(const struct pp *pp)
{
	return pp->pos < pp->len ? pp->s[pp->pos] : -1;
}

/*
 * Length of the character at offset i (< len): 1 for ASCII, the sequence
 * length for UTF-8. Returns 0 with *err_r set when an 8-bit octet is not
 * allowed here or is not well-formed UTF-8.
 */
static size_t
pp_char(struct pp *pp, size_t i, enum smtp_perr *err_r)
{
	size_t n;

	if (pp->s[i] < 0x80)
		return 1;
	pp->saw_8bit = true;
	switch (pp->mode) {
	case PP_ASCII:
		*err_r = SMTP_PERR_UTF8_UNDECLARED;
		return 0;
	case PP_LENIENT:
		return 1;
	case PP_UTF8:
		break;
	}
	n = utf8_seq(pp->s + i, pp->len - i);
	if (n == 0)
		*err_r = SMTP_PERR_BAD_UTF8;
	return n;
}

/* Append n octets to the local part; 64 octets at most (4.5.3.1.1). */
static enum smtp_perr
local_append(struct smtp_path *path, const unsigned char *src, size_t n)
{
	if (path->local_len + n > SMTP_LOCAL_MAX)
		return SMTP_PERR_TOO_LONG;
	memcpy(path->local + path->local_len, src, n);
	path->local_len += n;
	path->local[path->local_len] = '\0';
	if (src[0] >= 0x80)
		path->is_utf8 = true;
	return SMTP_PERR_OK;
}

/*
 * Quoted-string (RFC 5321 4.1.2): DQUOTE *(qtextSMTP / quoted-pairSMTP)
 * DQUOTE, where quoted-pairSMTP is "\" followed by one octet 32..126.
 * RFC 6531 adds UTF8-non-ascii to qtextSMTP. The result is dequoted.
 */
static enum smtp_perr
pp_quoted(struct pp *pp, struct smtp_path *path)
{
	enum smtp_perr err = SMTP_PERR_SYNTAX, r;
	unsigned char c;
	size_t n;

	pp->pos++;
	for (;;) {
		if (pp->pos >= pp->len)
			return SMTP_PERR_SYNTAX;
		c = pp->s[pp->pos];
		if (c == '"') {
			pp->pos++;
			return SMTP_PERR_OK;
		}
		if (c == '\\') {
			pp->pos++;
			if (pp->pos >= pp->len)
				return SMTP_PERR_SYNTAX;
			n = pp_char(pp, pp->pos, &err);
			if (n == 0)
				return err;
			c = pp->s[pp->pos];
			if (c < 32 || c > 126)
				return SMTP_PERR_SYNTAX;
		} else {
			n = pp_char(pp, pp->pos, &err);
			if (n == 0)
				return err;
			if (c < 0x80 && !is_qtext(c))
				return SMTP_PERR_SYNTAX;
		}
		r = local_append(path, pp->s + pp->pos, n);
		if (r != SMTP_PERR_OK)
			return r;
		pp->pos += n;
	}
}

/*
 * Dot-string = Atom *("." Atom), Atom = 1*atext (RFC 5321 4.1.2; RFC 6531
 * adds UTF8-non-ascii to atext). No leading, trailing or doubled dot.
 */
static enum smtp_perr
pp_dot_string(struct pp *pp, struct smtp_path *path)
{
	enum smtp_perr err = SMTP_PERR_SYNTAX, r;
	bool need_atom = true;
	unsigned char c;
	size_t n;

	while (pp->pos < pp->len) {
		c = pp->s[pp->pos];
		if (c == '.') {
			if (need_atom)
				return SMTP_PERR_SYNTAX;
			need_atom = true;
			n = 1;
		} else {
			if (c < 0x80 && !is_atext(c))
				break;
			n = pp_char(pp, pp->pos, &err);
			if (n == 0)
				return err;
			need_atom = false;
		}
		r = local_append(path, pp->s + pp->pos, n);
		if (r != SMTP_PERR_OK)
			return r;
		pp->pos += n;
	}
	return need_atom ? SMTP_PERR_SYNTAX : SMTP_PERR_OK;
}

/*
 * RFC 5321 4.1.3: with "::", at most 6 groups besides it (an IPv4 tail
 * counts as 2), so "::" always stands for at least two zero groups.
 * inet_pton() is more lenient ("1::2:3:4:5:6:7").
 */
static bool
ipv6_groups_ok(const char *a)
{
	size_t groups = 0;
	const char *p;
	bool in_group = false;

	if (strstr(a, "::") == NULL)
		return true;
	for (p = a; *p != '\0'; p++) {
		if (*p == ':') {
			in_group = false;
		} else if (*p == '.') {
			/* The IPv4 tail: its first octet was counted. */
			groups++;
			break;
		} else if (!in_group) {
			in_group = true;
			groups++;
		}
	}
	return groups <= 6;
}

/*
 * address-literal (RFC 5321 4.1.3): "[" IPv4 "]" or "[IPv6:" IPv6 "]",
 * both checked with inet_pton (which takes only strict dotted quads with
 * no leading zeros). General-address-literal and untagged IPv6 ("[::1]")
 * are refused. Writes the literal with its brackets, the tag spelled
 * "IPv6:" and the hex digits lower-cased.
 */
static enum smtp_perr
pp_literal(struct pp *pp, char *out, size_t *out_len_r)
{
	char inner[PP_LITERAL_MAX + 1];
	unsigned char buf6[sizeof(struct in6_addr)];
	enum smtp_perr err = SMTP_PERR_SYNTAX;
	size_t n = 0, i;
	unsigned char c;

	pp->pos++;
	for (;;) {
		if (pp->pos >= pp->len)
			return SMTP_PERR_SYNTAX;
		c = pp->s[pp->pos];
		if (c == ']')
			break;
		if (c >= 0x80) {
			/* Undeclared 8-bit is reported as such. */
			if (pp_char(pp, pp->pos, &err) == 0)
				return err;
			return SMTP_PERR_SYNTAX;
		}
		/* dtext: %d33-90 / %d94-126 */
		if (c < 33 || c > 126 || c == '[' || c == '\\')
			return SMTP_PERR_SYNTAX;
		if (n >= PP_LITERAL_MAX)
			return SMTP_PERR_SYNTAX;
		inner[n++] = (char)c;
		pp->pos++;
	}
	pp->pos++;
	inner[n] = '\0';
	if (n > 5 && ascii_caseeq(inner, "IPv6:", 5)) {
		memcpy(inner, "IPv6:", 5);
		for (i = 5; i < n; i++)
			inner[i] = (char)to_lower((unsigned char)inner[i]);
		if (inet_pton(AF_INET6, inner + 5, buf6) != 1 ||
		    !ipv6_groups_ok(inner + 5))
			return SMTP_PERR_SYNTAX;
	} else if (inet_pton(AF_INET, inner, buf6) != 1) {
		return SMTP_PERR_SYNTAX;
	}
	out[0] = '[';
	memcpy(out + 1, inner, n);
	out[n + 1] = ']';
	out[n + 2] = '\0';
	*out_len_r = n + 2;
	return SMTP_PERR_OK;
}

/*
 * Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]
 * (RFC 5321 4.1.2), each label 1..63 octets (RFC 1035 2.3.4), the whole at
 * most 255 (4.5.3.1.2), or an address literal. In PP_UTF8 mode a label may
 * hold UTF-8 (a U-label, RFC 6531 3.3).
 * XXX: a U-label is limited to 63 octets, not to 63 after punycode; that
 * refuses some long but legal U-labels and no IDNA check is made.
 * ASCII letters are lower-cased into out (SMTP_DOMAIN_MAX + 1 octets).
 * A trailing dot is accepted only when trailing_dot (HELO), and kept.
 */
static enum smtp_perr
pp_domain(struct pp *pp, char *out, size_t *out_len_r, bool *is_literal_r,
	  bool trailing_dot)
{
	enum smtp_perr err = SMTP_PERR_SYNTAX;
	size_t olen = 0, label, n, i;
	bool last_hyphen = false;
	unsigned char c;

	*is_literal_r = false;
	if (pp_peek(pp) == '[') {
		*is_literal_r = true;
		return pp_literal(pp, out, out_len_r);
	}
	for (;;) {
		label = 0;
		while (pp->pos < pp->len) {
			c = pp->s[pp->pos];
			if (c < 0x80 && !is_alnum(c) && c != '-')
				break;
			if (c == '-' && label == 0)
				return SMTP_PERR_SYNTAX;
			n = pp_char(pp, pp->pos, &err);
			if (n == 0)
				return err;
			if (olen + n > SMTP_DOMAIN_MAX)
				return SMTP_PERR_TOO_LONG;
			for (i = 0; i < n; i++)
				out[olen++] =
				    (char)to_lower(pp->s[pp->pos + i]);
			label += n;
			last_hyphen = c == '-';
			pp->pos += n;
			if (label > 63)
				return SMTP_PERR_SYNTAX;
		}
		if (label == 0) {
			/* Nothing after a dot: only HELO may end so. */
			if (trailing_dot && olen > 0)
				break;
			return SMTP_PERR_SYNTAX;
		}
		if (last_hyphen)
			return SMTP_PERR_SYNTAX;
		if (pp_peek(pp) != '.')
			break;
		if (olen + 1 > SMTP_DOMAIN_MAX)
			return SMTP_PERR_TOO_LONG;
		out[olen++] = '.';
		pp->pos++;
	}
	out[olen] = '\0';
	*out_len_r = olen;
	return SMTP_PERR_OK;
}

/*
 * Path = "<" [ A-d-l ":" ] Mailbox ">" (RFC 5321 4.1.2), or "<>" when
 * null_ok. The source route is parsed and dropped (RFC 5321 3.6.1 and
 * Appendix C); a route element may also be an address literal, as nmap's
 * relay probe sends one. Returns SMTP_PERR_NO_DOMAIN for "<x>" with the
 * local part filled in, so the caller can honour "<Postmaster>".
 */
static enum smtp_perr
pp_path(struct pp *pp, struct smtp_path *path, bool null_ok)
{
	char route[SMTP_DOMAIN_MAX + 1];
	size_t start = pp->pos, route_len, i;
	enum smtp_perr r;
	bool lit;

	memset(path, 0, sizeof(*path));
	if (pp_peek(pp) != '<')
		return SMTP_PERR_SYNTAX;
	pp->pos++;
	if (null_ok && pp_peek(pp) == '>') {
		pp->pos++;
		path->is_null = true;
		return SMTP_PERR_OK;
	}
	if (pp_peek(pp) == '@') {
		for (;;) {
			pp->pos++;
			r = pp_domain(pp, route, &route_len, &lit, false);
			if (r != SMTP_PERR_OK)
				return r;
			if (pp_peek(pp) == ':')
				break;
			if (pp_peek(pp) != ',')
				return SMTP_PERR_SYNTAX;
			pp->pos++;
			if (pp_peek(pp) != '@')
				return SMTP_PERR_SYNTAX;
		}
		pp->pos++;
	}
	if (pp_peek(pp) == '"')
		r = pp_quoted(pp, path);
	else
		r = pp_dot_string(pp, path);
	if (r != SMTP_PERR_OK)
		return r;
	if (pp_peek(pp) == '>')
		return SMTP_PERR_NO_DOMAIN;
	if (pp_peek(pp) != '@')
		return SMTP_PERR_SYNTAX;
	pp->pos++;
	r = pp_domain(pp, path->domain, &path->domain_len, &path->is_literal,
		      false);
	if (r != SMTP_PERR_OK)
		return r;
	if (pp_peek(pp) != '>')
		return SMTP_PERR_SYNTAX;
	pp->pos++;
	if (pp->pos - start > SMTP_PATH_MAX)
		return SMTP_PERR_TOO_LONG;
	for (i = 0; i < path->domain_len; i++)
		if ((unsigned char)path->domain[i] >= 0x80)
			path->is_utf8 = true;
	return SMTP_PERR_OK;
}

/* "FROM:" / "TO:" (case-insensitive), then any number of spaces. */
static bool
pp_keyword(struct pp *pp, const char *kw, size_t kw_len)
{
	if (pp->len < kw_len || !ascii_caseeq((const char *)pp->s, kw, kw_len))
		return false;
	pp->pos = kw_len;
	while (pp_peek(pp) == ' ')
		pp->pos++;
	return true;
}

/* After "<path>": the end, or one or more spaces and then parameters. */
static bool
params_start_ok(const struct pp *pp)
{
	return pp->pos == pp->len || pp->s[pp->pos] == ' ';
}

/*
 * MAIL FROM:<path> [params]. SMTPUTF8 comes after the path (RFC 6531 3.4),
 * so the path is parsed first accepting any 8-bit octet, then the
 * parameters, and only if the path held 8-bit octets is it parsed again,
 * strictly, in the mode the parameters call for. Error order: path
 * syntax, parameters, then UTF-8. A path that is bad whatever the mode
 * gets its syntax error even if it holds 8-bit octets: where its
 * parameters start, and so whether SMTPUTF8 was declared, is unknown.
 * On SMTP_PERR_NO_DOMAIN the local part may hold unchecked 8-bit octets.
 */
enum smtp_perr
smtp_parse_mail(const char *args, size_t len, struct smtp_path *path_r,
		struct smtp_mail_params *params_r)
{
	struct pp pp = {(const unsigned char *)args, len, 0, PP_LENIENT, false};
	enum smtp_perr r;
	unsigned seen = 0;
	struct smtp_param p;
	size_t path_pos;
	int k;

	memset(path_r, 0, sizeof(*path_r));
	memset(params_r, 0, sizeof(*params_r));
	if (!pp_keyword(&pp, "FROM:", 5))
		return SMTP_PERR_SYNTAX;
	path_pos = pp.pos;
	r = pp_path(&pp, path_r, true);
	if (r != SMTP_PERR_OK)
		return r;
	if (!params_start_ok(&pp))
		return SMTP_PERR_SYNTAX;
	while ((k = smtp_param_next(args, len, &pp.pos, &p)) > 0) {
		r = smtp_param_mail(&p, params_r, &seen);
		if (r != SMTP_PERR_OK)
			return r;
	}
	if (k < 0)
		return SMTP_PERR_PARAM_SYNTAX;
	if (pp.saw_8bit) {
		if (!params_r->smtputf8)
			return SMTP_PERR_UTF8_UNDECLARED;
		pp.pos = path_pos;
		pp.mode = PP_UTF8;
		r = pp_path(&pp, path_r, true);
	}
	return r;
}

/*
 * RCPT TO:<path> [params]. Whether 8-bit is allowed is known from the MAIL.
 * No RCPT parameter is supported yet (no DSN), so any well-formed one is
 * unknown (555).
 */
enum smtp_perr
smtp_parse_rcpt(const char *args, size_t len, bool smtputf8,
		struct smtp_path *path_r)
{
	struct pp pp = {(const unsigned char *)args, len, 0,
			smtputf8 ? PP_UTF8 : PP_ASCII, false};
	enum smtp_perr r;
	struct smtp_param p;
	int k;

	memset(path_r, 0, sizeof(*path_r));
	if (!pp_keyword(&pp, "TO:", 3))
		return SMTP_PERR_SYNTAX;
	r = pp_path(&pp, path_r, false);
	if (r != SMTP_PERR_OK)
		return r;
	if (!params_start_ok(&pp))
		return SMTP_PERR_SYNTAX;
	k = smtp_param_next(args, len, &pp.pos, &p);
	if (k < 0)
		return SMTP_PERR_PARAM_SYNTAX;
	if (k > 0)
		return SMTP_PERR_PARAM_UNKNOWN;
	return SMTP_PERR_OK;
}

/* ---------------------------------------------------------------------
 * Formatting
 */

/* Can the local part be written bare, as a Dot-string (RFC 5321 4.1.2)? */
static bool
local_is_dot_string(const char *s, size_t len)
{
	bool need_atom = true;
	unsigned char c;
	size_t i;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '.') {
			if (need_atom)
				return false;
			need_atom = true;
		} else if (c >= 0x80 || is_atext(c)) {
			need_atom = false;
		} else {
			return false;
		}
	}
	return !need_atom;
}

/*
 * "local@domain" with the local part quoted (and '"' and '\' escaped,
 * RFC 5321 4.1.2 quoted-pairSMTP) when it is not a Dot-string; "" for the
 * null path. The output re-parses to the same struct. Returns the length,
 * or -1 (with buf set to "") when it does not fit or the struct is bad.
 */
int
smtp_path_format(const struct smtp_path *path, char *buf, size_t size)
{
	size_t need, i, o = 0;
	bool quote;
	char c;

	if (size > 0)
		buf[0] = '\0';
	if (path->is_null)
		return size > 0 ? 0 : -1;
	if (path->local_len > SMTP_LOCAL_MAX ||
	    path->domain_len > SMTP_DOMAIN_MAX)
		return -1;
	quote = !local_is_dot_string(path->local, path->local_len);
	need = path->local_len + 1 + path->domain_len;
	if (quote) {
		need += 2;
		for (i = 0; i < path->local_len; i++)
			if (path->local[i] == '"' || path->local[i] == '\\')
				need++;
	}
	if (need >= size)
		return -1;
	if (quote)
		buf[o++] = '"';
	for (i = 0; i < path->local_len; i++) {
		c = path->local[i];
		if (quote && (c == '"' || c == '\\'))
			buf[o++] = '\\';
		buf[o++] = c;
	}
	if (quote)
		buf[o++] = '"';
	buf[o++] = '@';
	memcpy(buf + o, path->domain, path->domain_len);
	o += path->domain_len;
	buf[o] = '\0';
	return (int)o;
}

/* ---------------------------------------------------------------------
 * BDAT and HELO
 */

/*
 * BDAT chunk-size [SP end-marker] (RFC 3030 2): chunk-size = 1*DIGIT,
 * end-marker = "LAST". Nothing else, no sign, no overflow.
 */
int
smtp_parse_bdat(const char *args, size_t len, uint64_t *size_r, bool *last_r)
{
	uint64_t v = 0, d;
	size_t i = 0;

	*size_r = 0;
	*last_r = false;
	if (len == 0 || !is_digit((unsigned char)args[0]))
		return -1;
	while (i < len && is_digit((unsigned char)args[i])) {
		d = (uint64_t)(args[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		i++;
	}
	if (i < len) {
		if (len - i != 5 || args[i] != ' ' ||
		    !ascii_caseeq(args + i + 1, "LAST", 4))
			return -1;
		*last_r = true;
	}
	*size_r = v;
	return 0;
}

/*
 * HELO/EHLO argument (RFC 5321 4.1.1.1): a Domain (LDH, a trailing dot
 * tolerated, no UTF-8) or an address literal, then only trailing spaces.
 */
bool
smtp_helo_valid(const char *args, size_t len)
{
	char out[SMTP_DOMAIN_MAX + 1];
	struct pp pp = {(const unsigned char *)args, len, 0, PP_ASCII, false};
	size_t out_len;
	bool lit;

	while (pp.len > 0 && args[pp.len - 1] == ' ')
		pp.len--;
	if (pp.len == 0 || pp.len > SMTP_DOMAIN_MAX)
		return false;
	if (pp_domain(&pp, out, &out_len, &lit, true) != SMTP_PERR_OK)
		return false;
	return pp.pos == pp.len;
}
