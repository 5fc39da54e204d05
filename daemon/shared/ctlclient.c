/*
 * ctlclient.c: the tools' side of the control socket (see control.h).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctlclient.h"

#define CONTROL_TIMEOUT_S	10
#define DAEMON_NAME		"posternd"
#define LOCK_SUFFIX		"/lock"	/* SPOOL/lock, held open */

static void
control_path(const char *spool_dir, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", spool_dir, CONTROL_SOCKET_NAME);
}

int
control_request(const char *spool_dir, const char *request, char **reply,
    char *why, size_t whylen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct pollfd pfd;
	char path[PATH_MAX], *buf = NULL, *nb;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd;

	*reply = NULL;
	control_path(spool_dir, path, sizeof(path));
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(why, whylen, "%s: path too long", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		if (errno == ENOENT || errno == ECONNREFUSED)
			snprintf(why, whylen, "posternd is not running on "
			    "spool %s (%s control socket at %s)", spool_dir,
			    errno == ENOENT ? "no" : "nobody listens on the",
			    path);
		else
			snprintf(why, whylen, "%s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (write(fd, request, strlen(request)) != (ssize_t)strlen(request) ||
	    write(fd, "\n", 1) != 1) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		if (poll(&pfd, 1, CONTROL_TIMEOUT_S * 1000) <= 0) {
			snprintf(why, whylen, "posternd did not answer");
			goto fail;
		}
		if (len + 4096 + 1 > cap) {
			cap = cap == 0 ? 8192 : cap * 2;
			if (cap > CONTROL_REPLY_MAX ||
			    (nb = realloc(buf, cap)) == NULL) {
				snprintf(why, whylen, "answer too long");
				goto fail;
			}
			buf = nb;
		}
		if ((n = read(fd, buf + len, cap - len - 1)) == -1) {
			if (errno == EINTR)
				continue;
			snprintf(why, whylen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (buf == NULL && (buf = strdup("")) == NULL)
		return -1;
	buf[len] = '\0';
	*reply = buf;
	return 0;
fail:
	free(buf);
	close(fd);
	return -1;
}

/* Whether process 'pid' is a posternd: its comm. */
static bool
is_posternd(const char *pid)
{
	char path[64], comm[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/comm", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return false;
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	if (n <= 0)
		return false;
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	return strcmp(comm, DAEMON_NAME) == 0;
}

/*
 * The spool of posternd 'pid': the directory of the lock file it holds
 * open.  Reading another user's descriptors needs root or the same user:
 * then "" and 0.
 */
static int
daemon_spool(const char *pid, char *spool, size_t len)
{
	char dirpath[64], fdpath[128], target[PATH_MAX];
	struct dirent *de;
	size_t tlen, slen = strlen(LOCK_SUFFIX);
	ssize_t n;
	DIR *d;

	spool[0] = '\0';
	snprintf(dirpath, sizeof(dirpath), "/proc/%s/fd", pid);
	if ((d = opendir(dirpath)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		snprintf(fdpath, sizeof(fdpath), "%s/%s", dirpath,
		    de->d_name);
		if ((n = readlink(fdpath, target, sizeof(target) - 1)) <= 0)
			continue;
		target[n] = '\0';
		tlen = (size_t)n;
		if (tlen > slen && strcmp(target + tlen - slen,
		    LOCK_SUFFIX) == 0) {
			target[tlen - slen] = '\0';
			snprintf(spool, len, "%s", target);
			break;
		}
	}
	closedir(d);
	return spool[0] != '\0';
}

static void
append(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
append(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

static bool
later(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec &&
	    a->tv_nsec > b->tv_nsec);
}

void
control_hint_others(const char *spool_dir, const char *config_path,
    char *hint, size_t len)
{
	char spool[PATH_MAX], lockpath[PATH_MAX + 8];
	struct stat cst, lst;
	struct dirent *de;
	DIR *d;

	hint[0] = '\0';
	if ((d = opendir("/proc")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]) ||
		    !is_posternd(de->d_name))
			continue;
		if (!daemon_spool(de->d_name, spool, sizeof(spool))) {
			append(hint, len, "\n  posternd pid %s runs, on a "
			    "spool this user cannot see", de->d_name);
			continue;
		}
		if (strcmp(spool, spool_dir) == 0)
			continue;
		append(hint, len, "\n  posternd pid %s runs on spool %s",
		    de->d_name, spool);
		/* The daemon writes its pid into the lock when it starts. */
		snprintf(lockpath, sizeof(lockpath), "%s%s", spool,
		    LOCK_SUFFIX);
		if (config_path != NULL && stat(config_path, &cst) == 0 &&
		    stat(lockpath, &lst) == 0 &&
		    later(&cst.st_mtim, &lst.st_mtim))
			append(hint, len, ", and %s was changed after it "
			    "started: if spool_dir changed, restart posternd "
			    "(a reload keeps the spool it started with)",
			    config_path);
	}
	closedir(d);
}
