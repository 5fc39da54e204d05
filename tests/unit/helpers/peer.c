/*
 * peer.c: the scripted peer of peer.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/ssl.h>

#include "helpers/peer.h"

static void	peer_run(struct peer *);
static void	peer_readcb(struct bufferevent *, void *);
static void	peer_eventcb(struct bufferevent *, short, void *);

static void
peer_fail(struct peer *p, const char *what, const char *a, const char *b)
{
	if (!p->failed)
		snprintf(p->why, sizeof(p->why), "%s \"%s\" %s", what, a, b);
	p->failed = true;
}

static void
peer_run(struct peer *p)
{
	struct evbuffer *in = bufferevent_get_input(p->bev);
	const char *s;
	char *line;
	size_t len;

	if (p->handshaking)
		return;
	while (!p->failed && !p->closed && (s = p->script[p->step]) != NULL) {
		if (strncmp(s, "S: ", 3) == 0) {
			bufferevent_write(p->bev, s + 3, strlen(s + 3));
			bufferevent_write(p->bev, "\r\n", 2);
		} else if (strncmp(s, "R: ", 3) == 0) {
			bufferevent_write(p->bev, s + 3, strlen(s + 3));
		} else if (strcmp(s, "CLOSE") == 0) {
			/* A pair tells its partner of EOF only this way. */
			bufferevent_flush(p->bev, EV_WRITE, BEV_FINISHED);
			bufferevent_free(p->bev);
			p->bev = NULL;
			p->closed = true;
		} else if (strcmp(s, "TLS") == 0 && p->ssl_ctx != NULL) {
			/* What was written so far leaves in plain text. */
			p->bev = bufferevent_openssl_filter_new(
			    bufferevent_get_base(p->bev), p->bev,
			    SSL_new(p->ssl_ctx), BUFFEREVENT_SSL_ACCEPTING,
			    BEV_OPT_CLOSE_ON_FREE);
			if (p->bev == NULL) {
				peer_fail(p, "cannot start", s, "");
				break;
			}
			bufferevent_setcb(p->bev, peer_readcb, NULL,
			    peer_eventcb, p);
			bufferevent_enable(p->bev, EV_READ | EV_WRITE);
			/* The next steps run once the handshake is done. */
			p->handshaking = true;
			p->step++;
			return;
		} else if (s[0] == 'C' && (s[1] == ':' || s[1] == '!')) {
			line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF_STRICT);
			if (line == NULL)
				return;		/* wait for more */
			if (strcmp(line, s + 3) != 0)
				peer_fail(p, "want", s + 3, line);
			else if (s[1] == '!' && evbuffer_get_length(in) > 0)
				peer_fail(p, "pipelined:", s + 3, "");
			free(line);
		} else
			peer_fail(p, "bad script step", s, "");
		p->step++;
	}
}

static void
peer_readcb(struct bufferevent *bev, void *arg)
{
	peer_run(arg);
}

static void
peer_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct peer *p = arg;

	if (p->handshaking && (what & BEV_EVENT_CONNECTED)) {
		p->handshaking = false;
		peer_run(p);
		return;
	}
	if (p->script[p->step] != NULL)
		peer_fail(p, "connection closed at step",
		    p->script[p->step], "");
}

void
peer_start(struct peer *p, struct bufferevent *bev, const char *const *script)
{
	peer_start_tls(p, bev, script, NULL);
}

void
peer_start_tls(struct peer *p, struct bufferevent *bev,
    const char *const *script, void *ssl_ctx)
{
	memset(p, 0, sizeof(*p));
	p->bev = bev;
	p->script = script;
	p->ssl_ctx = ssl_ctx;
	bufferevent_setcb(bev, peer_readcb, NULL, peer_eventcb, p);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	peer_run(p);
}

bool
peer_done(const struct peer *p)
{
	return !p->failed && p->script[p->step] == NULL;
}

void
peer_free(struct peer *p)
{
	if (p->bev != NULL)
		bufferevent_free(p->bev);
	p->bev = NULL;
}
