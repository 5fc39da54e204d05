/*
 * env.c: envelopes in memory and as text records.
 *
 * The record format is in spool.h.  The encoder checks every value before
 * it writes a byte, and the decoder accepts exactly what the encoder can
 * produce (one canonical form per value), so an envelope read back is the
 * envelope written and anything else, torn or edited by hand, is refused
 * with the line and the reason.  Values are bounded and their control
 * characters are refused rather than escaped: a CR or LF in an address
 * is a bug upstream, not something to keep.  Texts from peers (error
 * replies) are the exception: the result setters sanitise them first.
 *
 * This file does no I/O.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/err.h"
#include "spool/spool.h"
#include "spool/spool_int.h"

#define ENV_MAGIC	"postern-envelope"

struct out {
	char		*p;
	size_t		 len;
	size_t		 cap;
};

enum key {
	K_ID, K_ARRIVAL, K_SIZE, K_ORIGIN, K_BODY, K_SMTPUTF8, K_RET, K_ENVID,
	K_SENDER, K_ATTEMPTS, K_NEXT, K_LAST_CODE, K_LAST_ESC, K_LAST_ERROR,
	K_HELD, K_RCPT, K_R_STATE, K_R_NOTIFY, K_R_ORCPT, K_R_CODE, K_R_ESC,
	K_R_ERROR, K_UTF8_NEEDED, K__COUNT
};

#define KF_RCPT		0x01	/* describes the last "rcpt" */
#define KF_REQUIRED	0x02	/* must appear (once per rcpt for KF_RCPT) */

static const struct {
	const char	*name;
	unsigned	 flags;
} keys[K__COUNT] = {
	[K_ID] = { "id", KF_REQUIRED },
	[K_ARRIVAL] = { "arrival", KF_REQUIRED },
	[K_SIZE] = { "size", KF_REQUIRED },
	[K_ORIGIN] = { "origin", 0 },
	[K_BODY] = { "body", 0 },
	[K_SMTPUTF8] = { "smtputf8", 0 },
	[K_RET] = { "ret", 0 },
	[K_ENVID] = { "envid", 0 },
	[K_SENDER] = { "sender", KF_REQUIRED },
	[K_ATTEMPTS] = { "attempts", 0 },
	[K_NEXT] = { "next-attempt", 0 },
	[K_LAST_CODE] = { "last-code", 0 },
	[K_LAST_ESC] = { "last-esc", 0 },
	[K_LAST_ERROR] = { "last-error", 0 },
	[K_HELD] = { "held", 0 },
	[K_RCPT] = { "rcpt", KF_REQUIRED },
	[K_R_STATE] = { "rcpt.state", KF_RCPT | KF_REQUIRED },
	[K_R_NOTIFY] = { "rcpt.notify", KF_RCPT },
	[K_R_ORCPT] = { "rcpt.orcpt", KF_RCPT },
	[K_R_CODE] = { "rcpt.code", KF_RCPT },
	[K_R_ESC] = { "rcpt.esc", KF_RCPT },
	[K_R_ERROR] = { "rcpt.error", KF_RCPT },
	/* An "x-" key: older readers skip it (doc/spool.md). */
	[K_UTF8_NEEDED] = { "x-smtputf8-needed", 0 },
};

static const char *const state_names[PST_SPOOL_RCPT__COUNT] = {
	[PST_SPOOL_RCPT_PENDING] = "pending",
	[PST_SPOOL_RCPT_DEFERRED] = "deferred",
	[PST_SPOOL_RCPT_DELIVERED] = "delivered",
	[PST_SPOOL_RCPT_FAILED] = "failed",
};

static const struct {
	const char	*name;
	unsigned	 bit;
} notify_names[] = {
	{ "never", PST_SPOOL_NOTIFY_NEVER },
	{ "success", PST_SPOOL_NOTIFY_SUCCESS },
	{ "failure", PST_SPOOL_NOTIFY_FAILURE },
	{ "delay", PST_SPOOL_NOTIFY_DELAY },
};

#define NOTIFY_ALL	(PST_SPOOL_NOTIFY_NEVER | PST_SPOOL_NOTIFY_SUCCESS | \
			 PST_SPOOL_NOTIFY_FAILURE | PST_SPOOL_NOTIFY_DELAY)
#define FLAGS_ALL	(PST_SPOOL_F_8BITMIME | PST_SPOOL_F_SMTPUTF8 | \
			 PST_SPOOL_F_UTF8_CHECKED | PST_SPOOL_F_UTF8_NEEDED)

static int	 value_check(const char *, const char *, struct pst_err *);
static int	 set_string(char **, const char *, const char *, bool,
		    struct pst_err *);
static char	*sanitised_copy(const char *);
static bool	 esc_valid(const char *);
static bool	 notify_valid(unsigned);
static bool	 code_valid(int);
static int	 out_grow(struct out *, size_t);
static int	 out_raw(struct out *, const char *, size_t);
static int	 out_kv(struct out *, const char *, const char *,
		    struct pst_err *);
static int	 out_num(struct out *, const char *, uint64_t);
static int	 env_check(const struct pst_spool_env *, struct pst_err *);
static int	 rcpt_grow(struct pst_spool_env *);
static int	 decode_end(const char *, size_t, size_t *,
		    struct pst_err *);
static int	 unescape(const char *, size_t, char *, size_t *);
static int	 parse_u64(const char *, uint64_t, uint64_t *);
static int	 decode_line(struct pst_spool_env *, enum key, const char *,
		    size_t, struct pst_err *);
static enum key	 key_lookup(const char *, size_t, bool *);

/*
 * Values and setters.
 */

/* A stored value: bounded, no control characters. */
static int
value_check(const char *what, const char *v, struct pst_err *err)
{
	const unsigned char *p;
	size_t n = 0;

	for (p = (const unsigned char *)v; *p != '\0'; p++, n++) {
		if (*p < 0x20 || *p == 0x7f)
			return spool_bad(err, "%s holds control character "
			    "0x%02x", what, *p);
		if (n >= PST_SPOOL_VALUE_MAX)
			return spool_bad(err, "%s is longer than %d bytes",
			    what, PST_SPOOL_VALUE_MAX);
	}
	return 0;
}

static int
set_string(char **slot, const char *what, const char *v, bool nullable,
    struct pst_err *err)
{
	char *copy = NULL;

	if (v == NULL) {
		if (!nullable)
			return spool_bad(err, "%s is missing", what);
	} else {
		if (value_check(what, v, err) == -1)
			return -1;
		if ((copy = strdup(v)) == NULL)
			return spool_sys(err, ENOMEM, "envelope");
	}
	free(*slot);
	*slot = copy;
	return 0;
}

/* Untrusted text, e.g. a peer's reply: cut and defused, never refused. */
static char *
sanitised_copy(const char *text)
{
	size_t n, i;
	char *s;

	n = strnlen(text, PST_SPOOL_VALUE_MAX);
	if ((s = malloc(n + 1)) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)text[i];

		s[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	s[n] = '\0';
	return s;
}

/* RFC 3463 §2: class "." subject "." detail, 1-3 digits each. */
static bool
esc_valid(const char *s)
{
	int part, digits;

	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return false;
	if (s[1] != '.')
		return false;
	s += 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; *s >= '0' && *s <= '9'; s++)
			digits++;
		if (digits < 1 || digits > 3)
			return false;
		if (part == 0 && *s++ != '.')
			return false;
	}
	return *s == '\0';
}

/* RFC 3461 §4.1: NEVER, or any combination of the other three. */
static bool
notify_valid(unsigned notify)
{
	if ((notify & ~NOTIFY_ALL) != 0)
		return false;
	return !((notify & PST_SPOOL_NOTIFY_NEVER) &&
	    notify != PST_SPOOL_NOTIFY_NEVER);
}

static bool
code_valid(int code)
{
	return code >= 200 && code <= 599;
}

struct pst_spool_env *
pst_spool_env_new(struct pst_err *err)
{
	struct pst_spool_env *env;

	if ((env = calloc(1, sizeof(*env))) == NULL)
		spool_sys(err, ENOMEM, "envelope");
	return env;
}

void
pst_spool_env_free(struct pst_spool_env *env)
{
	size_t i;

	if (env == NULL)
		return;
	for (i = 0; i < env->nrcpts; i++) {
		free(env->rcpts[i].addr);
		free(env->rcpts[i].orcpt);
		free(env->rcpts[i].error);
	}
	free(env->rcpts);
	free(env->origin);
	free(env->envid);
	free(env->sender);
	free(env->last_error);
	free(env);
}

int
pst_spool_env_set_sender(struct pst_spool_env *env, const char *value,
    struct pst_err *err)
{
	return set_string(&env->sender, "sender", value, false, err);
}

int
pst_spool_env_set_envid(struct pst_spool_env *env, const char *value,
    struct pst_err *err)
{
	return set_string(&env->envid, "envid", value, true, err);
}

int
pst_spool_env_set_origin(struct pst_spool_env *env, const char *value,
    struct pst_err *err)
{
	return set_string(&env->origin, "origin", value, true, err);
}

static int
rcpt_grow(struct pst_spool_env *env)
{
	struct pst_spool_rcpt *r;
	size_t cap;

	if (env->nrcpts < env->rcpts_cap)
		return 0;
	cap = env->rcpts_cap == 0 ? 4 : env->rcpts_cap * 2;
	if (cap > PST_SPOOL_RCPT_MAX)
		cap = PST_SPOOL_RCPT_MAX;
	if ((r = reallocarray(env->rcpts, cap, sizeof(*r))) == NULL)
		return -1;
	env->rcpts = r;
	env->rcpts_cap = cap;
	return 0;
}

int
pst_spool_env_add_rcpt(struct pst_spool_env *env, const char *addr,
    unsigned notify, const char *orcpt, struct pst_err *err)
{
	struct pst_spool_rcpt *r;
	char *a = NULL, *o = NULL;

	if (env->nrcpts >= PST_SPOOL_RCPT_MAX)
		return spool_bad(err, "more than %d recipients",
		    PST_SPOOL_RCPT_MAX);
	if (addr == NULL || addr[0] == '\0')
		return spool_bad(err, "empty recipient address");
	if (!notify_valid(notify))
		return spool_bad(err, "invalid NOTIFY set 0x%x", notify);
	if (set_string(&a, "recipient", addr, false, err) == -1 ||
	    set_string(&o, "ORCPT", orcpt, true, err) == -1 ||
	    rcpt_grow(env) == -1) {
		free(a);
		free(o);
		if (err->cls != PST_OK)
			return -1;
		return spool_sys(err, ENOMEM, "envelope");
	}
	r = &env->rcpts[env->nrcpts++];
	memset(r, 0, sizeof(*r));
	r->addr = a;
	r->orcpt = o;
	r->notify = notify;
	r->state = PST_SPOOL_RCPT_PENDING;
	return 0;
}

int
pst_spool_env_set_result(struct pst_spool_env *env, size_t i,
    enum pst_spool_rcpt_state state, int code, const char *esc,
    const char *text, struct pst_err *err)
{
	struct pst_spool_rcpt *r;
	char *t = NULL;

	if (i >= env->nrcpts)
		return spool_bad(err, "no recipient %zu", i);
	if ((unsigned)state >= PST_SPOOL_RCPT__COUNT)
		return spool_bad(err, "invalid recipient state %d", state);
	if (text != NULL && (t = sanitised_copy(text)) == NULL)
		return spool_sys(err, ENOMEM, "envelope");
	r = &env->rcpts[i];
	r->state = state;
	r->code = code_valid(code) ? code : 0;
	if (esc != NULL && esc_valid(esc))
		snprintf(r->esc, sizeof(r->esc), "%s", esc);
	else
		r->esc[0] = '\0';
	free(r->error);
	r->error = t;
	return 0;
}

int
pst_spool_env_set_error(struct pst_spool_env *env, int code, const char *esc,
    const char *text, struct pst_err *err)
{
	char *t = NULL;

	if (text != NULL && (t = sanitised_copy(text)) == NULL)
		return spool_sys(err, ENOMEM, "envelope");
	env->last_code = code_valid(code) ? code : 0;
	if (esc != NULL && esc_valid(esc))
		snprintf(env->last_esc, sizeof(env->last_esc), "%s", esc);
	else
		env->last_esc[0] = '\0';
	free(env->last_error);
	env->last_error = t;
	return 0;
}

size_t
pst_spool_env_pending(const struct pst_spool_env *env)
{
	size_t i, n = 0;

	for (i = 0; i < env->nrcpts; i++)
		if (env->rcpts[i].state == PST_SPOOL_RCPT_PENDING ||
		    env->rcpts[i].state == PST_SPOOL_RCPT_DEFERRED)
			n++;
	return n;
}

bool
pst_spool_env_utf8_addrs(const struct pst_spool_env *env)
{
	size_t i;

	if (env->sender != NULL && pst_str_8bit(env->sender))
		return true;
	for (i = 0; i < env->nrcpts; i++)
		if (pst_str_8bit(env->rcpts[i].addr))
			return true;
	return false;
}

const char *
pst_spool_rcpt_state_name(enum pst_spool_rcpt_state state)
{
	if ((unsigned)state >= PST_SPOOL_RCPT__COUNT)
		return "unknown";
	return state_names[state];
}

/*
 * Encoding.
 */

static int
out_grow(struct out *o, size_t more)
{
	size_t cap;
	char *p;

	if (o->len + more <= o->cap)
		return 0;
	if (o->len + more > PST_SPOOL_ENV_MAX)
		return -1;
	for (cap = o->cap == 0 ? 1024 : o->cap; cap < o->len + more;)
		cap *= 2;
	if ((p = realloc(o->p, cap)) == NULL)
		return -1;
	o->p = p;
	o->cap = cap;
	return 0;
}

static int
out_raw(struct out *o, const char *s, size_t n)
{
	if (out_grow(o, n) == -1)
		return -1;
	/* The first write is the non-empty header line: 'o->p' is set. */
	/* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker) */
	memcpy(o->p + o->len, s, n);
	o->len += n;
	return 0;
}

/* "key value\n" with the value checked and escaped; "key\n" if empty. */
static int
out_kv(struct out *o, const char *key, const char *value,
    struct pst_err *err)
{
	const unsigned char *p;
	size_t klen = strlen(key);
	char *w;

	if (value_check(key, value, err) == -1)
		return -1;
	/* Worst case: every byte escaped, plus key, space and LF. */
	if (out_grow(o, klen + 2 + 3 * strlen(value)) == -1)
		goto toobig;
	w = o->p + o->len;
	/*
	 * 'o->p' is set (see out_raw()) and is a record being built, not a
	 * string: no NUL is due.
	 */
	/* NOLINTNEXTLINE */
	memcpy(w, key, klen);
	w += klen;
	if (value[0] != '\0')
		*w++ = ' ';
	for (p = (const unsigned char *)value; *p != '\0'; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '%') {
			*w++ = (char)*p;
		} else {
			*w++ = '%';
			*w++ = pst_hex_digit(*p >> 4, true);
			*w++ = pst_hex_digit(*p, true);
		}
	}
	*w++ = '\n';
	o->len = (size_t)(w - o->p);
	return 0;
toobig:
	return spool_bad(err, "envelope larger than %u bytes",
	    PST_SPOOL_ENV_MAX);
}

static int
out_num(struct out *o, const char *key, uint64_t v)
{
	char line[64];
	int n;

	n = snprintf(line, sizeof(line), "%s %" PRIu64 "\n", key, v);
	return out_raw(o, line, (size_t)n);
}

/* Everything the decoder would check, before a byte is written. */
static int
env_check(const struct pst_spool_env *env, struct pst_err *err)
{
	const struct pst_spool_rcpt *r;
	size_t i;

	if (!pst_spool_id_valid(env->id))
		return spool_bad(err, "envelope has no valid id");
	if (env->sender == NULL)
		return spool_bad(err, "envelope %s has no sender", env->id);
	if (env->nrcpts == 0)
		return spool_bad(err, "envelope %s has no recipient", env->id);
	if (env->nrcpts > PST_SPOOL_RCPT_MAX)
		return spool_bad(err, "envelope %s has more than %d "
		    "recipients", env->id, PST_SPOOL_RCPT_MAX);
	if (env->arrival < 0 || env->next_attempt < 0)
		return spool_bad(err, "envelope %s has a negative time",
		    env->id);
	if ((env->flags & ~FLAGS_ALL) != 0 ||
	    ((env->flags & PST_SPOOL_F_UTF8_NEEDED) &&
	    !(env->flags & PST_SPOOL_F_UTF8_CHECKED)) ||
	    (unsigned)env->ret > PST_SPOOL_RET_HDRS)
		return spool_bad(err, "envelope %s has invalid flags",
		    env->id);
	if (env->last_code != 0 && !code_valid(env->last_code))
		return spool_bad(err, "envelope %s: bad last-code %d",
		    env->id, env->last_code);
	if (env->last_esc[0] != '\0' && !esc_valid(env->last_esc))
		return spool_bad(err, "envelope %s: bad last-esc", env->id);
	for (i = 0; i < env->nrcpts; i++) {
		r = &env->rcpts[i];
		if (r->addr == NULL || r->addr[0] == '\0')
			return spool_bad(err, "envelope %s: recipient %zu "
			    "has no address", env->id, i);
		if ((unsigned)r->state >= PST_SPOOL_RCPT__COUNT)
			return spool_bad(err, "envelope %s: recipient %zu "
			    "has invalid state %d", env->id, i, r->state);
		if (!notify_valid(r->notify))
			return spool_bad(err, "envelope %s: recipient %zu "
			    "has invalid NOTIFY 0x%x", env->id, i, r->notify);
		if (r->code != 0 && !code_valid(r->code))
			return spool_bad(err, "envelope %s: recipient %zu "
			    "has bad code %d", env->id, i, r->code);
		if (r->esc[0] != '\0' && !esc_valid(r->esc))
			return spool_bad(err, "envelope %s: recipient %zu "
			    "has bad enhanced code", env->id, i);
	}
	return 0;
}

int
pst_spool_env_encode(const struct pst_spool_env *env, char **out,
    size_t *outlen, struct pst_err *err)
{
	const struct pst_spool_rcpt *r;
	struct out o = { NULL, 0, 0 };
	char line[128], list[64];
	size_t i, j;
	int n, rc = 0;

	if (env_check(env, err) == -1)
		return -1;
	n = snprintf(line, sizeof(line), "%s %d\n", ENV_MAGIC,
	    PST_SPOOL_ENV_VERSION);
	rc |= out_raw(&o, line, (size_t)n);
	rc |= out_kv(&o, "id", env->id, err);
	rc |= out_num(&o, "arrival", (uint64_t)env->arrival);
	rc |= out_num(&o, "size", env->size);
	if (env->origin != NULL)
		rc |= out_kv(&o, "origin", env->origin, err);
	rc |= out_kv(&o, "body", (env->flags & PST_SPOOL_F_8BITMIME) ?
	    "8bitmime" : "7bit", err);
	rc |= out_kv(&o, "smtputf8", (env->flags & PST_SPOOL_F_SMTPUTF8) ?
	    "yes" : "no", err);
	if (env->flags & PST_SPOOL_F_UTF8_CHECKED)
		rc |= out_kv(&o, "x-smtputf8-needed",
		    (env->flags & PST_SPOOL_F_UTF8_NEEDED) ? "yes" : "no", err);
	if (env->ret != PST_SPOOL_RET_UNSET)
		rc |= out_kv(&o, "ret", env->ret == PST_SPOOL_RET_FULL ?
		    "full" : "hdrs", err);
	if (env->envid != NULL)
		rc |= out_kv(&o, "envid", env->envid, err);
	rc |= out_kv(&o, "sender", env->sender, err);
	rc |= out_num(&o, "attempts", env->attempts);
	rc |= out_num(&o, "next-attempt", (uint64_t)env->next_attempt);
	if (env->last_code != 0)
		rc |= out_num(&o, "last-code", (uint64_t)env->last_code);
	if (env->last_esc[0] != '\0')
		rc |= out_kv(&o, "last-esc", env->last_esc, err);
	if (env->last_error != NULL)
		rc |= out_kv(&o, "last-error", env->last_error, err);
	rc |= out_kv(&o, "held", env->held ? "yes" : "no", err);
	for (i = 0; i < env->nrcpts && rc == 0; i++) {
		r = &env->rcpts[i];
		rc |= out_kv(&o, "rcpt", r->addr, err);
		rc |= out_kv(&o, "rcpt.state", state_names[r->state], err);
		if (r->notify != 0) {
			list[0] = '\0';
			for (j = 0; j < sizeof(notify_names) /
			    sizeof(notify_names[0]); j++) {
				if (!(r->notify & notify_names[j].bit))
					continue;
				if (list[0] != '\0')
					strcat(list, ",");
				strcat(list, notify_names[j].name);
			}
			rc |= out_kv(&o, "rcpt.notify", list, err);
		}
		if (r->orcpt != NULL)
			rc |= out_kv(&o, "rcpt.orcpt", r->orcpt, err);
		if (r->code != 0)
			rc |= out_num(&o, "rcpt.code", (uint64_t)r->code);
		if (r->esc[0] != '\0')
			rc |= out_kv(&o, "rcpt.esc", r->esc, err);
		if (r->error != NULL)
			rc |= out_kv(&o, "rcpt.error", r->error, err);
	}
	if (rc == 0) {
		n = snprintf(line, sizeof(line), "end %zu %016" PRIx64 "\n",
		    o.len, pst_fnv1a64(o.p, o.len));
		rc = out_raw(&o, line, (size_t)n);
	}
	if (rc != 0) {
		free(o.p);
		/* out_kv() filled 'err' for a bad value; else it is size. */
		if (err->cls == PST_OK)
			spool_bad(err, "envelope %s larger than %u bytes or "
			    "out of memory", env->id, PST_SPOOL_ENV_MAX);
		return -1;
	}
	*out = o.p;
	*outlen = o.len;
	return 0;
}

/*
 * Decoding.
 */

/* Checks the end line; '*body_len' gets the length of what it covers. */
static int
decode_end(const char *buf, size_t len, size_t *body_len,
    struct pst_err *err)
{
	const char *line, *p;
	char tail[80];
	uint64_t want_len, want_sum;
	size_t n;
	int digit;

	if (len == 0 || buf[len - 1] != '\n')
		return spool_bad(err, "torn envelope: does not end with a "
		    "complete line");
	for (p = buf + len - 1; p > buf && p[-1] != '\n'; p--)
		continue;
	line = p;
	n = (size_t)(buf + len - 1 - line);
	if (n < 4 || memcmp(line, "end ", 4) != 0)
		return spool_bad(err, "torn envelope: no end line");
	if (n >= sizeof(tail))
		return spool_bad(err, "torn envelope: bad end line");
	memcpy(tail, line, n);
	tail[n] = '\0';
	p = strchr(tail + 4, ' ');
	if (p == NULL || strlen(p + 1) != 16)
		return spool_bad(err, "torn envelope: bad end line");
	tail[p - tail] = '\0';
	if (parse_u64(tail + 4, PST_SPOOL_ENV_MAX, &want_len) == -1)
		return spool_bad(err, "torn envelope: bad end line");
	for (p++, want_sum = 0; *p != '\0'; p++) {
		if ((digit = pst_hex_value((unsigned char)*p,
		    PST_HEX_LOWER)) == -1)
			return spool_bad(err, "torn envelope: bad end line");
		want_sum = want_sum << 4 | (uint64_t)digit;
	}
	if (want_len != (uint64_t)(line - buf))
		return spool_bad(err, "torn envelope: %zu bytes before the "
		    "end line, it says %" PRIu64, (size_t)(line - buf),
		    want_len);
	if (pst_fnv1a64(buf, (size_t)want_len) != want_sum)
		return spool_bad(err, "torn envelope: checksum mismatch");
	*body_len = (size_t)want_len;
	return 0;
}

/* %XX decoding into 'dst' (PST_SPOOL_VALUE_MAX + 1 bytes). */
static int
unescape(const char *src, size_t n, char *dst, size_t *dlen)
{
	size_t i, o = 0;
	int hi, lo;
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)src[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			/* Canonical: upper-case digits only. */
			hi = pst_hex_value((unsigned char)src[i + 1],
			    PST_HEX_UPPER);
			lo = pst_hex_value((unsigned char)src[i + 2],
			    PST_HEX_UPPER);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			/* Canonical: only what the encoder escapes. */
			if (c >= 0x20 && c < 0x7f && c != '%')
				return -1;
			i += 2;
		}
		if (c < 0x20 || c == 0x7f)
			return -1;
		if (o >= PST_SPOOL_VALUE_MAX)
			return -1;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	*dlen = o;
	return 0;
}

/* Decimal, no sign, no leading zero, at most 'max'. */
static int
parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0' || (s[0] == '0' && s[1] != '\0'))
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

static enum key
key_lookup(const char *k, size_t n, bool *optional)
{
	int i;

	*optional = (n > 2 && memcmp(k, "x-", 2) == 0) ||
	    (n > 7 && memcmp(k, "rcpt.x-", 7) == 0);
	for (i = 0; i < K__COUNT; i++)
		if (strlen(keys[i].name) == n &&
		    memcmp(keys[i].name, k, n) == 0)
			return (enum key)i;
	return K__COUNT;
}

/* One known key with its decoded value 'v' of 'n' bytes. */
static int
decode_line(struct pst_spool_env *env, enum key k, const char *v, size_t n,
    struct pst_err *err)
{
	struct pst_spool_rcpt *r = NULL;
	uint64_t u;
	size_t i;
	char *s, *tok, *save;

	if (keys[k].flags & KF_RCPT)
		r = &env->rcpts[env->nrcpts - 1];
	switch (k) {
	case K_ID:
		if (!pst_spool_id_valid(v))
			return -1;
		memcpy(env->id, v, PST_SPOOL_ID_LEN + 1);
		return 0;
	case K_ARRIVAL:
	case K_NEXT:
		if (parse_u64(v, INT64_MAX, &u) == -1)
			return -1;
		*(k == K_ARRIVAL ? &env->arrival : &env->next_attempt) =
		    (time_t)u;
		return 0;
	case K_SIZE:
		return parse_u64(v, UINT64_MAX, &env->size);
	case K_ATTEMPTS:
		if (parse_u64(v, UINT32_MAX, &u) == -1)
			return -1;
		env->attempts = (unsigned)u;
		return 0;
	case K_LAST_CODE:
	case K_R_CODE:
		if (parse_u64(v, 599, &u) == -1 || !code_valid((int)u))
			return -1;
		*(r != NULL ? &r->code : &env->last_code) = (int)u;
		return 0;
	case K_LAST_ESC:
	case K_R_ESC:
		if (!esc_valid(v))
			return -1;
		memcpy(r != NULL ? r->esc : env->last_esc, v, n + 1);
		return 0;
	case K_BODY:
		if (strcmp(v, "8bitmime") == 0)
			env->flags |= PST_SPOOL_F_8BITMIME;
		else if (strcmp(v, "7bit") != 0)
			return -1;
		return 0;
	case K_SMTPUTF8:
	case K_UTF8_NEEDED:
	case K_HELD:
		if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
			return -1;
		if (k == K_UTF8_NEEDED)
			env->flags |= PST_SPOOL_F_UTF8_CHECKED;
		if (v[0] != 'y')
			return 0;
		if (k == K_HELD)
			env->held = true;
		else
			env->flags |= k == K_SMTPUTF8 ? PST_SPOOL_F_SMTPUTF8 :
			    PST_SPOOL_F_UTF8_NEEDED;
		return 0;
	case K_RET:
		if (strcmp(v, "full") == 0)
			env->ret = PST_SPOOL_RET_FULL;
		else if (strcmp(v, "hdrs") == 0)
			env->ret = PST_SPOOL_RET_HDRS;
		else
			return -1;
		return 0;
	case K_R_STATE:
		for (i = 0; i < PST_SPOOL_RCPT__COUNT; i++)
			if (strcmp(v, state_names[i]) == 0)
				break;
		if (i == PST_SPOOL_RCPT__COUNT)
			return -1;
		r->state = (enum pst_spool_rcpt_state)i;
		return 0;
	case K_R_NOTIFY:
		if ((s = strdup(v)) == NULL)
			return spool_sys(err, ENOMEM, "envelope");
		for (tok = strtok_r(s, ",", &save); tok != NULL;
		    tok = strtok_r(NULL, ",", &save)) {
			for (i = 0; i < sizeof(notify_names) /
			    sizeof(notify_names[0]); i++)
				if (strcmp(tok, notify_names[i].name) == 0)
					break;
			if (i == sizeof(notify_names) /
			    sizeof(notify_names[0]) ||
			    (r->notify & notify_names[i].bit))
				break;
			r->notify |= notify_names[i].bit;
		}
		free(s);
		/* A stray comma or a bad word stops the loop early. */
		if (tok != NULL || r->notify == 0 || !notify_valid(r->notify) ||
		    v[0] == ',' || v[n - 1] == ',' || strstr(v, ",,") != NULL)
			return -1;
		return 0;
	case K_ORIGIN:
		return set_string(&env->origin, "origin", v, false, err);
	case K_ENVID:
		return set_string(&env->envid, "envid", v, false, err);
	case K_SENDER:
		return set_string(&env->sender, "sender", v, false, err);
	case K_LAST_ERROR:
		return set_string(&env->last_error, "last-error", v, false,
		    err);
	case K_R_ORCPT:
		return set_string(&r->orcpt, "rcpt.orcpt", v, false, err);
	case K_R_ERROR:
		return set_string(&r->error, "rcpt.error", v, false, err);
	case K_RCPT:
	case K__COUNT:
		break;
	}
	return -1;
}

struct pst_spool_env *
pst_spool_env_decode(const char *buf, size_t len, struct pst_err *err)
{
	struct pst_spool_env *env = NULL;
	char value[PST_SPOOL_VALUE_MAX + 1];
	const char *line, *nl, *sp, *p;
	size_t body_len = 0, n, vlen, lineno = 1;
	uint32_t seen = 0, rseen = 0;
	bool optional;
	enum key k;

	pst_err_clear(err);
	if (len > PST_SPOOL_ENV_MAX) {
		spool_bad(err, "envelope larger than %u bytes",
		    PST_SPOOL_ENV_MAX);
		return NULL;
	}
	n = strlen(ENV_MAGIC);
	if (len < n + 1 || memcmp(buf, ENV_MAGIC " ", n + 1) != 0) {
		spool_bad(err, "not a postern envelope");
		return NULL;
	}
	nl = memchr(buf, '\n', len);
	if (nl == NULL || (size_t)(nl - buf) != n + 2 || buf[n + 1] != '1') {
		for (p = buf + n + 1; p < buf + len && p < buf + n + 12 &&
		    *p >= '0' && *p <= '9'; p++)
			continue;
		if (p == buf + n + 1 || p == buf + len || *p != '\n')
			spool_bad(err, "bad envelope version line");
		else
			spool_bad(err, "envelope format version %.*s is not "
			    "supported (this postern reads %d)",
			    (int)(p - (buf + n + 1)), buf + n + 1,
			    PST_SPOOL_ENV_VERSION);
		return NULL;
	}
	if (decode_end(buf, len, &body_len, err) == -1)
		return NULL;
	if ((env = pst_spool_env_new(err)) == NULL)
		return NULL;

	for (line = nl + 1; line < buf + body_len; line = nl + 1) {
		lineno++;
		nl = memchr(line, '\n', (size_t)(buf + body_len - line));
		n = (size_t)(nl - line);
		if (n > PST_SPOOL_LINE_MAX) {
			spool_bad(err, "envelope line %zu is too long", lineno);
			goto fail;
		}
		for (p = line; p < nl; p++)
			if (*p < 0x20 || *p >= 0x7f)
				break;
		if (p != nl) {
			spool_bad(err, "envelope line %zu holds a raw "
			    "byte 0x%02x", lineno, (unsigned char)*p);
			goto fail;
		}
		sp = memchr(line, ' ', n);
		k = key_lookup(line, sp != NULL ? (size_t)(sp - line) : n,
		    &optional);
		if (k == K__COUNT && optional)
			continue;
		if (k == K__COUNT) {
			spool_bad(err, "envelope line %zu: unknown key "
			    "\"%.*s\"", lineno,
			    (int)(sp != NULL ? (size_t)(sp - line) : n), line);
			goto fail;
		}
		if (sp != NULL && sp + 1 == nl) {
			spool_bad(err, "envelope line %zu: trailing space",
			    lineno);
			goto fail;
		}
		if (unescape(sp != NULL ? sp + 1 : nl,
		    sp != NULL ? (size_t)(nl - sp - 1) : 0, value,
		    &vlen) == -1) {
			spool_bad(err, "envelope line %zu: bad or overlong "
			    "value for %s", lineno, keys[k].name);
			goto fail;
		}
		if (k == K_RCPT) {
			if (env->nrcpts > 0 && !(rseen & 1u << K_R_STATE)) {
				spool_bad(err, "envelope line %zu: previous "
				    "recipient has no state", lineno);
				goto fail;
			}
			if (vlen == 0 || env->nrcpts >= PST_SPOOL_RCPT_MAX ||
			    pst_spool_env_add_rcpt(env, value, 0, NULL,
			    err) == -1) {
				spool_bad(err, "envelope line %zu: bad "
				    "recipient or too many", lineno);
				goto fail;
			}
			seen |= 1u << K_RCPT;
			rseen = 0;
			continue;
		}
		if ((keys[k].flags & KF_RCPT) && env->nrcpts == 0) {
			spool_bad(err, "envelope line %zu: %s before any rcpt",
			    lineno, keys[k].name);
			goto fail;
		}
		if ((keys[k].flags & KF_RCPT ? rseen : seen) & 1u << k) {
			spool_bad(err, "envelope line %zu: %s repeated",
			    lineno, keys[k].name);
			goto fail;
		}
		*(keys[k].flags & KF_RCPT ? &rseen : &seen) |= 1u << k;
		if (decode_line(env, k, value, vlen, err) == -1) {
			if (err->cls == PST_OK || err->sys_errno != ENOMEM)
				spool_bad(err, "envelope line %zu: bad value "
				    "for %s", lineno, keys[k].name);
			goto fail;
		}
	}
	for (k = 0; k < K__COUNT; k++) {
		if ((keys[k].flags & (KF_REQUIRED | KF_RCPT)) !=
		    KF_REQUIRED || (seen & 1u << k))
			continue;
		spool_bad(err, "envelope has no %s", keys[k].name);
		goto fail;
	}
	if (!(rseen & 1u << K_R_STATE)) {
		spool_bad(err, "envelope: last recipient has no state");
		goto fail;
	}
	pst_err_clear(err);
	return env;
fail:
	pst_spool_env_free(env);
	return NULL;
}
