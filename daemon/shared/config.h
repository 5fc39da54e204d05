/*
 * config.h: postern.conf, loaded and validated once into an immutable,
 * reference-counted struct config.
 *
 * Every key has a type, an allowed range or set, and a default; unknown
 * keys are errors.  Loading never stops at the first problem: it collects
 * every error, each as one line "file:line: key.path: what is wrong", so
 * that a user fixes a file in one pass.  The environment (POSTERN_LISTEN,
 * POSTERN_ALLOW, POSTERN_SPOOL_DIR, POSTERN_HOSTNAME, POSTERN_LOG_LEVEL)
 * overrides the file (POSTERN_UPSTREAM and POSTERN_PASSWORD_FILE too);
 * its errors name the variable.
 *
 * A struct config is never modified after config_load() (config_load.h)
 * returns it.  A reload loads a new one and swaps the pointer; holders of
 * the old one keep it alive with config_ref() until they are done.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "net/dial.h"
#include "net/sockaddr.h"
#include "tls/policy.h"

/*
 * Spool permissions for every program: directories setgid and writable by
 * the spool's group, files readable by it.  So posternd (user postern)
 * and a sendmail installed setgid postern, run by any local user, share
 * the spool; nobody else can read it.
 */
#define CONFIG_SPOOL_FILE_MODE	0640
#define CONFIG_SPOOL_DIR_MODE	02770

/*
 * Ports when none is named: SMTP for a listen entry (RFC 5321); for an
 * upstream, message submission with STARTTLS (RFC 6409), or submission
 * over implicit TLS (RFC 8314) when its security is "tls".
 */
#define CONFIG_PORT_SMTP		25
#define CONFIG_PORT_SUBMISSION		587
#define CONFIG_PORT_SUBMISSIONS		465

#define CONFIG_DEFAULT_MESSAGE_SIZE	(50u * 1024 * 1024)
#define CONFIG_DEFAULT_RECIPIENTS	1000
#define CONFIG_DEFAULT_SESSIONS		100
#define CONFIG_DEFAULT_IDLE_MS		(5u * 60 * 1000)
#define CONFIG_DEFAULT_MIN_DATA_RATE	500	/* bytes/s, as Postfix */
#define CONFIG_DEFAULT_JUNK_COMMANDS	100
#define CONFIG_DEFAULT_STRESS_THRESHOLD	80	/* percent of sessions */
#define CONFIG_DEFAULT_STRESS_IDLE_MS	(10u * 1000)
#define CONFIG_DEFAULT_STRESS_JUNK	10

struct config_alias {
	char		 *name;		/* lower-case local name */
	char		**targets;	/* addresses or local names */
	size_t		  ntargets;
	char		 *file;		/* the alias file it came from;
					   NULL: postern.conf */
	int		  line;		/* in 'file' */
};

struct config_limits {
	uint64_t	 message_size;	/* bytes, SIZE= and DATA */
	unsigned	 recipients;	/* per message */
	unsigned	 sessions;	/* concurrent SMTP clients */
	uint64_t	 idle_ms;	/* to send one command line */
	uint64_t	 min_data_rate;	/* bytes/s that extend DATA's deadline */
	unsigned	 junk_commands;	/* NOOP, RSET... without a message */
	unsigned	 stress_threshold; /* % of sessions: stress begins */
	uint64_t	 stress_idle_ms; /* idle under stress */
	unsigned	 stress_junk_commands; /* junk_commands under stress */
};

/* Milliseconds. */
struct config_timeouts {
	uint64_t	 connect;	/* TCP connect, per address */
	uint64_t	 proxy;		/* a proxy's handshake */
	uint64_t	 greeting;	/* short wait that drives auto modes */
	uint64_t	 tls;		/* TLS handshake */
	uint64_t	 command;	/* each command's reply */
	uint64_t	 data;		/* each block of the message */
	uint64_t	 dot;		/* the reply to the final dot */
	uint64_t	 total;		/* a whole delivery attempt */
};

struct config_auth {
	char		*user;
	char		*password;		/* inline secret, or NULL */
	char		*password_file;		/* or a file holding it */
	char		*password_command;	/* or a command printing it */
	char		*credential;		/* or a systemd credential */
	unsigned	 mechanisms;		/* PST_SASL_* allowed */
	bool		 token;			/* XOAUTH2: an access token */
	bool		 allow_plaintext;	/* PLAIN/LOGIN without TLS */
};

struct config_upstream {
	char			*name;
	char			*host;
	uint16_t		 port;
	int			 security;	/* enum pst_secmode */
	char			*bind;		/* IPv4 source, or NULL */
	char			*bind6;		/* IPv6 source, or NULL */
	struct config_timeouts	 timeouts;
	struct pst_tls_policy	 tls;		/* points into 'strings' */
	SSL_CTX			*ssl_ctx;	/* built from 'tls' at load */
	char			 tls_note[256];	/* versions dropped, or "" */
	bool			 has_auth;
	struct config_auth	 auth;
	struct pst_hop		*proxies;	/* tried in turn, one at a time */
	size_t			 nproxies;
	unsigned		 rate_count;	/* at most this many messages */
	uint64_t		 rate_per_ms;	/* per this long; 0: no limit */
	char			**strings;	/* owned by the upstream */
	size_t			 nstrings;
};

#define CONFIG_RETRY_MAX	32

struct config_queue {
	uint32_t	 retry[CONFIG_RETRY_MAX];	/* seconds */
	size_t		 nretry;
	uint64_t	 max_age_ms;	/* then undelivered mail bounces */
	unsigned	 concurrency;	/* connections per upstream */
	unsigned	 per_connection; /* messages before a new one */
	unsigned	 breaker_failures; /* connection failures to open */
	uint64_t	 breaker_backoff_ms; /* first open period */
};

struct config_errors {
	char		**lines;
	size_t		  count;
};

struct config {
	unsigned		 refs;
	char			*path;		/* NULL: defaults and env */
	char			*hostname;
	char			*spool_dir;	/* absolute */
	struct pst_endpoint	*listen;
	size_t			 nlisten;
	struct pst_cidr		*allow;
	size_t			 nallow;
	int			 log_level;	/* enum log_level */
	struct config_limits	 limits;
	struct config_alias	*aliases;
	size_t			 naliases;
	char			*default_domain;
	char			*aliases_file;	/* NULL: /etc/aliases if there;
						   "": none */
	struct config_errors	 warnings;	/* what is valid but likely
						   wrong, one line each */
	struct config_upstream	*upstreams;
	size_t			 nupstreams;
	struct config_queue	 queue;
	bool			 has_metrics;
	struct pst_endpoint	 metrics_listen;	/* HTTP /metrics */
	bool			 file_empty;	/* the file holds no setting */
};

/* Every error of one load, in file order, then the environment's. */

/*
 * config_restart_keys()
 * The keys posternd reads only at start (spool_dir, listen,
 * metrics_listen) whose values differ between 'old' and 'new', as a
 * comma list in 'buf' ("" when none).  Returns how many.
 */
size_t		 config_restart_keys(const struct config *old,
		    const struct config *new, char *buf, size_t len);

struct config	*config_ref(struct config *cfg);
void		 config_unref(struct config *cfg);

void		 config_errors_free(struct config_errors *errs);

/*
 * config_alias_find()
 * The alias for local name 'name' (case-insensitive), or NULL.
 */
const struct config_alias *config_alias_find(const struct config *cfg,
		    const char *name);

/*
 * config_upstream_find()
 * The upstream called 'name', or NULL.
 */
const struct config_upstream *config_upstream_find(const struct config *cfg,
		    const char *name);

#endif /* POSTERN_CONFIG_H */
