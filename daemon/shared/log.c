/*
 * log.c: stderr, journal or syslog; key=value lines.
 */
#include <sys/stat.h>
#include <sys/time.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

enum log_target {
	LOG_TO_STDERR,		/* terminal or file: with a timestamp */
	LOG_TO_JOURNAL,		/* stderr read by journald: <N> prefix */
	LOG_TO_SYSLOG,
};

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

static const int level_prio[] = {
	[LOG_LEVEL_ERROR] = LOG_ERR,
	[LOG_LEVEL_WARN] = LOG_WARNING,
	[LOG_LEVEL_INFO] = LOG_INFO,
	[LOG_LEVEL_DEBUG] = LOG_DEBUG,
};

static enum log_target	log_target = LOG_TO_STDERR;
static enum log_level	log_level = LOG_LEVEL_INFO;
static const char	*log_ident = "postern";

/*
 * systemd names the journal stream it connected as "DEVICE:INODE"; a
 * variable inherited from elsewhere (a shell started from a unit, a
 * container's environment) names another file or none, and stderr is then
 * not the journal (sd_journal_stream_fd(3) asks for this comparison).
 */
bool
log_stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char *end;

	if (v == NULL || *v < '0' || *v > '9')
		return false;
	errno = 0;
	dev = strtoull(v, &end, 10);
	if (errno != 0 || *end != ':' || end[1] < '0' || end[1] > '9')
		return false;
	ino = strtoull(end + 1, &end, 10);
	if (errno != 0 || *end != '\0' || fstat(STDERR_FILENO, &st) == -1)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

void
log_init(const char *ident, bool foreground)
{
	log_ident = ident;
	if (log_stderr_is_journal())
		log_target = LOG_TO_JOURNAL;
	else if (foreground)
		log_target = LOG_TO_STDERR;
	else {
		log_target = LOG_TO_SYSLOG;
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	}
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

int
log_level_parse(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(s, level_names[i]) == 0)
			return (int)i;
	return -1;
}

static void	log_vmsg(enum log_level, const char *, va_list)
		    __attribute__((format(printf, 2, 0)));

static void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[2048], stamp[64];
	struct timeval tv;
	struct tm tm;
	int saved = errno;

	if (level > log_level) {
		errno = saved;
		return;
	}
	vsnprintf(line, sizeof(line), fmt, ap);
	switch (log_target) {
	case LOG_TO_SYSLOG:
		syslog(LOG_MAIL | level_prio[level], "level=%s %s",
		    level_names[level], line);
		break;
	case LOG_TO_JOURNAL:
		fprintf(stderr, "<%d>level=%s %s\n", level_prio[level],
		    level_names[level], line);
		break;
	case LOG_TO_STDERR:
		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s[%ld] level=%s %s\n", stamp,
		    (long)(tv.tv_usec / 1000), log_ident, (long)getpid(),
		    level_names[level], line);
		break;
	}
	errno = saved;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}

/*
 * qs() returns static buffers taken in turn, so that one log line may
 * quote several values: this many at most, each this long (longer ones
 * are cut).
 */
#define QS_RING		8
#define QS_MAX		768

const char *
qs(const char *s)
{
	static char ring[QS_RING][QS_MAX];
	static unsigned next;
	char *buf = ring[next++ % QS_RING];
	size_t off = 0, cap = sizeof(ring[0]);
	const char *p;
	int plain = *s != '\0';

	for (p = s; *p != '\0' && plain; p++)
		if (*p <= ' ' || *p == '"' || *p == '\\' || *p == '=' ||
		    (unsigned char)*p >= 0x7f)
			plain = 0;
	if (plain && strlen(s) < cap) {
		strcpy(buf, s);
		return buf;
	}
	buf[off++] = '"';
	for (p = s; *p != '\0' && off + 4 < cap; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '"' || c == '\\')
			buf[off++] = '\\';
		buf[off++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	buf[off++] = '"';
	buf[off] = '\0';
	return buf;
}

const char *
qa(const char *addr)
{
	char buf[LOG_ADDR_MAX + 3];

	snprintf(buf, sizeof(buf), "<%s>", addr);
	return qs(buf);
}
