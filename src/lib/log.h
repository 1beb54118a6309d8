/*
 * log.h - one logfmt line per event: "<sid> <event> key=value ...".
 * stderr in the foreground, syslog otherwise. Values given with the
 * escaping helpers never carry a raw CR, LF, NUL or control octet, and no
 * secret or message content is ever logged.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Levels, lowest first (the log-level directive names them). */
enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO,
	LOG_LEVEL_NOTICE,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_ERROR,
};

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Where lines go: stderr (foreground) or syslog (daemon, facility mail). */
void log_init(const char *ident, bool to_stderr, enum log_level level);
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);

/*
 * Log one line. `sid` is the session or process id ("-" when none); the
 * rest is printf-formatted. Long lines are cut at 2 KiB, marked "...".
 */
void log_msg(enum log_level level, const char *sid, const char *fmt, ...)
	LOG_PRINTF(3, 4);
void log_vmsg(enum log_level level, const char *sid, const char *fmt,
	      va_list ap) LOG_PRINTF(3, 0);

/*
 * Escape peer-supplied bytes for a logfmt value into buf: printable ASCII
 * is kept, except the space, '"', '\'', '\\', '=', '[' and ']'; those and
 * every other octet are written as \xNN (a space is \x20). So an escaped
 * value is one word that holds no field separator, quote, key=value or
 * syslog tag. The value is wrapped in double quotes. At most `max` input
 * octets are shown ("..." marks a cut; also when buf is full). Returns buf.
 */
const char *log_escape(char *buf, size_t size, const char *s, size_t len,
		       size_t max);

/*
 * The same for a message the server composed that may quote other text
 * (a configuration or users file line in an error): spaces and printable
 * ASCII are kept, '"' and '\' and every other octet are written \xNN.
 * Never for a value a client chose: use log_escape().
 */
const char *log_escape_text(char *buf, size_t size, const char *s,
			    size_t len, size_t max);

#define log_debug(sid, ...)                                                    \
	do {                                                                   \
		if (log_enabled(LOG_LEVEL_DEBUG))                              \
			log_msg(LOG_LEVEL_DEBUG, sid, __VA_ARGS__);            \
	} while (0)
#define log_info(sid, ...) log_msg(LOG_LEVEL_INFO, sid, __VA_ARGS__)
#define log_notice(sid, ...) log_msg(LOG_LEVEL_NOTICE, sid, __VA_ARGS__)
#define log_warning(sid, ...) log_msg(LOG_LEVEL_WARNING, sid, __VA_ARGS__)
#define log_error(sid, ...) log_msg(LOG_LEVEL_ERROR, sid, __VA_ARGS__)

#endif
