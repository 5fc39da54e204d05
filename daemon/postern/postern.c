/*
 * postern.c: the operator's command-line tool.
 *
 *   postern check-config [-c FILE]
 *   postern probe [-c FILE] [--json] [-v] [--send TO [--from FROM]] [NAME]
 *   postern queue [-c FILE] [--json] list|show ID|delete ID|hold ID|release ID
 *   postern flush [-c FILE] [ID]
 *   postern status [-c FILE] [--json]
 *   postern reload [-c FILE]
 *   postern metrics [-c FILE]
 *
 * Each subcommand is an entry in 'commands'; each parses its own options.
 */
#include <sys/mman.h>

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build_config.h"
#include "common/codec.h"
#include "common/err.h"
#include "probe.h"
#include "shared/config.h"
#include "shared/config_load.h"
#include "shared/ctlclient.h"
#include "shared/queue.h"
#include "spool/spool.h"

struct command {
	const char	*name;
	const char	*args;
	const char	*help;
	int		(*run)(int, char *[]);
};

static int	cmd_check_config(int, char *[]);
static int	cmd_probe(int, char *[]);
static int	cmd_flush(int, char *[]);
static int	cmd_status(int, char *[]);
static int	cmd_reload(int, char *[]);
static int	cmd_metrics(int, char *[]);
static int	cmd_init_spool(int, char *[]);
static void	usage(FILE *, int) __attribute__((noreturn));

static const struct command commands[] = {
	{ "check-config", "[-c FILE]",
	    "validate the configuration: print \"ok\" or every error",
	    cmd_check_config },
	{ "probe", "[-c FILE] [--json] [-v] [--send TO [--from FROM]] [NAME]",
	    "connect to each upstream (or NAME) as a delivery would, and\n"
	    "      show every step; --send also sends a test message",
	    cmd_probe },
	{ "flush", "[-c FILE] [ID]",
	    "ask posternd to try every deferred message (or ID) now",
	    cmd_flush },
	{ "status", "[-c FILE] [--json]",
	    "what posternd is doing: queue, upstreams, breakers",
	    cmd_status },
	{ "reload", "[-c FILE]",
	    "have posternd load its configuration again (kept if invalid)",
	    cmd_reload },
	{ "metrics", "[-c FILE]",
	    "counters and gauges in OpenMetrics text",
	    cmd_metrics },
	{ "init-spool", "[-c FILE]",
	    "create the spool's layout, owned like the spool directory, so\n"
	    "      that sendmail queues mail before posternd first starts",
	    cmd_init_spool },
	{ "queue", "[-c FILE] [--json] list | show ID | delete ID | hold ID "
	    "| release ID",
	    "list the queue, show one message, or delete, hold or release it",
	    queue_command },
};

static void
usage(FILE *fp, int status)
{
	size_t i;

	fprintf(fp, "usage: postern COMMAND [ARGS]\n\ncommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(fp, "  %s %s\n      %s\n", commands[i].name,
		    commands[i].args, commands[i].help);
	fprintf(fp, "\nThe configuration is FILE, else $POSTERN_CONFIG, "
	    "else %s.\n", POSTERN_DEFAULT_CONFIG);
	exit(status);
}

/*
 * Parses the options every subcommand shares.  Returns the config path;
 * '*explicit' tells whether the user named it.
 */
static const char *
common_options(int argc, char *argv[], bool *explicit)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = config_default_path();
	int ch;

	*explicit = getenv("POSTERN_CONFIG") != NULL;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			*explicit = true;
			break;
		default:
			usage(stderr, 2);
		}
	}
	return path;
}

static int
cmd_check_config(int argc, char *argv[])
{
	const char *path;
	bool explicit;

	path = common_options(argc, argv, &explicit);
	if (optind != argc)
		usage(stderr, 2);
	return config_check_report(path, explicit);
}

static int
cmd_probe(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "send", required_argument, NULL, 's' },
		{ "from", required_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = config_default_path(), *to = NULL, *from = NULL;
	bool explicit = getenv("POSTERN_CONFIG") != NULL, json = false;
	bool verbose = false;
	struct config *cfg;
	int ch, status;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			explicit = true;
			break;
		case 'j':
			json = true;
			break;
		case 's':
			to = optarg;
			break;
		case 'f':
			from = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		default:
			usage(stderr, 2);
		}
	}
	if (argc - optind > 1)
		usage(stderr, 2);
	if (config_load_report(path, explicit, &cfg) == -1)
		return 1;
	status = probe_run(cfg, optind < argc ? argv[optind] : NULL, json,
	    verbose, to, from);
	config_unref(cfg);
	return status;
}

/* The answer's leading "warning TEXT" lines go to stderr; returns the rest. */
static char *
print_warnings(char *reply)
{
	size_t len;

	while (strncmp(reply, "warning ", 8) == 0) {
		len = strcspn(reply, "\n");
		fprintf(stderr, "postern: warning: %.*s\n", (int)len - 8,
		    reply + 8);
		reply += len + (reply[len] == '\n');
	}
	return reply;
}

/* Asks the running daemon; prints its answer or why there is none. */
static int
ask_daemon(int argc, char *argv[], const char *request, bool raw)
{
	struct config *cfg;
	char why[512], hint[2048], *reply, *body;
	const char *path;
	bool explicit;
	int status = 0;

	path = common_options(argc, argv, &explicit);
	if (config_load_report(path, explicit, &cfg) == -1)
		return 1;
	if (control_request(cfg->spool_dir, request, &reply, why,
	    sizeof(why)) == -1) {
		/* The configuration may name a spool no daemon serves. */
		control_hint_others(cfg->spool_dir, cfg->path, hint,
		    sizeof(hint));
		fprintf(stderr, "postern: %s (spool_dir from %s)%s\n", why,
		    cfg->path != NULL ? cfg->path : "the defaults and "
		    "environment", hint);
		config_unref(cfg);
		return 1;
	}
	body = print_warnings(reply);
	if (strncmp(body, "error ", 6) == 0) {
		fprintf(stderr, "postern: %s", body + 6);
		status = 1;
	} else if (raw || strncmp(body, "ok ", 3) != 0)
		fputs(body, stdout);
	else
		printf("%.*s message(s) due now\n",
		    (int)strcspn(body + 3, "\n"), body + 3);
	free(reply);
	config_unref(cfg);
	return status;
}

/* Takes argv[i] out of the argument list, keeping the order of the rest. */
static int
take_arg(int argc, char *argv[], int i)
{
	memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(*argv));
	return argc - 1;
}

static int
cmd_flush(int argc, char *argv[])
{
	char request[64];
	int i;

	/* The ID is a positional argument among the options. */
	for (i = 1; i < argc; i++) {
		if (argv[i][0] != '-' && (i == 1 || (strcmp(argv[i - 1], "-c")
		    != 0 && strcmp(argv[i - 1], "--config") != 0))) {
			snprintf(request, sizeof(request), "flush %s",
			    argv[i]);
			return ask_daemon(take_arg(argc, argv, i), argv,
			    request, false);
		}
	}
	return ask_daemon(argc, argv, "flush", false);
}

static int
cmd_status(int argc, char *argv[])
{
	int i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0)
			return ask_daemon(take_arg(argc, argv, i), argv,
			    "status", true);
	return ask_daemon(argc, argv, "status text", true);
}

static int
cmd_reload(int argc, char *argv[])
{
	struct config *cfg;
	const char *path;
	bool explicit;

	/* Check here first: the errors are then the user's to read. */
	path = common_options(argc, argv, &explicit);
	if (config_load_report(path, explicit, &cfg) == -1) {
		fprintf(stderr, "postern: the configuration is invalid: not "
		    "reloading; posternd keeps running on its current one\n");
		return 1;
	}
	if (cfg->file_empty) {
		fprintf(stderr, "postern: %s holds no settings (empty, or a "
		    "write cut short?): not reloading; posternd keeps running "
		    "on its current configuration\n", cfg->path);
		config_unref(cfg);
		return 1;
	}
	config_unref(cfg);
	return ask_daemon(argc, argv, "reload", true);
}

static int
cmd_metrics(int argc, char *argv[])
{
	return ask_daemon(argc, argv, "metrics", true);
}

/*
 * The layout that sendmail needs and never creates itself: what posternd
 * creates at start, for a spool whose daemon has not started yet.  It is
 * given to the spool directory's owner and group when root runs this.
 */
static int
cmd_init_spool(int argc, char *argv[])
{
	struct pst_spool_opts opts = {
		.flags = PST_SPOOL_CREATE,
		.file_mode = CONFIG_SPOOL_FILE_MODE,
		.dir_mode = CONFIG_SPOOL_DIR_MODE,
	};
	struct pst_spool *spool;
	struct config *cfg;
	struct pst_err err;
	const char *path;
	bool explicit;

	path = common_options(argc, argv, &explicit);
	if (optind != argc)
		usage(stderr, 2);
	if (config_load_report(path, explicit, &cfg) == -1)
		return 1;
	if ((spool = pst_spool_open(cfg->spool_dir, &opts, &err)) == NULL) {
		fprintf(stderr, "postern: cannot initialise the spool: %s\n",
		    err.text);
		config_unref(cfg);
		return 1;
	}
	printf("spool %s is ready\n", cfg->spool_dir);
	pst_spool_close(spool);
	config_unref(cfg);
	return 0;
}

/*
 * --json on every path.  A command asked for JSON may fail anywhere: in
 * the shared configuration loader, talking to the daemon, in the queue
 * tool, in its usage.  Rather than teach each of them JSON, what the
 * command writes is held back (standard output and error each in a
 * memfd) and given out at exit: its own output as written, or, when it
 * wrote none and failed, {"error": "what it said"} on standard output.
 * The exit status stays; the messages still reach standard error.
 */
static struct {
	int	out, err;		/* the memfds */
	int	saved_out, saved_err;	/* the real ones */
} held = { -1, -1, -1, -1 };

/* Copies what 'from' holds to 'to'; returns it, NUL-terminated. */
static char *
drain(int from, int to)
{
	char *text;
	off_t len;
	ssize_t n;
	size_t done = 0, sent = 0;

	if ((len = lseek(from, 0, SEEK_END)) <= 0 ||
	    (text = malloc((size_t)len + 1)) == NULL)
		return NULL;
	while (done < (size_t)len && (n = pread(from, text + done,
	    (size_t)len - done, (off_t)done)) > 0)
		done += (size_t)n;
	text[done] = '\0';
	while (sent < done && (n = write(to, text + sent, done - sent)) > 0)
		sent += (size_t)n;
	return text;
}

static void
json_release(int status, void *arg)
{
	char *out, *err;
	size_t len;

	fflush(stdout);
	fflush(stderr);
	dup2(held.saved_out, STDOUT_FILENO);
	dup2(held.saved_err, STDERR_FILENO);
	err = drain(held.err, STDERR_FILENO);
	out = drain(held.out, STDOUT_FILENO);
	if (out == NULL && status != 0) {
		len = err != NULL ? strlen(err) : 0;
		while (len > 0 && err[len - 1] == '\n')
			len--;
		fputs("{\"error\": \"", stdout);
		pst_json_escape_file(stdout, err != NULL ? err : "failed",
		    err != NULL ? len : strlen("failed"));
		fputs("\"}\n", stdout);
		fflush(stdout);
	}
	free(out);
	free(err);
}

static void
json_hold(void)
{
	fflush(stdout);
	fflush(stderr);
	held.out = memfd_create("postern-out", MFD_CLOEXEC);
	held.err = memfd_create("postern-err", MFD_CLOEXEC);
	held.saved_out = dup(STDOUT_FILENO);
	held.saved_err = dup(STDERR_FILENO);
	if (held.out == -1 || held.err == -1 || held.saved_out == -1 ||
	    held.saved_err == -1 || dup2(held.out, STDOUT_FILENO) == -1 ||
	    dup2(held.err, STDERR_FILENO) == -1 ||
	    on_exit(json_release, NULL) != 0) {
		/* Without the memfds: plain output, as before. */
		if (held.saved_out != -1)
			dup2(held.saved_out, STDOUT_FILENO);
		if (held.saved_err != -1)
			dup2(held.saved_err, STDERR_FILENO);
	}
}

/* Whether the command's arguments ask for JSON. */
static bool
wants_json(int argc, char *argv[])
{
	int i;

	for (i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--json") == 0)
			return true;
	return false;
}

int
main(int argc, char *argv[])
{
	size_t i;

	if (argc < 2)
		usage(stderr, 2);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		usage(stdout, 0);
	if (strcmp(argv[1], "--version") == 0) {
		printf("postern %s\n", POSTERN_VERSION);
		return 0;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0) {
			if (strstr(commands[i].args, "--json") != NULL &&
			    wants_json(argc, argv))
				json_hold();
			return commands[i].run(argc - 1, argv + 1);
		}
	fprintf(stderr, "postern: unknown command \"%s\"\n", argv[1]);
	usage(stderr, 2);
}
