/*
 * ctlclient.c: the tools' side of the control socket (see control.h).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"

#define CONTROL_TIMEOUT_S	10

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
			snprintf(why, whylen, "posternd is not running (no "
			    "control socket at %s)", path);
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
