/*
 * control.c: serving and asking the control socket.
 *
 * Requests are tiny and answered at once from the loop: each connection
 * reads one bounded line, writes its answer and is closed when the answer
 * has left (the end of input ends a request line too: a client that
 * half-closes still reads the answer).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "breaker.h"
#include "build_config.h"
#include "common/codec.h"
#include "control.h"
#include "scheduler.h"
#include "server.h"
#include "shared/config.h"
#include "shared/log.h"
#include "spool/spool.h"

#define CONTROL_TIMEOUT_S	10

/*
 * The control socket's owner and group (the spool's) may talk to it:
 * they may touch the spool anyway (control.h).
 */
#define CONTROL_SOCKET_MODE	0660
/* Pending connections on either socket: a few tools, a scraper. */
#define CONTROL_BACKLOG		16

#define FLUSH_PREFIX		"flush "	/* "flush ID" */
#define FLUSH_PREFIX_LEN	(sizeof(FLUSH_PREFIX) - 1)

struct control {
	struct evconnlistener	*evl;
	struct evconnlistener	*http;
	struct scheduler	*s;
	struct control_hooks	 hooks;
	char			 path[PATH_MAX];
	time_t			 started;
};

static void
control_path(const char *spool_dir, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", spool_dir, CONTROL_SOCKET_NAME);
}

static void
json_string(struct evbuffer *out, const char *s)
{
	evbuffer_add(out, "\"", 1);
	pst_json_escape_evbuffer(out, s, strlen(s));
	evbuffer_add(out, "\"", 1);
}

static void
reply_status(struct control *c, struct evbuffer *out)
{
	const struct config *cfg = scheduler_config(c->s);
	struct upstate *up;
	size_t total, due, held, busy, i;
	time_t now = time(NULL);

	scheduler_counts(c->s, &total, &due, &held, &busy);
	evbuffer_add_printf(out, "{\"version\":\"%s\",\"uptime\":%lld,"
	    "\"queue\":{\"total\":%zu,\"due\":%zu,\"held\":%zu,"
	    "\"delivering\":%zu},\"upstreams\":[", POSTERN_VERSION,
	    (long long)(now - c->started), total, due, held, busy);
	for (i = 0; i < cfg->nupstreams; i++) {
		if ((up = scheduler_upstate(c->s, cfg->upstreams[i].name)) ==
		    NULL)
			continue;
		evbuffer_add_printf(out, "%s{\"name\":", i > 0 ? "," : "");
		json_string(out, up->name);
		evbuffer_add_printf(out, ",\"learned\":\"%s\",\"mode\":",
		    pst_learned_name(up->learned));
		if (up->mode != NULL)
			json_string(out, up->mode);
		else
			evbuffer_add_printf(out, "null");
		evbuffer_add_printf(out, ","
		    "\"breaker\":\"%s\",\"connections\":%u,"
		    "\"failures\":%u,\"last_ok\":%lld,\"last_fail\":%lld,"
		    "\"last_error\":",
		    breaker_state_name(&up->br, now), up->conns,
		    up->br.failures,
		    (long long)up->last_ok, (long long)up->last_fail);
		json_string(out, up->last_error);
		evbuffer_add_printf(out, ",\"reopens_in\":%lld}",
		    (long long)(up->br.open_until > now ?
		    up->br.open_until - now : 0));
	}
	evbuffer_add_printf(out, "]}\n");
}

static void
reply_status_text(struct control *c, struct evbuffer *out)
{
	const struct config *cfg = scheduler_config(c->s);
	struct upstate *up;
	size_t total, due, held, busy, i;
	time_t now = time(NULL);

	scheduler_counts(c->s, &total, &due, &held, &busy);
	evbuffer_add_printf(out, "posternd %s, up %llds\n"
	    "queue: %zu message(s): %zu due, %zu held, %zu being delivered\n",
	    POSTERN_VERSION, (long long)(now - c->started), total, due, held,
	    busy);
	if (cfg->nupstreams == 0)
		evbuffer_add_printf(out, "upstreams: none configured\n");
	for (i = 0; i < cfg->nupstreams; i++) {
		if ((up = scheduler_upstate(c->s, cfg->upstreams[i].name)) ==
		    NULL)
			continue;
		evbuffer_add_printf(out, "upstream %s: breaker %s, %u "
		    "connection(s), last session %s", up->name,
		    breaker_state_name(&up->br, now), up->conns,
		    up->mode != NULL ? up->mode : "none yet");
		if (up->br.open_until > now)
			evbuffer_add_printf(out, " (retry in %llds)",
			    (long long)(up->br.open_until - now));
		evbuffer_add_printf(out, "\n");
		if (up->last_ok != 0)
			evbuffer_add_printf(out, "  last success %llds ago\n",
			    (long long)(now - up->last_ok));
		if (up->last_fail != 0)
			evbuffer_add_printf(out, "  last failure %llds ago: "
			    "%s\n", (long long)(now - up->last_fail),
			    up->last_error);
	}
}

/* A label value: quotes and backslashes escaped (OpenMetrics). */
static void
metric_label(struct evbuffer *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			evbuffer_add(out, "\\", 1);
		if (*s == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, s, 1);
	}
}

/* Appends the OpenMetrics exposition to 'out'. */
static void
control_metrics(struct control *c, struct evbuffer *out)
{
	static const struct {
		const char	*result;
		size_t		 offset;
	} results[] = {
		{ "delivered", offsetof(struct upstate, delivered) },
		{ "deferred", offsetof(struct upstate, deferred) },
		{ "failed", offsetof(struct upstate, failed) },
	};
	const struct config *cfg = scheduler_config(c->s);
	unsigned long accepted, refused, sessions, n;
	size_t total, due, held, busy, i, j;
	struct upstate *up;
	time_t now = time(NULL), oldest;

	server_counts(c->hooks.server, &accepted, &refused, &sessions);
	scheduler_counts(c->s, &total, &due, &held, &busy);
	oldest = scheduler_oldest(c->s);
	evbuffer_add_printf(out,
	    "# TYPE postern_messages_accepted counter\n"
	    "# HELP postern_messages_accepted Messages accepted over SMTP.\n"
	    "postern_messages_accepted_total %lu\n"
	    "# TYPE postern_sessions counter\n"
	    "# HELP postern_sessions SMTP client sessions.\n"
	    "postern_sessions_total %lu\n"
	    "# TYPE postern_sessions_refused counter\n"
	    "# HELP postern_sessions_refused SMTP client sessions refused "
	    "(limits, allow list).\n"
	    "postern_sessions_refused_total %lu\n"
	    "# TYPE postern_bounces counter\n"
	    "# HELP postern_bounces Delivery status notifications written.\n"
	    "postern_bounces_total %lu\n"
	    "# TYPE postern_queue_messages gauge\n"
	    "# HELP postern_queue_messages Messages in the queue by state.\n"
	    "postern_queue_messages{state=\"waiting\"} %zu\n"
	    "postern_queue_messages{state=\"due\"} %zu\n"
	    "postern_queue_messages{state=\"held\"} %zu\n"
	    "postern_queue_messages{state=\"delivering\"} %zu\n"
	    "# TYPE postern_queue_oldest_age_seconds gauge\n"
	    "# HELP postern_queue_oldest_age_seconds Age of the oldest message.\n"
	    "postern_queue_oldest_age_seconds %lld\n",
	    accepted, sessions, refused, scheduler_bounces(c->s),
	    total - due - held - busy, due, held, busy,
	    (long long)(oldest == 0 ? 0 : now - oldest));
	evbuffer_add_printf(out,
	    "# TYPE postern_recipients counter\n"
	    "# HELP postern_recipients Recipient results by upstream.\n");
	for (i = 0; i < cfg->nupstreams; i++) {
		if ((up = scheduler_upstate(c->s, cfg->upstreams[i].name)) ==
		    NULL)
			continue;
		for (j = 0; j < sizeof(results) / sizeof(results[0]); j++) {
			evbuffer_add_printf(out, "postern_recipients_total{"
			    "upstream=\"");
			metric_label(out, up->name);
			evbuffer_add_printf(out, "\",result=\"%s\"} %lu\n",
			    results[j].result, *(const unsigned long *)
			    ((const char *)up + results[j].offset));
		}
	}
	evbuffer_add_printf(out,
	    "# TYPE postern_connections counter\n"
	    "# HELP postern_connections Upstream connections that worked, and "
	    "those that failed by stage (tls, auth, proxy...).\n");
	for (i = 0; i < cfg->nupstreams; i++) {
		if ((up = scheduler_upstate(c->s, cfg->upstreams[i].name)) ==
		    NULL)
			continue;
		evbuffer_add_printf(out, "postern_connections_total{upstream=\"");
		metric_label(out, up->name);
		evbuffer_add_printf(out, "\",result=\"ok\"} %lu\n",
		    up->conn_ok);
		for (j = 0; j < PST_STAGE__COUNT; j++) {
			if ((n = up->conn_failed[j]) == 0)
				continue;
			evbuffer_add_printf(out, "postern_connections_total{"
			    "upstream=\"");
			metric_label(out, up->name);
			evbuffer_add_printf(out, "\",result=\"failed\","
			    "stage=\"%s\"} %lu\n",
			    pst_stage_name((enum pst_stage)j), n);
		}
	}
	evbuffer_add_printf(out,
	    "# TYPE postern_upstream_breaker_open gauge\n"
	    "# HELP postern_upstream_breaker_open 1 while the upstream is "
	    "skipped after repeated failures.\n");
	for (i = 0; i < cfg->nupstreams; i++) {
		if ((up = scheduler_upstate(c->s, cfg->upstreams[i].name)) ==
		    NULL)
			continue;
		evbuffer_add_printf(out, "postern_upstream_breaker_open{"
		    "upstream=\"");
		metric_label(out, up->name);
		evbuffer_add_printf(out, "\"} %d\n", up->br.open_until > now);
	}
	evbuffer_add_printf(out, "# EOF\n");
}

static void
control_handle(struct control *c, const char *line, struct evbuffer *out)
{
	const char *why, *id;
	size_t n;

	if (strcmp(line, "flush") == 0) {
		(void)scheduler_flush(c->s, NULL, &n, &why);
		log_info("event=flush due=%zu", n);
		evbuffer_add_printf(out, "ok %zu\n", n);
	} else if (strncmp(line, FLUSH_PREFIX, FLUSH_PREFIX_LEN) == 0) {
		id = line + FLUSH_PREFIX_LEN;
		if (!pst_spool_id_valid(id)) {
			evbuffer_add_printf(out, "error not a queue id\n");
			return;
		}
		if (scheduler_flush(c->s, id, &n, &why) == -1) {
			evbuffer_add_printf(out, "error %s: %s\n", why, id);
			return;
		}
		log_info("event=flush id=%s due=%zu", id, n);
		evbuffer_add_printf(out, "ok %zu\n", n);
	} else if (strcmp(line, "status") == 0)
		reply_status(c, out);
	else if (strcmp(line, "status text") == 0)
		reply_status_text(c, out);
	else if (strcmp(line, "metrics") == 0)
		control_metrics(c, out);
	else if (strcmp(line, "reload") == 0) {
		if (c->hooks.reload(c->hooks.arg, out) == 0)
			evbuffer_add_printf(out, "ok\n");
	}
	else
		evbuffer_add_printf(out, "error unknown request\n");
}

static void
conn_writecb(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void
conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	bufferevent_free(bev);
}

/*
 * "delete ID", "hold ID", "release ID": answered when the pool has done
 * it.  The connection waits meanwhile; if it goes away first, the change
 * is still made and nobody is told.
 */
struct change_req {
	struct control		*c;
	struct bufferevent	*bev;		/* NULL once gone */
};

static const struct {
	const char		*verb;
	enum sched_change	 what;
} changes[] = {
	{ "delete ", SCHED_DELETE },
	{ "hold ", SCHED_HOLD },
	{ "release ", SCHED_RELEASE },
};

static void
change_gone(struct bufferevent *bev, short what, void *arg)
{
	struct change_req *r = arg;

	bufferevent_free(bev);
	r->bev = NULL;
}

static void
change_answer(void *arg, const struct pst_err *err)
{
	struct change_req *r = arg;
	struct evbuffer *out;

	if (r->bev != NULL) {
		out = bufferevent_get_output(r->bev);
		if (err == NULL)
			evbuffer_add_printf(out, "ok\n");
		else if (err->sys_errno == ENOENT)
			evbuffer_add_printf(out, "error missing\n");
		else if (err->sys_errno == EWOULDBLOCK)
			evbuffer_add_printf(out, "error locked\n");
		else
			evbuffer_add_printf(out, "error %s\n", err->text);
		bufferevent_setcb(r->bev, NULL, conn_writecb, conn_eventcb,
		    r->c);
	}
	free(r);
}

/*
 * Starts the change 'line' asks for: 1 when started, 0 when refused (the
 * answer is in the output), -1 when 'line' asks for no change.
 */
static int
change_start(struct bufferevent *bev, struct control *c, const char *line)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	struct change_req *r;
	const char *id;
	size_t i, n;

	for (i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		n = strlen(changes[i].verb);
		if (strncmp(line, changes[i].verb, n) == 0)
			break;
	}
	if (i == sizeof(changes) / sizeof(changes[0]))
		return -1;
	id = line + n;
	if (!pst_spool_id_valid(id)) {
		evbuffer_add_printf(out, "error not a queue id\n");
		return 0;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		evbuffer_add_printf(out, "error %s\n", strerror(ENOMEM));
		return 0;
	}
	r->c = c;
	r->bev = bev;
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, NULL, change_gone, r);
	if (scheduler_change(c->s, id, changes[i].what, change_answer,
	    r) == -1) {
		free(r);
		evbuffer_add_printf(out, "error cannot start the change\n");
		return 0;
	}
	return 1;
}

/* Answers 'line'; the connection closes once the answer has left. */
static void
conn_answer(struct bufferevent *bev, struct control *c, const char *line,
    size_t len)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	int rc;

	if (len > CONTROL_LINE_MAX)
		evbuffer_add_printf(out, "error request too long\n");
	else if ((rc = change_start(bev, c, line)) == 1)
		return;
	else if (rc == -1)
		control_handle(c, line, out);
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, conn_writecb, conn_eventcb, c);
	if (evbuffer_get_length(out) == 0)
		bufferevent_free(bev);
}

/*
 * Before the request's newline.  A client that half-closes after a
 * request without its newline (printf status | nc -N) still reads: the
 * end of its input ends the line.
 */
static void
conn_request_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	char line[CONTROL_LINE_MAX + 1];
	size_t len = evbuffer_get_length(in);

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && len > 0 &&
	    len <= CONTROL_LINE_MAX) {
		evbuffer_remove(in, line, len);
		line[len] = '\0';
		conn_answer(bev, arg, line, strlen(line));
		return;
	}
	bufferevent_free(bev);
}

static void
conn_readcb(struct bufferevent *bev, void *arg)
{
	struct control *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t len;

	line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
	if (line == NULL) {
		if (evbuffer_get_length(in) > CONTROL_LINE_MAX)
			bufferevent_free(bev);
		return;
	}
	conn_answer(bev, c, line, len);
	free(line);
}

/* A connection accepted on either socket: one request, then closed. */
static void
conn_start(struct evconnlistener *evl, evutil_socket_t fd,
    bufferevent_data_cb readcb, bufferevent_event_cb eventcb, void *arg)
{
	struct timeval tv = { CONTROL_TIMEOUT_S, 0 };
	struct bufferevent *bev;

	bev = bufferevent_socket_new(evconnlistener_get_base(evl), fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return;
	}
	bufferevent_setcb(bev, readcb, NULL, eventcb, arg);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void
control_accept(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	conn_start(evl, fd, conn_readcb, conn_request_eventcb, arg);
}

struct control *
control_open(struct event_base *base, const char *spool_dir,
    const struct control_hooks *hooks)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct control *c;
	struct stat st;
	int fd;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->hooks = *hooks;
	c->s = hooks->scheduler;
	c->started = time(NULL);
	control_path(spool_dir, c->path, sizeof(c->path));
	if (strlen(c->path) >= sizeof(sun.sun_path)) {
		log_error("event=control-failed path=%s reason=%s",
		    qs(c->path), qs("path too long for a unix socket"));
		free(c);
		return NULL;
	}
	strcpy(sun.sun_path, c->path);
	/* Only a socket is ever replaced: the lock keeps daemons apart. */
	if (lstat(c->path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(c->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(c->path, CONTROL_SOCKET_MODE) == -1 ||
	    listen(fd, CONTROL_BACKLOG) == -1) {
		log_error("event=control-failed path=%s reason=%s",
		    qs(c->path), qs(strerror(errno)));
		if (fd != -1)
			close(fd);
		free(c);
		return NULL;
	}
	c->evl = evconnlistener_new(base, control_accept, c,
	    LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (c->evl == NULL) {
		close(fd);
		unlink(c->path);
		free(c);
		return NULL;
	}
	return c;
}

/*
 * The metrics endpoint: one request, GET /metrics, one answer.  Bounded
 * request, no keep-alive, closed after the answer.
 */
#define HTTP_REQUEST_MAX	8192

static void
http_readcb(struct bufferevent *bev, void *arg)
{
	struct control *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);
	struct evbuffer *body;
	struct evbuffer_ptr end;
	char line[128];
	size_t n;

	end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos == -1) {
		end = evbuffer_search(in, "\n\n", 2, NULL);
		if (end.pos == -1) {
			if (evbuffer_get_length(in) > HTTP_REQUEST_MAX)
				bufferevent_free(bev);
			return;
		}
	}
	n = evbuffer_copyout(in, line, sizeof(line) - 1);
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if ((body = evbuffer_new()) == NULL) {
		bufferevent_free(bev);
		return;
	}
	if (strcmp(line, "GET /metrics HTTP/1.0") == 0 ||
	    strcmp(line, "GET /metrics HTTP/1.1") == 0) {
		control_metrics(c, body);
		evbuffer_add_printf(out, "HTTP/1.0 200 OK\r\n"
		    "Content-Type: application/openmetrics-text; "
		    "version=1.0.0; charset=utf-8\r\n"
		    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		    evbuffer_get_length(body));
		evbuffer_add_buffer(out, body);
	} else
		evbuffer_add_printf(out, "HTTP/1.0 404 Not Found\r\n"
		    "Content-Type: text/plain\r\nConnection: close\r\n\r\n"
		    "only GET /metrics is served here\n");
	evbuffer_free(body);
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, conn_writecb, conn_eventcb, c);
}

static void
http_accept(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	conn_start(evl, fd, http_readcb, conn_eventcb, arg);
}

int
control_http_open(struct control *c, struct event_base *base,
    const struct pst_endpoint *ep)
{
	struct sockaddr_storage ss;
	const char *why;
	char name[300];
	socklen_t len;

	pst_endpoint_format(ep, name, sizeof(name));
	if (pst_endpoint_sockaddr(ep, &ss, &len, &why) == -1) {
		log_error("event=metrics-failed listen=%s reason=%s", qs(name),
		    qs(why));
		return -1;
	}
	c->http = evconnlistener_new_bind(base, http_accept, c,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, CONTROL_BACKLOG,
	    (struct sockaddr *)&ss, (int)len);
	if (c->http == NULL) {
		log_error("event=metrics-failed listen=%s reason=%s", qs(name),
		    qs(strerror(errno)));
		return -1;
	}
	log_info("event=metrics-listening listen=%s", qs(name));
	return 0;
}

void
control_close(struct control *c)
{
	if (c == NULL)
		return;
	if (c->http != NULL)
		evconnlistener_free(c->http);
	evconnlistener_free(c->evl);
	unlink(c->path);
	free(c);
}
