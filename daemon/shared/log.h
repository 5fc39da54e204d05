/*
 * log.h: the daemon's log sink.
 *
 * One line per event, written as key=value pairs ("event=ready
 * listen=127.0.0.1:25").  Lines go to stderr when the program runs in the
 * foreground or when systemd connected stderr to the journal
 * (JOURNAL_STREAM names stderr's device and inode), and to syslog
 * (facility mail) otherwise.  On
 * the journal each line starts with a <N> priority prefix so that journald
 * records the level.
 *
 * Only the loop thread logs.  errno is preserved across every call.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/*
 * log_init()
 * 'ident' names the program.  'foreground' asks for stderr; otherwise
 * stderr is used only when it is the journal, and syslog else.
 */
void	log_init(const char *ident, bool foreground);

/*
 * log_stderr_is_journal()
 * True when JOURNAL_STREAM names the device and inode of stderr: systemd
 * connected it to the journal.
 */
bool	log_stderr_is_journal(void);
void	log_set_level(enum log_level level);

/*
 * log_level_parse()
 * "error", "warn", "info", "debug" -> level.  Returns -1 for anything
 * else.
 */
int	log_level_parse(const char *s);

void	log_msg(enum log_level level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#define log_error(...)	log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/*
 * fatalx()
 * Logs at error level and exits with status 1.  For start-up failures and
 * broken invariants only.
 */
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/*
 * qs()
 * Returns 's' ready to stand as a key=value value: unchanged when it is a
 * plain token, otherwise double-quoted with '"' and '\' escaped and control
 * bytes shown as '?'.  The result lives in one of a few rotating buffers:
 * use it within the same log call.
 */
const char *qs(const char *s);

/*
 * qa()
 * An address as a key=value value: "<addr>", quoted by qs() when the
 * address carries spaces, quotes or '=' (a quoted local part can), so that
 * peer-controlled text never stands as a field of its own.  Addresses
 * longer than LOG_ADDR_MAX are cut.
 */
#define LOG_ADDR_MAX	512
const char *qa(const char *addr);

#endif /* POSTERN_LOG_H */
