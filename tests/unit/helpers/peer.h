/*
 * peer.h: a scripted SMTP peer over a bufferevent pair, for testing state
 * machines without a network.
 *
 * A script is an array of steps, run in order:
 *   "C: text"   wait for the line "text" from the other side (CRLF
 *               stripped); any other line fails the script
 *   "C! text"   the same, and nothing else may be waiting after it
 *               (proves the other side did not pipeline)
 *   "S: text"   send "text\r\n"
 *   "R: bytes"  send the bytes as they are (no CRLF added)
 *   "CLOSE"     close the connection
 *   "TLS"       take the server side of a TLS handshake on the
 *               connection (STARTTLS, or implicit TLS as the first
 *               step); the steps after it run inside, once the
 *               handshake is done (peer_start_tls() only)
 *   NULL        end of script: stay silent, keep the connection
 */
#ifndef POSTERN_TEST_PEER_H
#define POSTERN_TEST_PEER_H

#include <stdbool.h>
#include <stddef.h>

struct bufferevent;

struct peer {
	struct bufferevent	*bev;
	const char *const	*script;
	size_t			 step;
	bool			 failed;
	char			 why[512];
	bool			 closed;
	void			*ssl_ctx;	/* SSL_CTX for "TLS" */
	bool			 handshaking;
};

/* Starts running 'script' on 'bev' (the peer's end of a pair). */
void	peer_start(struct peer *p, struct bufferevent *bev,
	    const char *const *script);

/* The same, with the server SSL_CTX 'ssl_ctx' for the "TLS" step. */
void	peer_start_tls(struct peer *p, struct bufferevent *bev,
	    const char *const *script, void *ssl_ctx);

/* True when every step ran and nothing went wrong. */
bool	peer_done(const struct peer *p);

void	peer_free(struct peer *p);

#endif /* POSTERN_TEST_PEER_H */
