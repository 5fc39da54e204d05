/*
 * listen.c: bind, listen and accept on the `listen` entries.
 *
 * Each entry becomes one struct lsock with its socket and, once started,
 * an evconnlistener.  Accepted sockets are handed over as plain fds: the
 * server session decides what to do with them (allow list, session
 * limit).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include <systemd/sd-daemon.h>

#include "listen.h"
#include "shared/config.h"
#include "shared/log.h"

#define LISTEN_BACKLOG	128
#define ACCEPT_RETRY_MS	100	/* listener paused after an accept error */
#define ACCEPT_LOG_S	10	/* one accept-error line at most per this */

/*
 * A unix listen socket is open to every local user, as loopback TCP is;
 * the permissions of the directory holding it narrow that.
 */
#define LISTEN_UNIX_MODE	0666

struct lsock {
	struct listeners	*ls;
	struct pst_endpoint	 ep;
	int			 fd;
	struct evconnlistener	*evl;
	struct event		*retry;		/* re-enables after EMFILE */
	bool			 unlink_on_close;
	time_t			 err_until;	/* errors before: counted only */
	unsigned long		 err_quiet;	/* errors not logged */
	int			 err_errno;	/* the last of them */
};

struct listeners {
	struct lsock		*socks;
	size_t			 count;
	listen_accept_cb	 cb;
	void			*arg;
};

static int	lsock_open(struct lsock *, char *, size_t, bool *);
static void	lsock_accept(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);
static void	lsock_error(struct evconnlistener *, void *);

/*
 * Removes a leftover unix socket at 'path'.  Anything else there (a file,
 * a directory, a symlink) is left alone and the bind will fail visibly.
 */
static void
unlink_stale_socket(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
}

/*
 * Opens one socket.  Returns 0, or -1 with a reason in 'why'; '*skip' is
 * set when the failure only means "this host has no IPv6".
 */
static int
lsock_open(struct lsock *s, char *why, size_t whylen, bool *skip)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const char *reason;
	int one = 1, fd;

	*skip = false;
	if (pst_endpoint_sockaddr(&s->ep, &ss, &len, &reason) == -1) {
		snprintf(why, whylen, "%s", reason);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1) {
		*skip = ss.ss_family == AF_INET6 && errno == EAFNOSUPPORT;
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	if (ss.ss_family == AF_UNIX)
		unlink_stale_socket(s->ep.path);
	else
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) == -1) {
		*skip = ss.ss_family == AF_INET6 && (errno == EADDRNOTAVAIL ||
		    errno == EAFNOSUPPORT);
		snprintf(why, whylen, "bind: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (ss.ss_family == AF_UNIX) {
		s->unlink_on_close = true;
		if (chmod(s->ep.path, LISTEN_UNIX_MODE) == -1) {
			snprintf(why, whylen, "chmod: %s", strerror(errno));
			close(fd);
			unlink(s->ep.path);
			return -1;
		}
	}
	if (listen(fd, LISTEN_BACKLOG) == -1) {
		snprintf(why, whylen, "listen: %s", strerror(errno));
		close(fd);
		return -1;
	}
	s->fd = fd;
	return 0;
}

static bool
same_address(const struct sockaddr_storage *a, socklen_t alen,
    const struct sockaddr_storage *b, socklen_t blen)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;
	const struct sockaddr_un *au = (const void *)a, *bu = (const void *)b;

	/* Both come from getsockname() or a parsed endpoint: set. */
	/* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult) */
	if (a->ss_family != b->ss_family)
		return false;
	switch (a->ss_family) {
	case AF_INET:
		return a4->sin_port == b4->sin_port &&
		    a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	case AF_INET6:
		return a6->sin6_port == b6->sin6_port &&
		    memcmp(&a6->sin6_addr, &b6->sin6_addr,
		    sizeof(a6->sin6_addr)) == 0;
	case AF_UNIX:
		return alen > offsetof(struct sockaddr_un, sun_path) &&
		    blen > offsetof(struct sockaddr_un, sun_path) &&
		    strcmp(au->sun_path, bu->sun_path) == 0;
	}
	return false;
}

/*
 * Socket activation: the sockets systemd passed (postern.socket) stand
 * for the `listen` entries with the same address, which are then not
 * bound again; a passed socket that matches no entry is used all the
 * same (the socket unit decides), with a warning.  Returns how many
 * sockets were taken, -1 after logging.
 */
static int
take_passed_sockets(const struct config *cfg, struct listeners *ls,
    bool *bound)
{
	struct sockaddr_storage ss, want;
	socklen_t len, wlen;
	struct lsock *s, *socks;
	const char *why;
	char name[300];
	int n, i, fd, flags;
	size_t j;

	if ((n = sd_listen_fds(1)) <= 0)
		return n;
	socks = realloc(ls->socks, (cfg->nlisten + (size_t)n) *
	    sizeof(*socks));
	if (socks == NULL)
		return -1;
	ls->socks = socks;
	for (i = 0; i < n; i++) {
		fd = SD_LISTEN_FDS_START + i;
		len = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
		    sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
			log_error("event=listen-failed fd=%d reason=%s", fd,
			    qs("a passed file descriptor is not a listening "
			    "stream socket"));
			return -1;
		}
		flags = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		s = &ls->socks[ls->count++];
		memset(s, 0, sizeof(*s));
		s->fd = fd;
		for (j = 0; j < cfg->nlisten; j++) {
			if (bound[j] || pst_endpoint_sockaddr(&cfg->listen[j],
			    &want, &wlen, &why) == -1 ||
			    !same_address(&ss, len, &want, wlen))
				continue;
			bound[j] = true;
			s->ep = cfg->listen[j];
			break;
		}
		pst_sockaddr_format((struct sockaddr *)&ss, len, name,
		    sizeof(name));
		if (j == cfg->nlisten) {
			/* Describe it for the logs all the same. */
			if (pst_endpoint_parse(name, CONFIG_PORT_SMTP, true,
			    &s->ep, &why) == -1)
				s->ep.kind = PST_EP_INET;
			log_warn("event=listen-extra listen=%s reason=%s",
			    qs(name), qs("systemd passed a socket that no "
			    "listen entry names; using it"));
		} else
			log_info("event=listen-activated listen=%s", qs(name));
	}
	return n;
}

struct listeners *
listeners_open(const struct config *cfg)
{
	struct listeners *ls;
	struct lsock *s;
	char why[256], name[300];
	size_t i, skipped = 0;
	bool skip, failed = false, *bound;
	int passed;

	if ((ls = calloc(1, sizeof(*ls))) == NULL ||
	    (ls->socks = calloc(cfg->nlisten, sizeof(*ls->socks))) == NULL ||
	    (bound = calloc(cfg->nlisten + 1, sizeof(*bound))) == NULL) {
		if (ls != NULL)
			free(ls->socks);
		free(ls);
		log_error("event=listen-failed reason=%s", qs("out of memory"));
		return NULL;
	}
	if ((passed = take_passed_sockets(cfg, ls, bound)) == -1) {
		free(bound);
		listeners_free(ls);
		return NULL;
	}
	for (i = 0; i < cfg->nlisten; i++) {
		/* With socket activation only the passed sockets are used. */
		if (bound[i] || passed > 0)
			continue;
		s = &ls->socks[ls->count];
		s->ep = cfg->listen[i];
		s->fd = -1;
		pst_endpoint_format(&s->ep, name, sizeof(name));
		if (lsock_open(s, why, sizeof(why), &skip) == 0) {
			ls->count++;
			continue;
		}
		if (skip) {
			log_warn("event=listen-skipped listen=%s reason=%s",
			    qs(name), qs("no IPv6 on this host"));
			skipped++;
			continue;
		}
		log_error("event=listen-failed listen=%s reason=%s", qs(name),
		    qs(why));
		failed = true;
	}
	free(bound);
	if (!failed && ls->count == 0)
		log_error("event=listen-failed reason=%s",
		    qs("no listen address could be used"));
	if (failed || ls->count == 0) {
		listeners_free(ls);
		return NULL;
	}
	return ls;
}

static time_t
monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/*
 * Accept errors come back every ACCEPT_RETRY_MS while they last (the
 * descriptor limit): the first is logged, the others are counted and
 * told at most once per ACCEPT_LOG_S, and once accepting works again.
 */
static void
lsock_error_summary(struct lsock *s, const char *event)
{
	char name[300];

	if (s->err_quiet == 0)
		return;
	pst_endpoint_format(&s->ep, name, sizeof(name));
	log_warn("event=%s listen=%s reason=%s suppressed=%lu", event,
	    qs(name), qs(strerror(s->err_errno)), s->err_quiet);
	s->err_quiet = 0;
}

static void
lsock_accept(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct lsock *s = arg;

	lsock_error_summary(s, "accept-resumed");
	s->err_until = 0;
	s->ls->cb(fd, sa, (socklen_t)salen, &s->ep, s->ls->arg);
}

/*
 * Accept errors (EMFILE, ENFILE, ENOBUFS) would otherwise spin: pause the
 * listener briefly so that closing sessions can free descriptors.
 */
static void
lsock_reenable(evutil_socket_t fd, short what, void *arg)
{
	struct lsock *s = arg;

	evconnlistener_enable(s->evl);
}

static void
lsock_error(struct evconnlistener *evl, void *arg)
{
	struct timeval tv = { 0, ACCEPT_RETRY_MS * 1000 };
	struct lsock *s = arg;
	time_t now = monotonic_s();
	char name[300];

	s->err_errno = errno;
	if (now < s->err_until)
		s->err_quiet++;
	else if (s->err_quiet > 0) {
		s->err_quiet++;
		lsock_error_summary(s, "accept-error");
		s->err_until = now + ACCEPT_LOG_S;
	} else {
		pst_endpoint_format(&s->ep, name, sizeof(name));
		log_warn("event=accept-error listen=%s reason=%s", qs(name),
		    qs(strerror(s->err_errno)));
		s->err_until = now + ACCEPT_LOG_S;
	}
	evconnlistener_disable(evl);
	evtimer_add(s->retry, &tv);
}

int
listeners_start(struct listeners *ls, struct event_base *base,
    listen_accept_cb cb, void *arg)
{
	struct lsock *s;
	size_t i;

	ls->cb = cb;
	ls->arg = arg;
	for (i = 0; i < ls->count; i++) {
		s = &ls->socks[i];
		s->ls = ls;
		s->retry = evtimer_new(base, lsock_reenable, s);
		s->evl = evconnlistener_new(base, lsock_accept, s,
		    LEV_OPT_CLOSE_ON_FREE, -1, s->fd);
		if (s->evl == NULL || s->retry == NULL) {
			log_error("event=listen-failed reason=%s",
			    qs("cannot attach the listener to the loop"));
			return -1;
		}
		evconnlistener_set_error_cb(s->evl, lsock_error);
	}
	return 0;
}

void
listeners_free(struct listeners *ls)
{
	struct lsock *s;
	size_t i;

	if (ls == NULL)
		return;
	for (i = 0; i < ls->count; i++) {
		s = &ls->socks[i];
		if (s->retry != NULL)
			event_free(s->retry);
		if (s->evl != NULL)
			evconnlistener_free(s->evl);	/* closes the fd */
		else if (s->fd != -1)
			close(s->fd);
		if (s->unlink_on_close)
			unlink(s->ep.path);
	}
	free(ls->socks);
	free(ls);
}

char *
listeners_describe(const struct listeners *ls, char *buf, size_t len)
{
	char name[300];
	size_t i, off = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; i < ls->count; i++) {
		pst_endpoint_format(&ls->socks[i].ep, name, sizeof(name));
		n = snprintf(buf + off, len - off, "%s%s", i > 0 ? "," : "",
		    name);
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	return buf;
}
