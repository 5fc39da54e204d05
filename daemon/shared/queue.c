/*
 * queue.c: "postern queue" (list, show, delete, hold, release) and the
 * listing behind mailq.
 *
 * Everything goes through lib/spool opened without the daemon lock:
 * list and show read envelopes as unlocked snapshots.  Delete, hold and
 * release are asked of posternd over its control socket when it runs,
 * so that the spool has one writer, and otherwise take the message's
 * own lock and change the envelope through it; either way they retry
 * for QUEUE_LOCK_WAIT_MS while a delivery holds the message.  Operator input reaches the spool only after
 * pst_spool_id_valid(), so an id can never name another file.
 *
 * The listing holds every envelope in memory to sort them by id (that
 * is, by arrival); it is a tool for people, not a path the daemon takes.
 * Text from the spool is printed with control characters replaced
 * ('?' for people, \u escapes in JSON), so a hostile address or reply
 * text cannot drive the terminal.
 */
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/err.h"
#include "config.h"
#include "config_load.h"
#include "ctlclient.h"
#include "queue.h"
#include "spool/spool.h"

/* What "show" prints of the body: its header section, this much. */
#define SHOW_HEADER_BYTES	(64u * 1024)
#define SHOW_HEADER_LINES	200
#define LOCK_RETRY_MS		100

struct queue_ctx {
	const char	*prog;
	bool		 json;
	struct pst_spool_env **envs;
	size_t		 nenvs;
	size_t		 cap;
	int		 scan_err;	/* errno of a failed append */
};

static void	 usage(FILE *, int) __attribute__((noreturn));
static void	 on_problem(const struct pst_spool_problem *, void *);
static struct pst_spool *open_spool(const struct config *, const char *,
		    bool *);
static int	 collect(struct pst_spool_env *, void *);
static int	 by_id(const void *, const void *);
static void	 put_text(FILE *, const char *);
static void	 json_string(FILE *, const char *);
static void	 json_opt_string(FILE *, const char *);
static void	 json_time(FILE *, time_t);
static void	 format_local(char *, size_t, time_t);
static void	 print_env_text(FILE *, const struct pst_spool_env *);
static void	 print_env_json(FILE *, const struct pst_spool_env *);
static void	 print_json_fields(FILE *, const struct pst_spool_env *);
static int	 read_headers(struct pst_spool *, const struct pst_spool_env *,
		    char ***, size_t *, char *, size_t);
static int	 cmd_show(struct pst_spool *, const char *, bool, const char *);
static int	 cmd_change(struct pst_spool *, const char *, const char *,
		    const char *, bool, const char *);
static const char *rcpt_notify(unsigned, char *, size_t);

static void
usage(FILE *fp, int status)
{
	fprintf(fp, "usage: postern queue [-c FILE] [--json] list\n"
	    "       postern queue [-c FILE] [--json] show ID\n"
	    "       postern queue [-c FILE] [--json] "
	    "delete|hold|release ID\n");
	exit(status);
}

static void
on_problem(const struct pst_spool_problem *p, void *arg)
{
	const struct queue_ctx *q = arg;

	fprintf(stderr, "%s: warning: skipped %s: %s\n", q->prog, p->path,
	    p->reason);
}

/*
 * Opens cfg's spool for reading and locking.  '*missing' tells apart a
 * spool directory that does not exist (nothing was ever queued), for
 * which nothing is printed.
 */
static struct pst_spool *
open_spool(const struct config *cfg, const char *prog, bool *missing)
{
	struct pst_spool_opts opts = { .file_mode = CONFIG_SPOOL_FILE_MODE,
	    .dir_mode = CONFIG_SPOOL_DIR_MODE };
	struct pst_spool *spool;
	struct pst_err err;
	struct stat st;

	*missing = false;
	if (stat(cfg->spool_dir, &st) == -1 && errno == ENOENT) {
		*missing = true;
		return NULL;
	}
	if ((spool = pst_spool_open(cfg->spool_dir, &opts, &err)) == NULL)
		fprintf(stderr, "%s: cannot open the spool: %s\n", prog,
		    err.text);
	return spool;
}

static int
collect(struct pst_spool_env *env, void *arg)
{
	struct queue_ctx *q = arg;
	struct pst_spool_env **p;
	size_t cap;

	if (q->nenvs == q->cap) {
		cap = q->cap == 0 ? 64 : q->cap * 2;
		if ((p = reallocarray(q->envs, cap, sizeof(*p))) == NULL) {
			pst_spool_env_free(env);
			q->scan_err = ENOMEM;
			return -1;
		}
		q->envs = p;
		q->cap = cap;
	}
	q->envs[q->nenvs++] = env;
	return 0;
}

static int
by_id(const void *a, const void *b)
{
	const struct pst_spool_env *const *x = a, *const *y = b;

	return strcmp((*x)->id, (*y)->id);
}

/*
 * Output helpers.
 */

/* A tab (as in folded header lines) prints as a space. */
static void
put_text(FILE *fp, const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		fputc(*s == '\t' ? ' ' : (unsigned char)*s < 0x20 ||
		    *s == 0x7f ? '?' : *s, fp);
}

/* RFC 8259 §7: see pst_json_escape(). */
static void
json_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	pst_json_escape_file(fp, s, strlen(s));
	fputc('"', fp);
}

static void
json_opt_string(FILE *fp, const char *s)
{
	if (s == NULL || *s == '\0')
		fputs("null", fp);
	else
		json_string(fp, s);
}

/* RFC 3339 in UTC. */
static void
json_time(FILE *fp, time_t t)
{
	char buf[32];
	struct tm tm;

	if (t == 0 || gmtime_r(&t, &tm) == NULL) {
		fputs("null", fp);
		return;
	}
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(fp, "\"%s\"", buf);
}

static void
format_local(char *buf, size_t size, time_t t)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL)
		snprintf(buf, size, "%lld", (long long)t);
	else
		strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
}

static const char *
rcpt_notify(unsigned n, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s%s",
	    n & PST_SPOOL_NOTIFY_NEVER ? ",never" : "",
	    n & PST_SPOOL_NOTIFY_SUCCESS ? ",success" : "",
	    n & PST_SPOOL_NOTIFY_FAILURE ? ",failure" : "",
	    n & PST_SPOOL_NOTIFY_DELAY ? ",delay" : "");
	return buf[0] == ',' ? buf + 1 : buf;
}

/* One message of the table: a line, its state, one line per recipient. */
static void
print_env_text(FILE *fp, const struct pst_spool_env *env)
{
	const struct pst_spool_rcpt *r;
	char when[32], next[32];
	size_t i;

	format_local(when, sizeof(when), env->arrival);
	fprintf(fp, "%s  %s  %10llu  ", env->id, when,
	    (unsigned long long)env->size);
	if (env->sender[0] == '\0')
		fputs("<>", fp);
	else
		put_text(fp, env->sender);
	fputc('\n', fp);
	if (env->held || env->attempts > 0) {
		fprintf(fp, "    %s", env->held ? "held" : "queued");
		if (env->attempts > 0) {
			fprintf(fp, ", %u attempt%s", env->attempts,
			    env->attempts == 1 ? "" : "s");
			if (env->next_attempt != 0 && !env->held) {
				format_local(next, sizeof(next),
				    env->next_attempt);
				fprintf(fp, ", next %s", next);
			}
		}
		fputc('\n', fp);
	}
	if (env->last_error != NULL || env->last_code != 0) {
		fputs("    last error: ", fp);
		if (env->last_code != 0)
			fprintf(fp, "%d ", env->last_code);
		if (env->last_esc[0] != '\0')
			fprintf(fp, "%s ", env->last_esc);
		put_text(fp, env->last_error);
		fputc('\n', fp);
	}
	for (i = 0; i < env->nrcpts; i++) {
		r = &env->rcpts[i];
		fputs("    -> ", fp);
		put_text(fp, r->addr);
		fprintf(fp, "  %s", pst_spool_rcpt_state_name(r->state));
		if (r->code != 0 || r->error != NULL) {
			fputs(": ", fp);
			if (r->code != 0)
				fprintf(fp, "%d ", r->code);
			if (r->esc[0] != '\0')
				fprintf(fp, "%s ", r->esc);
			put_text(fp, r->error);
		}
		fputc('\n', fp);
	}
}

/* The members of a message's JSON object (without the braces). */
static void
print_json_fields(FILE *fp, const struct pst_spool_env *env)
{
	const struct pst_spool_rcpt *r;
	char buf[64];
	size_t i;

	fputs("\"id\":", fp);
	json_string(fp, env->id);
	fputs(",\"arrival\":", fp);
	json_time(fp, env->arrival);
	fprintf(fp, ",\"size\":%llu,\"sender\":",
	    (unsigned long long)env->size);
	json_string(fp, env->sender);
	fputs(",\"origin\":", fp);
	json_opt_string(fp, env->origin);
	fprintf(fp, ",\"held\":%s,\"attempts\":%u,\"next_attempt\":",
	    env->held ? "true" : "false", env->attempts);
	json_time(fp, env->next_attempt);
	fputs(",\"last_error\":", fp);
	if (env->last_error == NULL && env->last_code == 0) {
		fputs("null", fp);
	} else {
		fprintf(fp, "{\"code\":%d,\"esc\":", env->last_code);
		json_opt_string(fp, env->last_esc);
		fputs(",\"text\":", fp);
		json_opt_string(fp, env->last_error);
		fputc('}', fp);
	}
	fprintf(fp, ",\"flags\":[%s%s%s]",
	    env->flags & PST_SPOOL_F_8BITMIME ? "\"8BITMIME\"" : "",
	    (env->flags & PST_SPOOL_F_8BITMIME) &&
	    (env->flags & PST_SPOOL_F_SMTPUTF8) ? "," : "",
	    env->flags & PST_SPOOL_F_SMTPUTF8 ? "\"SMTPUTF8\"" : "");
	fprintf(fp, ",\"ret\":%s,\"envid\":",
	    env->ret == PST_SPOOL_RET_FULL ? "\"full\"" :
	    env->ret == PST_SPOOL_RET_HDRS ? "\"hdrs\"" : "null");
	json_opt_string(fp, env->envid);
	fputs(",\"recipients\":[", fp);
	for (i = 0; i < env->nrcpts; i++) {
		r = &env->rcpts[i];
		fputs(i > 0 ? ",{\"address\":" : "{\"address\":", fp);
		json_string(fp, r->addr);
		fprintf(fp, ",\"state\":\"%s\",\"notify\":",
		    pst_spool_rcpt_state_name(r->state));
		json_opt_string(fp, rcpt_notify(r->notify, buf, sizeof(buf)));
		fputs(",\"orcpt\":", fp);
		json_opt_string(fp, r->orcpt);
		if (r->code != 0)
			fprintf(fp, ",\"code\":%d", r->code);
		else
			fputs(",\"code\":null", fp);
		fputs(",\"esc\":", fp);
		json_opt_string(fp, r->esc);
		fputs(",\"error\":", fp);
		json_opt_string(fp, r->error);
		fputc('}', fp);
	}
	fputc(']', fp);
}

static void
print_env_json(FILE *fp, const struct pst_spool_env *env)
{
	fputc('{', fp);
	print_json_fields(fp, env);
	fputc('}', fp);
}

/*
 * list
 */

int
queue_list(const struct config *cfg, bool json, const char *prog)
{
	struct queue_ctx q = { .prog = prog, .json = json };
	struct pst_spool_opts opts = { .file_mode = CONFIG_SPOOL_FILE_MODE,
	    .dir_mode = CONFIG_SPOOL_DIR_MODE };
	struct pst_spool *spool;
	unsigned long long bytes = 0;
	struct pst_err err;
	struct stat st;
	size_t i, held = 0;
	int rc = 0;

	if (stat(cfg->spool_dir, &st) == -1 && errno == ENOENT) {
		/* Nothing was ever queued: an empty queue, not an error. */
		spool = NULL;
	} else {
		opts.problem = on_problem;
		opts.problem_arg = &q;
		if ((spool = pst_spool_open(cfg->spool_dir, &opts,
		    &err)) == NULL) {
			fprintf(stderr, "%s: cannot open the spool: %s\n",
			    prog, err.text);
			return -1;
		}
		if (pst_spool_scan(spool, collect, &q, &err) == -1) {
			if (q.scan_err != 0)
				fprintf(stderr, "%s: reading the queue: %s\n",
				    prog, strerror(q.scan_err));
			else
				fprintf(stderr, "%s: reading the queue: %s\n",
				    prog, err.text);
			rc = -1;
			goto done;
		}
	}
	if (q.nenvs > 0)
		qsort(q.envs, q.nenvs, sizeof(*q.envs), by_id);
	if (json) {
		fputc('[', stdout);
		for (i = 0; i < q.nenvs; i++) {
			if (i > 0)
				fputc(',', stdout);
			print_env_json(stdout, q.envs[i]);
		}
		fputs("]\n", stdout);
		goto done;
	}
	if (q.nenvs == 0) {
		printf("Mail queue is empty\n");
		goto done;
	}
	printf("%-16s  %-19s  %10s  %s\n", "ID", "ARRIVAL", "SIZE",
	    "SENDER / RECIPIENTS");
	for (i = 0; i < q.nenvs; i++) {
		print_env_text(stdout, q.envs[i]);
		bytes += q.envs[i]->size;
		held += q.envs[i]->held;
	}
	printf("-- %zu message%s, %llu bytes", q.nenvs,
	    q.nenvs == 1 ? "" : "s", bytes);
	if (held > 0)
		printf(", %zu held", held);
	printf("\n");
done:
	for (i = 0; i < q.nenvs; i++)
		pst_spool_env_free(q.envs[i]);
	free(q.envs);
	pst_spool_close(spool);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "%s: writing the listing: %s\n", prog,
		    strerror(errno));
		rc = -1;
	}
	return rc;
}

/*
 * show
 */

/*
 * Reads the header section of the message's body (at most
 * SHOW_HEADER_BYTES and SHOW_HEADER_LINES lines) into a new array of
 * lines.  Returns 0, 1 when there was more than that, -1 with 'why'.
 */
static int
read_headers(struct pst_spool *spool, const struct pst_spool_env *env,
    char ***lines, size_t *nlines, char *why, size_t whylen)
{
	struct pst_err err;
	char *buf, *p, *end, *eol, **v;
	uint64_t off;
	size_t got = 0, want;
	ssize_t n;
	int fd, rc = 1;

	*lines = NULL;
	*nlines = 0;
	if ((fd = pst_spool_body_open(spool, env, &off, &err)) == -1) {
		snprintf(why, whylen, "%s", err.text);
		return -1;
	}
	if ((buf = malloc(SHOW_HEADER_BYTES + 1)) == NULL ||
	    (v = calloc(SHOW_HEADER_LINES, sizeof(*v))) == NULL) {
		free(buf);
		close(fd);
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		return -1;
	}
	want = env->size < SHOW_HEADER_BYTES ? (size_t)env->size :
	    SHOW_HEADER_BYTES;
	while (got < want) {
		n = pread(fd, buf + got, want - got, (off_t)(off + got));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(why, whylen, "reading the body: %s",
			    strerror(errno));
			free(buf);
			free(v);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	for (p = buf, end = buf + got; p < end; p = eol + 2) {
		if ((eol = strstr(p, "\r\n")) == NULL)
			break;
		if (eol == p) {
			rc = 0;	/* the empty line: the section is whole */
			break;
		}
		if (*nlines == SHOW_HEADER_LINES)
			break;
		*eol = '\0';
		if ((v[*nlines] = strdup(p)) == NULL)
			break;
		(*nlines)++;
	}
	if (p >= end && got < SHOW_HEADER_BYTES)
		rc = 0;	/* a message without a body */
	free(buf);
	*lines = v;
	return rc;
}

static int
cmd_show(struct pst_spool *spool, const char *id, bool json,
    const char *prog)
{
	const struct pst_spool_rcpt *r;
	struct pst_spool_env *env;
	struct pst_err err;
	char when[32], why[PST_ERR_TEXT_MAX], buf[64], **lines;
	size_t i, nlines;
	int more;

	if ((env = pst_spool_read(spool, id, &err)) == NULL) {
		if (err.sys_errno == ENOENT)
			fprintf(stderr, "%s: no message %s in the queue\n",
			    prog, id);
		else
			fprintf(stderr, "%s: message %s: %s\n", prog, id,
			    err.text);
		return 1;
	}
	more = read_headers(spool, env, &lines, &nlines, why, sizeof(why));
	if (json) {
		fputc('{', stdout);
		print_json_fields(stdout, env);
		fputs(",\"headers\":", stdout);
		if (more == -1) {
			fputs("null,\"headers_error\":", stdout);
			json_string(stdout, why);
		} else {
			fputc('[', stdout);
			for (i = 0; i < nlines; i++) {
				if (i > 0)
					fputc(',', stdout);
				json_string(stdout, lines[i]);
			}
			fprintf(stdout, "],\"headers_truncated\":%s",
			    more == 1 ? "true" : "false");
		}
		fputs("}\n", stdout);
	} else {
		format_local(when, sizeof(when), env->arrival);
		printf("id:           %s\narrival:      %s\n"
		    "size:         %llu bytes\n", env->id, when,
		    (unsigned long long)env->size);
		printf("origin:       ");
		put_text(stdout, env->origin != NULL ? env->origin : "-");
		printf("\nsender:       <");
		put_text(stdout, env->sender);
		printf(">\nstate:        %s\nattempts:     %u\n",
		    env->held ? "held" : "queued", env->attempts);
		if (env->next_attempt != 0) {
			format_local(when, sizeof(when), env->next_attempt);
			printf("next attempt: %s\n", when);
		}
		if (env->last_error != NULL || env->last_code != 0) {
			printf("last error:   ");
			if (env->last_code != 0)
				printf("%d ", env->last_code);
			if (env->last_esc[0] != '\0')
				printf("%s ", env->last_esc);
			put_text(stdout, env->last_error);
			printf("\n");
		}
		if (env->flags != 0)
			printf("flags:        %s%s\n",
			    env->flags & PST_SPOOL_F_8BITMIME ?
			    "8BITMIME " : "", env->flags &
			    PST_SPOOL_F_SMTPUTF8 ? "SMTPUTF8" : "");
		if (env->ret != PST_SPOOL_RET_UNSET)
			printf("ret:          %s\n",
			    env->ret == PST_SPOOL_RET_FULL ? "full" : "hdrs");
		if (env->envid != NULL) {
			printf("envid:        ");
			put_text(stdout, env->envid);
			printf("\n");
		}
		printf("recipients:\n");
		for (i = 0; i < env->nrcpts; i++) {
			r = &env->rcpts[i];
			printf("  ");
			put_text(stdout, r->addr);
			printf("  %s", pst_spool_rcpt_state_name(r->state));
			if (r->code != 0)
				printf("  %d", r->code);
			if (r->esc[0] != '\0')
				printf(" %s", r->esc);
			if (r->error != NULL) {
				printf(" ");
				put_text(stdout, r->error);
			}
			if (r->notify != 0)
				printf("  (notify %s)", rcpt_notify(r->notify,
				    buf, sizeof(buf)));
			printf("\n");
		}
		if (more == -1) {
			printf("headers:      (unreadable: ");
			put_text(stdout, why);
			printf(")\n");
		} else {
			printf("headers:\n");
			for (i = 0; i < nlines; i++) {
				printf("  ");
				put_text(stdout, lines[i]);
				printf("\n");
			}
			if (more == 1)
				printf("  (more not shown)\n");
		}
	}
	for (i = 0; i < nlines; i++)
		free(lines[i]);
	free(lines);
	pst_spool_env_free(env);
	return 0;
}

/*
 * delete, hold, release
 */

/*
 * Asks the daemon to make the change, so that the spool keeps one
 * writer.  Returns 0 with 'err' clear, or -1 with 'err' as a local change
 * would have set it (sys_errno ENOENT, EWOULDBLOCK, or the daemon's
 * words).
 */
static int
change_by_daemon(const char *spool_dir, const char *action, const char *id,
    struct pst_err *err)
{
	char request[64], why[256], *reply = NULL;
	size_t len;

	pst_err_clear(err);
	snprintf(request, sizeof(request), "%s %s", action, id);
	if (control_request(spool_dir, request, &reply, why,
	    sizeof(why)) == -1) {
		pst_err_set(err, PST_TEMP, PST_STAGE_SPOOL, "%s", why);
		return -1;
	}
	len = strcspn(reply, "\n");
	reply[len] = '\0';
	if (strcmp(reply, "ok") == 0) {
		free(reply);
		return 0;
	}
	pst_err_set(err, PST_TEMP, PST_STAGE_SPOOL, "posternd: %s",
	    strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply);
	if (strcmp(reply, "error missing") == 0)
		err->sys_errno = ENOENT;
	else if (strcmp(reply, "error locked") == 0)
		err->sys_errno = EWOULDBLOCK;
	free(reply);
	return -1;
}

/* The spool under the daemon lock, for a change; NULL when taken. */
static struct pst_spool *
open_writer(const char *spool_dir)
{
	struct pst_spool_opts opts = { .flags = PST_SPOOL_DAEMON,
	    .file_mode = CONFIG_SPOOL_FILE_MODE,
	    .dir_mode = CONFIG_SPOOL_DIR_MODE };
	struct pst_err err;

	return pst_spool_open(spool_dir, &opts, &err);
}

static int
cmd_change(struct pst_spool *spool, const char *spool_dir, const char *action,
    const char *id, bool json, const char *prog)
{
	struct timespec pause = { 0, LOCK_RETRY_MS * 1000000L };
	struct pst_err err;
	const char *done;
	struct pst_spool *writer = NULL;
	unsigned waited = 0;
	pid_t pid;
	int rc, daemon;

	done = strcmp(action, "delete") == 0 ? "deleted" :
	    strcmp(action, "hold") == 0 ? "held" : "released";
	/*
	 * Without a daemon the tool writes the log itself, under the daemon
	 * lock; a daemon that starts first is asked instead.
	 */
	if ((daemon = pst_spool_daemon(spool, &pid, &err)) != 1 &&
	    (writer = open_writer(spool_dir)) == NULL)
		daemon = 1;
	for (;;) {
		if (daemon == 1)
			rc = change_by_daemon(spool_dir, action, id, &err);
		else if (strcmp(action, "delete") == 0) {
			rc = pst_spool_remove(writer, id, 0, &err);
		} else {
			rc = pst_spool_hold(writer, id,
			    strcmp(action, "hold") == 0, 0, &err);
		}
		if (rc == 0 || err.sys_errno != EWOULDBLOCK ||
		    waited >= QUEUE_LOCK_WAIT_MS)
			break;
		nanosleep(&pause, NULL);
		waited += LOCK_RETRY_MS;
	}
	if (rc == -1) {
		if (err.sys_errno == ENOENT)
			fprintf(stderr, "%s: no message %s in the queue\n",
			    prog, id);
		else if (err.sys_errno == EWOULDBLOCK)
			fprintf(stderr, "%s: message %s is locked (posternd "
			    "is delivering it); waited %d s, try again "
			    "later\n", prog, id, QUEUE_LOCK_WAIT_MS / 1000);
		else
			fprintf(stderr, "%s: %s %s: %s\n", prog, action, id,
			    err.text);
		pst_spool_close(writer);
		return 1;
	}
	pst_spool_close(writer);
	if (json)
		printf("{\"id\":\"%s\",\"result\":\"%s\"}\n", id, done);
	else
		printf("%s: %s\n", id, done);
	return 0;
}

int
queue_command(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char prog[] = "postern queue";
	const char *path = config_default_path(), *action, *id = NULL;
	bool explicit = getenv("POSTERN_CONFIG") != NULL, json = false;
	bool missing;
	struct pst_spool *spool;
	struct config *cfg;
	int ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:jh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			explicit = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout, 0);
		default:
			usage(stderr, 2);
		}
	}
	if (optind >= argc)
		usage(stderr, 2);
	action = argv[optind++];
	if (strcmp(action, "list") == 0) {
		if (optind != argc)
			usage(stderr, 2);
	} else if (strcmp(action, "show") == 0 ||
	    strcmp(action, "delete") == 0 || strcmp(action, "hold") == 0 ||
	    strcmp(action, "release") == 0) {
		if (optind + 1 != argc)
			usage(stderr, 2);
		id = argv[optind];
		if (!pst_spool_id_valid(id)) {
			fprintf(stderr, "%s: \"", prog);
			put_text(stderr, id);
			fprintf(stderr, "\" is not a queue id (16 lower-case "
			    "hex digits, as \"postern queue list\" shows)\n");
			return 1;
		}
	} else {
		fprintf(stderr, "%s: unknown action \"", prog);
		put_text(stderr, action);
		fprintf(stderr, "\"\n");
		usage(stderr, 2);
	}
	if (config_load_report(path, explicit, &cfg) == -1)
		return 1;
	if (id == NULL) {
		rc = queue_list(cfg, json, prog) == 0 ? 0 : 1;
		config_unref(cfg);
		return rc;
	}
	if ((spool = open_spool(cfg, prog, &missing)) == NULL) {
		if (missing)
			fprintf(stderr, "%s: no message %s in the queue (the "
			    "spool %s does not exist)\n", prog, id,
			    cfg->spool_dir);
		config_unref(cfg);
		return 1;
	}
	if (strcmp(action, "show") == 0)
		rc = cmd_show(spool, id, json, prog);
	else
		rc = cmd_change(spool, cfg->spool_dir, action, id, json, prog);
	pst_spool_close(spool);
	config_unref(cfg);
	if (fflush(stdout) == EOF)
		rc = 1;
	return rc;
}
