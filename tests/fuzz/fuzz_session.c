/*
 * fuzz_session.c: a whole SMTP server session (daemon/posternd/server.c).
 *
 * Once: a spool in a private temporary directory (on /dev/shm when it
 * exists, where fsync costs nothing) named after the process, a worker
 * pool and a configuration with small limits and an alias.  libFuzzer
 * may end without running atexit handlers, so the directories of
 * processes that are gone are removed at start.  For each input: a
 * fresh server, a socketpair whose one end the server accepts as a
 * client from 127.0.0.1, and the input written into the other end as
 * the client's bytes, then its write side shut.  The loop runs until
 * the session is gone; the server is then shut down and freed, and
 * whatever was committed is removed from the spool.
 *
 * Checked: the session ends by itself within SESSION_DEADLINE_MS of the
 * client's end of input (no state waits forever); everything the server
 * wrote is a sequence of complete, well-formed SMTP replies; a client
 * that opens with an HTTP request line gets the greeting and nothing
 * more (cmd.h: the server closes without reading further).  The
 * sanitizers watch the rest: reads past a buffer, use after free in the
 * session's callbacks, leaks.  With FUZZ_TRACE set in the environment the
 * server's replies are copied to stderr, to read a session back.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "common/err.h"
#include "common/pool.h"
#include "shared/config.h"
#include "shared/config_load.h"
#include "shared/log.h"
#include "net/sockaddr.h"
#include "posternd/server.h"
#include "smtp/line.h"
#include "smtp/reply.h"
#include "spool/spool.h"
#include "fuzz.h"

#define SESSION_DEADLINE_MS	10000

struct client {
	int			 fd;
	const uint8_t		*p;	/* left to write */
	size_t			 len;
	bool			 eof;	/* the server closed */
	struct evbuffer		*got;	/* what the server wrote */
	struct event		*ev;
};

static void	session_rmtree(const char *path);
static void	session_sweep(const char *tmp);
static void	session_cleanup(void);
static void	session_clear_spool(void);
static void	session_clientcb(evutil_socket_t, short, void *);
static void	session_deadlinecb(evutil_socket_t, short, void *);
static void	session_drained(void *);
static size_t	session_check_replies(struct evbuffer *got);
static bool	session_http(const uint8_t *data, size_t size);

static struct event_base	*base;
static struct pst_pool		*pool;
static struct pst_spool		*spool;
static struct config		*cfg;
static char			 tmpdir[64];
static char			 spooldir[96];
static struct pst_reply		 reply;	/* too large for the stack */

static const char session_conf[] =
    "hostname = \"fuzz.example.org\";\n"
    "spool_dir = \"%s\";\n"
    "listen = ( \"127.0.0.1:2525\" );\n"
    "allow = ( \"127.0.0.0/8\" );\n"
    "log = { level = \"error\"; };\n"
    "limits = { message_size = 65536; recipients = 100; sessions = 4;\n"
    "    idle = \"30s\"; };\n"
    "aliases = { root = \"admin@example.org\";\n"
    "    postmaster = \"root\"; };\n"
    "default_domain = \"example.org\";\n";

/* Removes a tree made by this program: plain files and directories. */
static void
session_rmtree(const char *path)
{
	DIR *d;
	struct dirent *de;
	char sub[512];

	if ((d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			if (de->d_type == DT_DIR)
				session_rmtree(sub);
			else
				unlink(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

/* Removes the directories of earlier runs whose process is gone. */
static void
session_sweep(const char *tmp)
{
	DIR *d;
	struct dirent *de;
	char path[512], *end;
	long pid;

	if ((d = opendir(tmp)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "fuzz-session.", 13) != 0)
			continue;
		pid = strtol(de->d_name + 13, &end, 10);
		if (*end != '\0' || pid <= 0 || kill((pid_t)pid, 0) == 0 ||
		    errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmp, de->d_name);
		session_rmtree(path);
	}
	closedir(d);
}

static void
session_cleanup(void)
{
	if (pool != NULL)
		pst_pool_free(pool);
	pst_spool_close(spool);
	if (cfg != NULL)
		config_unref(cfg);
	if (base != NULL)
		event_base_free(base);
	if (tmpdir[0] != '\0')
		session_rmtree(tmpdir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct pst_spool_opts opts;
	struct config_errors errs;
	struct pst_err err;
	struct stat st;
	const char *tmp;
	char path[160];
	FILE *fp;
	size_t i;

	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
	    access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";
	else if ((tmp = getenv("TMPDIR")) == NULL || strlen(tmp) > 40)
		tmp = "/tmp";
	session_sweep(tmp);
	snprintf(tmpdir, sizeof(tmpdir), "%s/fuzz-session.%ld", tmp,
	    (long)getpid());
	if (mkdir(tmpdir, 0700) == -1)
		abort();
	atexit(session_cleanup);
	snprintf(spooldir, sizeof(spooldir), "%s/spool", tmpdir);
	snprintf(path, sizeof(path), "%s/postern.conf", tmpdir);
	if ((fp = fopen(path, "w")) == NULL)
		abort();
	fprintf(fp, session_conf, spooldir);
	fclose(fp);

	unsetenv("POSTERN_LISTEN");
	unsetenv("POSTERN_ALLOW");
	unsetenv("POSTERN_SPOOL_DIR");
	unsetenv("POSTERN_HOSTNAME");
	unsetenv("POSTERN_LOG_LEVEL");
	unsetenv("POSTERN_UPSTREAM");
	unsetenv("POSTERN_PROXY");
	unsetenv("POSTERN_PASSWORD_FILE");
	if (config_load(path, true, &cfg, &errs) == -1) {
		for (i = 0; i < errs.count; i++)
			fprintf(stderr, "%s\n", errs.lines[i]);
		abort();
	}
	config_errors_free(&errs);
	log_init("fuzz-session", true);
	log_set_level(LOG_LEVEL_ERROR);

	if (evthread_use_pthreads() == -1 || (base = event_base_new()) ==
	    NULL)
		abort();
	memset(&opts, 0, sizeof(opts));
	opts.flags = PST_SPOOL_CREATE;
	if ((spool = pst_spool_open(spooldir, &opts, &err)) == NULL ||
	    (pool = pst_pool_new(base, 1, &err)) == NULL) {
		fprintf(stderr, "%s\n", err.text);
		abort();
	}
	return 0;
}

/* Every message committed is removed: the spool stays small. */
static void
session_clear_spool(void)
{
	char dir[160], file[512];
	DIR *d;
	struct dirent *de;
	int b;

	for (b = 0; b < PST_SPOOL_BUCKETS; b++) {
		snprintf(dir, sizeof(dir), "%s/queue/%x", spooldir, b);
		if ((d = opendir(dir)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(file, sizeof(file), "%s/%s", dir, de->d_name);
			unlink(file);
		}
		closedir(d);
	}
}

/* The client: writes its input, then reads to the end. */
static void
session_clientcb(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	char buf[4096];
	ssize_t n;

	if ((what & EV_WRITE) && c->len > 0) {
		n = send(c->fd, c->p, c->len, MSG_NOSIGNAL);
		if (n > 0) {
			c->p += n;
			c->len -= (size_t)n;
		} else if (n == -1 && errno != EAGAIN && errno != EINTR)
			c->len = 0;	/* the server went away */
		if (c->len == 0) {
			shutdown(c->fd, SHUT_WR);
			/* Only reading is left. */
			event_del(c->ev);
			event_assign(c->ev, base, c->fd, EV_READ | EV_PERSIST,
			    session_clientcb, c);
			event_add(c->ev, NULL);
		}
	}
	if (what & EV_READ) {
		while ((n = read(c->fd, buf, sizeof(buf))) > 0)
			FUZZ_CHECK(evbuffer_add(c->got, buf, (size_t)n) == 0);
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
			c->eof = true;
			event_del(c->ev);
		}
	}
}

static void
session_deadlinecb(evutil_socket_t fd, short what, void *arg)
{
	bool *expired = arg;

	*expired = true;
	event_base_loopbreak(base);
}

static void
session_drained(void *arg)
{
	bool *drained = arg;

	*drained = true;
}

/* The server spoke SMTP: complete replies, nothing else.  Counts them. */
static size_t
session_check_replies(struct evbuffer *got)
{
	struct pst_err err;
	size_t n = 0;
	int rc;

	pst_reply_reset(&reply);
	while (evbuffer_get_length(got) > 0) {
		rc = pst_reply_parse(got, &reply, PST_STAGE_GREETING, &err);
		if (rc != 1)
			fprintf(stderr, "server output: %s\n", rc == -1 ?
			    err.text : "incomplete reply");
		FUZZ_CHECK(rc == 1);
		n++;
	}
	return n;
}

/* The input opens with an HTTP request line (the verbs of cmd.c). */
static bool
session_http(const uint8_t *data, size_t size)
{
	static const char *const verbs[] = { "GET ", "POST ", "HEAD ",
	    "PUT ", "CONNECT " };
	const uint8_t *eol;
	size_t i, n;

	if ((eol = memchr(data, '\n', size)) == NULL || eol == data ||
	    eol - data >= PST_LINE_SMTP_MAX || eol[-1] != '\r')
		return false;
	/* Control bytes or bad UTF-8 get a reply of their own. */
	for (i = 0; data + i + 1 < eol; i++)
		if (data[i] < 0x20 || data[i] > 0x7e)
			return false;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		n = strlen(verbs[i]);
		if (size >= n && strncasecmp((const char *)data, verbs[i],
		    n) == 0)
			return true;
	}
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in peer;
	struct pst_endpoint ep;
	struct server *srv;
	struct client c;
	struct event *deadline;
	struct timeval tv;
	const char *why;
	bool expired = false, drained = false;
	size_t n;
	int sv[2];

	if ((srv = server_new(base, cfg, spool, pool)) == NULL ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1 ||
	    evutil_make_socket_nonblocking(sv[0]) == -1 ||
	    evutil_make_socket_nonblocking(sv[1]) == -1)
		abort();
	memset(&peer, 0, sizeof(peer));
	peer.sin_family = AF_INET;
	peer.sin_port = htons(40000);
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	FUZZ_CHECK(pst_endpoint_parse("127.0.0.1:2525", 0, false, &ep,
	    &why) == 0);

	memset(&c, 0, sizeof(c));
	c.fd = sv[0];
	c.p = data;
	c.len = size;
	if ((c.got = evbuffer_new()) == NULL ||
	    (c.ev = event_new(base, c.fd, EV_READ | EV_WRITE | EV_PERSIST,
	    session_clientcb, &c)) == NULL ||
	    (deadline = evtimer_new(base, session_deadlinecb, &expired)) ==
	    NULL)
		abort();
	if (size == 0) {
		shutdown(c.fd, SHUT_WR);
		event_assign(c.ev, base, c.fd, EV_READ | EV_PERSIST,
		    session_clientcb, &c);
	}
	event_add(c.ev, NULL);
	tv.tv_sec = SESSION_DEADLINE_MS / 1000;
	tv.tv_usec = 0;
	evtimer_add(deadline, &tv);

	server_accept(srv, sv[1], (struct sockaddr *)&peer, sizeof(peer),
	    &ep);
	while (!expired && (server_sessions(srv) > 0 || !c.eof))
		event_base_loop(base, EVLOOP_ONCE);
	if (expired)
		fprintf(stderr, "session still open %d ms after the input\n",
		    SESSION_DEADLINE_MS);
	FUZZ_CHECK(!expired);

	/* No session is left: the server says so at once. */
	server_shutdown(srv, session_drained, &drained);
	FUZZ_CHECK(drained);
	server_free(srv);
	event_free(deadline);
	event_free(c.ev);
	close(c.fd);
	if (getenv("FUZZ_TRACE") != NULL && evbuffer_get_length(c.got) > 0)
		fwrite(evbuffer_pullup(c.got, -1), 1,
		    evbuffer_get_length(c.got), stderr);
	n = session_check_replies(c.got);
	if (session_http(data, size))
		FUZZ_CHECK(n == 1);
	evbuffer_free(c.got);
	session_clear_spool();
	return 0;
}
