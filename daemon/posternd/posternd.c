/*
 * posternd.c: the daemon's main(): arguments, configuration, the event
 * loop and its signals.
 *
 * Start-up does everything that can fail (configuration, spool lock and
 * recovery, listening sockets) before it detaches, so that a broken start
 * is reported on the terminal that started it.  SIGHUP loads the file
 * again and swaps it in only when it is valid; SIGTERM and SIGINT stop
 * accepting, let sessions whose message is being committed get their
 * answer (within a grace period), then end the loop, after which every
 * resource is released in reverse order.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include <systemd/sd-daemon.h>

#include "build_config.h"
#include "common/err.h"
#include "common/pool.h"
#include "control.h"
#include "listen.h"
#include "scheduler.h"
#include "server.h"
#include "shared/config.h"
#include "shared/config_load.h"
#include "shared/log.h"
#include "spool/spool.h"

/*
 * Disk work in flight at once.  Commits waiting on fsync share journal
 * commits only if enough of them run together: measured on ext4, 16
 * workers halve the flushes per message compared with 4 (tests/bench).
 */
#define POOL_THREADS	16
#define STOP_GRACE_S	10	/* for sessions to get their answer */
#define STATUS_TICK_S	5	/* STATUS= at least this often */
#define USEC_PER_S	1000000

/* What must be idle before the loop ends: the server and the scheduler. */
#define DRAIN_PARTS	2

struct daemon {
	struct event_base	*base;
	struct config		*cfg;
	const char		*config_path;
	bool			 config_explicit;
	struct pst_pool		*pool;
	struct pst_spool	*spool;
	struct listeners	*listeners;
	struct server		*server;
	struct scheduler	*scheduler;
	struct control		*control;
	struct event		*ev_grace;
	struct event		*ev_tick;	/* STATUS= and WATCHDOG=1 */
	bool			 watchdog;
	bool			 stopping;
	int			 draining;	/* server, scheduler */
	struct event		*ev_term;
	struct event		*ev_int;
	struct event		*ev_hup;
};

static void	usage(FILE *, int) __attribute__((noreturn));
static void	log_config_errors(const struct config_errors *);
static void	on_stop(evutil_socket_t, short, void *);
static void	on_reload(evutil_socket_t, short, void *);

static void
usage(FILE *fp, int status)
{
	fprintf(fp,
	    "usage: posternd [-f] [-c FILE]\n"
	    "       posternd --check-config [-c FILE]\n"
	    "       posternd --version | --help\n"
	    "\n"
	    "  -c, --config FILE   configuration file (default: $POSTERN_CONFIG"
	    " or %s)\n"
	    "  -f, --foreground    stay in the foreground, log to stderr\n"
	    "      --check-config  validate the configuration and exit\n"
	    "      --version       print the version and exit\n"
	    "      --help          print this help and exit\n",
	    POSTERN_DEFAULT_CONFIG);
	exit(status);
}

static void
log_config_errors(const struct config_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->count; i++)
		log_error("event=config-error error=%s", qs(errs->lines[i]));
}

static void
on_accept(int fd, const struct sockaddr *sa, socklen_t salen,
    const struct pst_endpoint *ep, void *arg)
{
	server_accept(arg, fd, sa, salen, ep);
}

/*
 * Once per load: what is valid but likely wrong, and what the TLS policy
 * dropped ("downgrade").
 */
static void
log_config_notes(const struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->warnings.count; i++)
		log_warn("event=config-warning warning=%s",
		    qs(cfg->warnings.lines[i]));
	for (i = 0; i < cfg->nupstreams; i++)
		if (cfg->upstreams[i].tls_note[0] != '\0')
			log_warn("event=tls-policy upstream=%s note=%s",
			    qs(cfg->upstreams[i].name),
			    qs(cfg->upstreams[i].tls_note));
}

/*
 * For systemd: STATUS= with the queue and the last results, and WATCHDOG=1
 * when the unit asks for it.  Sent from the loop, so a stuck loop stops
 * the watchdog pings.
 */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	size_t total, due, held, busy;
	unsigned long accepted, refused, sessions;

	scheduler_counts(d->scheduler, &total, &due, &held, &busy);
	server_counts(d->server, &accepted, &refused, &sessions);
	sd_notifyf(0, "%sSTATUS=queue %zu (due %zu, held %zu, delivering %zu); "
	    "accepted %lu since start%s", d->watchdog ? "WATCHDOG=1\n" : "",
	    total, due, held, busy, accepted,
	    d->stopping ? "; stopping" : "");
}

static void
start_tick(struct daemon *d)
{
	struct timeval tv = { STATUS_TICK_S, 0 };
	uint64_t usec;

	/* Half the watchdog interval, and at most every 5 s for STATUS=. */
	if (sd_watchdog_enabled(0, &usec) > 0) {
		d->watchdog = true;
		if (usec / 2 < STATUS_TICK_S * USEC_PER_S) {
			tv.tv_sec = (time_t)(usec / 2 / USEC_PER_S);
			tv.tv_usec = (suseconds_t)(usec / 2 % USEC_PER_S);
		}
	}
	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	if ((d->ev_tick = event_new(d->base, -1, EV_PERSIST, on_tick, d)) ==
	    NULL || event_add(d->ev_tick, &tv) == -1)
		fatalx("event=start-failed reason=%s",
		    qs("cannot start the status timer"));
	on_tick(-1, 0, d);
}

static void
on_drained(void *arg)
{
	struct daemon *d = arg;

	if (--d->draining == 0)
		event_base_loopexit(d->base, NULL);
}

static void
on_grace_over(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	log_warn("event=stop-forced sessions=%u reason=%s",
	    server_sessions(d->server), qs("grace period over; deliveries "
	    "in flight stay queued"));
	scheduler_abort(d->scheduler);
	event_base_loopexit(d->base, NULL);
}

static void
on_commit(const struct pst_spool_env *env, void *arg)
{
	struct daemon *d = arg;

	scheduler_add(d->scheduler, env);
}

static void
on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct timeval grace = { STOP_GRACE_S, 0 };
	struct daemon *d = arg;

	if (d->stopping) {
		log_warn("event=stop-forced signal=%s", strsignal((int)sig));
		event_base_loopexit(d->base, NULL);
		return;
	}
	d->stopping = true;
	log_info("event=stopping signal=%s sessions=%u", strsignal((int)sig),
	    server_sessions(d->server));
	sd_notify(0, "STOPPING=1");
	listeners_free(d->listeners);
	d->listeners = NULL;
	evtimer_add(d->ev_grace, &grace);
	d->draining = DRAIN_PARTS;
	server_shutdown(d->server, on_drained, d);
	scheduler_stop(d->scheduler, on_drained, d);
}

static void
open_spool(struct daemon *d, const struct pst_spool_opts *opts)
{
	struct pst_err err;

	if ((d->spool = pst_spool_open(d->cfg->spool_dir, opts, &err)) ==
	    NULL)
		fatalx("event=start-failed spool=%s reason=%s",
		    qs(d->cfg->spool_dir), qs(err.text));
}

/*
 * Before detaching: a spool another daemon holds is reported on the
 * terminal, not only in syslog.
 */
static void
check_spool_free(const char *dir)
{
	struct pst_spool *spool;
	struct pst_err err;
	pid_t pid;

	if ((spool = pst_spool_open(dir, NULL, &err)) == NULL)
		return;		/* missing yet: the real open creates it */
	if (pst_spool_daemon(spool, &pid, &err) == 1)
		fatalx("event=start-failed spool=%s reason=%s", qs(dir),
		    qs("the spool is in use by another posternd"));
	pst_spool_close(spool);
}

static void
on_spool_problem(const struct pst_spool_problem *p, void *arg)
{
	static const char *const actions[] = {
		[PST_SPOOL_REMOVED] = "removed",
		[PST_SPOOL_QUARANTINED] = "quarantined",
		[PST_SPOOL_SKIPPED] = "skipped",
	};

	log_warn("event=spool-recovery action=%s path=%s%s%s reason=%s",
	    actions[p->action], qs(p->path),
	    p->moved_to != NULL ? " moved_to=" : "",
	    p->moved_to != NULL ? qs(p->moved_to) : "", qs(p->reason));
}

/* A reload that is not applied: logged, told to the control client. */
static int
refuse_reload(struct daemon *d, struct evbuffer *out, const char *what,
    const char *why)
{
	log_error("event=reload-refused config=%s %s reason=%s",
	    qs(d->config_path), what, qs(why));
	if (out != NULL)
		evbuffer_add_printf(out, "error %s\n", why);
	sd_notifyf(0, "READY=1\nSTATUS=reload refused: %s", why);
	return -1;
}

/*
 * The keys that only a start reads (the spool with its lock, recovery and
 * control socket; the listening and metrics sockets, which may be
 * privileged or come from systemd) are not applied by a reload: one that
 * changes them is refused whole, so the daemon never runs half on the
 * old file and half on the new.  A file holding no setting at all is
 * most likely a write cut short, not a wish for every default.
 */
static int
check_reload(struct daemon *d, const struct config *cfg,
    struct evbuffer *out)
{
	char keys[128], what[192], why[512];

	if (cfg->file_empty) {
		snprintf(why, sizeof(why), "%s holds no settings (empty, or "
		    "a write cut short?); still running on the previous "
		    "configuration", d->config_path);
		return refuse_reload(d, out, "errors=1", why);
	}
	if (config_restart_keys(d->cfg, cfg, keys, sizeof(keys)) == 0)
		return 0;
	snprintf(what, sizeof(what), "keys=%s", keys);
	snprintf(why, sizeof(why), "%s changed, which only a start reads: "
	    "restart posternd to apply it; still running on the previous "
	    "configuration (spool %s)", keys, d->cfg->spool_dir);
	return refuse_reload(d, out, what, why);
}

/* Worth a warning, not a refusal: the operator may mean it. */
static void
warn_reload(struct daemon *d, const struct config *cfg,
    struct evbuffer *out)
{
	static const char why[] = "the new configuration has no upstream: "
	    "mail is accepted and queued but nothing is delivered";

	if (cfg->nupstreams > 0 || d->cfg->nupstreams == 0)
		return;
	log_warn("event=reload-warning config=%s upstreams=0 reason=%s",
	    qs(d->config_path), qs(why));
	if (out != NULL)
		evbuffer_add_printf(out, "warning %s\n", why);
}

/*
 * Loads the file again and swaps it in only when it is valid; the
 * errors are logged, and also appended to 'out' for the control socket.
 */
static int
reload(struct daemon *d, struct evbuffer *out)
{
	struct config_errors errs;
	struct config *cfg;
	size_t i;

	log_info("event=reload config=%s", qs(d->config_path));
	sd_notify(0, "RELOADING=1");
	if (config_load(d->config_path, d->config_explicit, &cfg, &errs) ==
	    -1) {
		log_config_errors(&errs);
		log_error("event=reload-refused config=%s errors=%zu "
		    "reason=%s", qs(d->config_path), errs.count,
		    qs("the new configuration is invalid; still running on "
		    "the previous one"));
		if (out != NULL) {
			evbuffer_add_printf(out, "error the configuration is "
			    "invalid; still running on the previous one\n");
			for (i = 0; i < errs.count; i++)
				evbuffer_add_printf(out, "%s\n",
				    errs.lines[i]);
		}
		config_errors_free(&errs);
		sd_notify(0, "READY=1\nSTATUS=reload refused: invalid "
		    "configuration");
		return -1;
	}
	if (check_reload(d, cfg, out) == -1) {
		config_unref(cfg);
		return -1;
	}
	warn_reload(d, cfg, out);
	config_unref(d->cfg);
	d->cfg = cfg;
	server_set_config(d->server, cfg);
	scheduler_set_config(d->scheduler, cfg);
	log_set_level((enum log_level)cfg->log_level);
	log_config_notes(cfg);
	log_info("event=reloaded config=%s", qs(d->config_path));
	sd_notify(0, "READY=1");
	return 0;
}

static void
on_reload(evutil_socket_t sig, short what, void *arg)
{
	reload(arg, NULL);
}

static int
control_reload(void *arg, struct evbuffer *out)
{
	return reload(arg, out);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon d = { 0 };
	struct pst_spool_opts sopts = { 0 };
	struct control_hooks hooks;
	struct config_errors errs;
	struct pst_err err;
	char where[512];
	bool foreground = false, only_check = false;
	int ch;

	d.config_path = config_default_path();
	d.config_explicit = getenv("POSTERN_CONFIG") != NULL;
	while ((ch = getopt_long(argc, argv, "c:fh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			d.config_path = optarg;
			d.config_explicit = true;
			break;
		case 'f':
			foreground = true;
			break;
		case 'C':
			only_check = true;
			break;
		case 'V':
			printf("posternd %s\n", POSTERN_VERSION);
			return 0;
		case 'h':
			usage(stdout, 0);
		default:
			usage(stderr, 2);
		}
	}
	if (optind != argc)
		usage(stderr, 2);
	if (only_check)
		return config_check_report(d.config_path, d.config_explicit);

	/* Under systemd (stderr is the journal) there is nothing to detach. */
	if (log_stderr_is_journal())
		foreground = true;
	log_init("posternd", true);
	if (config_load(d.config_path, d.config_explicit, &d.cfg, &errs) ==
	    -1) {
		log_config_errors(&errs);
		config_errors_free(&errs);
		/*
		 * EX_CONFIG: the unit does not restart on it
		 * (RestartPreventExitStatus=78); a restart would fail alike.
		 */
		log_error("event=start-failed reason=%s",
		    qs("the configuration is invalid"));
		return EX_CONFIG;
	}
	log_set_level((enum log_level)d.cfg->log_level);

	sopts.flags = PST_SPOOL_CREATE | PST_SPOOL_DAEMON | PST_SPOOL_RECOVER;
	sopts.file_mode = CONFIG_SPOOL_FILE_MODE;
	sopts.dir_mode = CONFIG_SPOOL_DIR_MODE;
	sopts.problem = on_spool_problem;
	if (!foreground)
		check_spool_free(d.cfg->spool_dir);
	else
		open_spool(&d, &sopts);
	if ((d.listeners = listeners_open(d.cfg)) == NULL)
		fatalx("event=start-failed reason=%s",
		    qs("cannot listen on every address"));

	signal(SIGPIPE, SIG_IGN);
	if (!foreground) {
		if (daemon(0, 0) == -1)
			fatalx("event=start-failed reason=%s",
			    qs(strerror(errno)));
		log_init("posternd", false);
		/* After the fork, so that the lock file names our pid. */
		open_spool(&d, &sopts);
	}
	if (evthread_use_pthreads() == -1)
		fatalx("event=start-failed reason=%s",
		    qs("libevent has no pthreads support"));
	if ((d.base = event_base_new()) == NULL)
		fatalx("event=start-failed reason=%s",
		    qs("cannot create the event loop"));
	if ((d.pool = pst_pool_new(d.base, POOL_THREADS, &err)) == NULL ||
	    pst_spool_start(d.spool, d.base, &err) == -1)
		fatalx("event=start-failed reason=%s", qs(err.text));
	if ((d.server = server_new(d.base, d.cfg, d.spool, d.pool)) == NULL ||
	    (d.scheduler = scheduler_new(d.base, d.cfg, d.spool, d.pool)) ==
	    NULL || (d.ev_grace = evtimer_new(d.base, on_grace_over, &d)) ==
	    NULL)
		fatalx("event=start-failed reason=%s", qs("out of memory"));
	server_set_commit_cb(d.server, on_commit, &d);
	if (scheduler_start(d.scheduler) == -1)
		fatalx("event=start-failed reason=%s",
		    qs("cannot load the queue"));
	hooks.scheduler = d.scheduler;
	hooks.server = d.server;
	hooks.reload = control_reload;
	hooks.arg = &d;
	if ((d.control = control_open(d.base, d.cfg->spool_dir, &hooks)) ==
	    NULL)
		fatalx("event=start-failed reason=%s",
		    qs("cannot create the control socket"));
	if (d.cfg->has_metrics && control_http_open(d.control, d.base,
	    &d.cfg->metrics_listen) == -1)
		fatalx("event=start-failed reason=%s",
		    qs("cannot serve metrics"));
	if (listeners_start(d.listeners, d.base,
	    on_accept, d.server) == -1)
		fatalx("event=start-failed reason=%s",
		    qs("cannot start the listeners"));

	d.ev_term = evsignal_new(d.base, SIGTERM, on_stop, &d);
	d.ev_int = evsignal_new(d.base, SIGINT, on_stop, &d);
	d.ev_hup = evsignal_new(d.base, SIGHUP, on_reload, &d);
	if (d.ev_term == NULL || d.ev_int == NULL || d.ev_hup == NULL ||
	    evsignal_add(d.ev_term, NULL) == -1 ||
	    evsignal_add(d.ev_int, NULL) == -1 ||
	    evsignal_add(d.ev_hup, NULL) == -1)
		fatalx("event=start-failed reason=%s",
		    qs("cannot install signal handlers"));

	log_info("event=ready version=%s config=%s hostname=%s spool=%s "
	    "listen=%s", POSTERN_VERSION, qs(d.cfg->path != NULL ?
	    d.cfg->path : "(defaults and environment)"), qs(d.cfg->hostname),
	    qs(d.cfg->spool_dir),
	    listeners_describe(d.listeners, where, sizeof(where)));
	log_config_notes(d.cfg);
	sd_notify(0, "READY=1");
	start_tick(&d);
	event_base_dispatch(d.base);

	listeners_free(d.listeners);
	control_close(d.control);
	/* Finishes every disk job; their completions free what they held. */
	pst_pool_free(d.pool);
	/* And every batch of the log: the sessions still hear of theirs. */
	pst_spool_stop(d.spool);
	scheduler_abort(d.scheduler);
	scheduler_free(d.scheduler);
	server_free(d.server);
	pst_spool_close(d.spool);
	event_free(d.ev_grace);
	if (d.ev_tick != NULL)
		event_free(d.ev_tick);
	event_free(d.ev_hup);
	event_free(d.ev_int);
	event_free(d.ev_term);
	event_base_free(d.base);
	config_unref(d.cfg);
	log_info("event=stopped");
	return 0;
}
