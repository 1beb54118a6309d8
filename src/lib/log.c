/*
 * log.c - logfmt lines to stderr or syslog.
 */
#include "lib/log.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static bool log_to_stderr = true;
static enum log_level log_min = LOG_LEVEL_INFO;

void
log_init(const char *ident, bool to_stderr, enum log_level level)
{
	log_to_stderr = to_stderr;
	log_min = level;
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_level(enum log_level level)
{
	log_min = level;
}

bool
log_enabled(enum log_level level)
{
	return level >= log_min;
}

static int
log_syslog_priority(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_DEBUG:
		return LOG_DEBUG;
	case LOG_LEVEL_INFO:
		return LOG_INFO;
	case LOG_LEVEL_NOTICE:
		return LOG_NOTICE;
	case LOG_LEVEL_WARNING:
		return LOG_WARNING;
	case LOG_LEVEL_ERROR:
		break;
	}
	return LOG_ERR;
}

void
log_vmsg(enum log_level level, const char *sid, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	int n, m;

	if (!log_enabled(level))
		return;
	n = snprintf(line, sizeof(line), "%s ", sid != NULL ? sid : "-");
	if (n < 0)
		return;
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	if ((size_t)n + (size_t)m >= sizeof(line))
		memcpy(line + sizeof(line) - 4, "...", 4);
	/* The formats are ours; still, never let a raw newline through. */
	for (char *p = line; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = '?';
	if (log_to_stderr) {
		char stamp[32];
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ postern[%ld]: %s\n", stamp,
			ts.tv_nsec / 1000000, (long)getpid(), line);
	} else {
		syslog(log_syslog_priority(level), "%s", line);
	}
}

void
log_msg(enum log_level level, const char *sid, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, sid, fmt, ap);
	va_end(ap);
}

/*
 * Is octet c kept as it is in an escaped value? Printable ASCII except
 * what could end a value or fake another field or a line prefix: the
 * space (splits fields), both quotes, the backslash, '=' (key=value) and
 * the brackets (a syslog tag reads "postern[PID]:"). A log matcher such
 * as fail2ban then never finds a whole fake field inside a value. Text
 * (`is_text`) keeps all of these but the double quote and the backslash.
 */
static bool
log_escape_keeps(unsigned char c, bool is_text)
{
	if (c < 0x20 || c >= 0x7f)
		return false;
	if (is_text)
		return c != '"' && c != '\\';
	return c != ' ' && strchr("\"'\\=[]", c) == NULL;
}

static const char *
log_escape_as(char *buf, size_t size, const char *s, size_t len, size_t max,
	      bool is_text)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	bool cut = false;

	if (size < 8) {
		if (size > 0)
			buf[0] = '\0';
		return buf;
	}
	if (len > max) {
		len = max;
		cut = true;
	}
	buf[o++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		/* Room for the longest escape, the cut mark, quote, NUL. */
		if (o + 4 + 3 + 2 > size) {
			cut = true;
			break;
		}
		if (log_escape_keeps(c, is_text)) {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	if (cut) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

const char *
log_escape(char *buf, size_t size, const char *s, size_t len, size_t max)
{
	return log_escape_as(buf, size, s, len, max, false);
}

const char *
log_escape_text(char *buf, size_t size, const char *s, size_t len,
		size_t max)
{
	return log_escape_as(buf, size, s, len, max, true);
}
