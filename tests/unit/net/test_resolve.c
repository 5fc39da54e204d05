/*
 * test_resolve.c: lookups on the worker pool, answered on the loop.
 *
 * No test sends a DNS query: "localhost" comes from /etc/hosts, every
 * other name goes to fake_lookup(), which answers from a table.  The fake
 * names end in ".invalid" (RFC 6761) so that even a broken hook would ask
 * for a name no resolver can answer.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "common/err.h"
#include "common/pool.h"
#include "net/resolve.h"
#include "net/sockaddr.h"
#include "unit.h"

static struct event_base *base;
static struct pst_pool *pool;
static atomic_int lookups;

struct outcome {
	int		 calls;
	int		 ok;
	struct pst_addrs addrs;
	struct pst_err	 err;
};

static void
setup(void)
{
	struct pst_err err;

	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(evthread_use_pthreads(), 0);
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	pool = pst_pool_new(base, 2, &err);
	ck_assert_ptr_nonnull(pool);
	atomic_store(&lookups, 0);
}

static void
teardown(void)
{
	pst_pool_free(pool);
	event_base_free(base);
}

static void
add4(struct pst_addrs *out, const char *a)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->addr[out->count];

	memset(sin, 0, sizeof(out->addr[0]));
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, a, &sin->sin_addr);
	out->len[out->count++] = sizeof(*sin);
}

static void
add6(struct pst_addrs *out, const char *a)
{
	struct sockaddr_in6 *sin6 =
	    (struct sockaddr_in6 *)&out->addr[out->count];

	memset(sin6, 0, sizeof(out->addr[0]));
	sin6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, a, &sin6->sin6_addr);
	out->len[out->count++] = sizeof(*sin6);
}

/* The stand-in resolver: behaviour chosen by the name asked for. */
static int
fake_lookup(const char *host, struct pst_addrs *out)
{
	struct timespec slow = { 0, 300 * 1000 * 1000 };

	atomic_fetch_add(&lookups, 1);
	out->count = 0;
	if (strcmp(host, "noname.invalid") == 0)
		return EAI_NONAME;
	if (strcmp(host, "nodata.invalid") == 0)
		return EAI_NODATA;
	if (strcmp(host, "again.invalid") == 0)
		return EAI_AGAIN;
	if (strcmp(host, "fail.invalid") == 0)
		return EAI_FAIL;
	if (strcmp(host, "memory.invalid") == 0)
		return EAI_MEMORY;
	if (strcmp(host, "service.invalid") == 0)
		return EAI_SERVICE;
	if (strcmp(host, "system.invalid") == 0) {
		errno = EMFILE;
		return EAI_SYSTEM;
	}
	if (strcmp(host, "empty.invalid") == 0)
		return 0;
	if (strcmp(host, "three.invalid") == 0) {
		add6(out, "2001:db8::1");
		add4(out, "192.0.2.1");
		add4(out, "192.0.2.2");
		return 0;
	}
	if (strcmp(host, "hostile.invalid") == 0) {
		/* A count past the array, a family that is no address. */
		add4(out, "192.0.2.1");
		out->addr[1].ss_family = AF_UNIX;
		out->count = 1000;
		return 0;
	}
	if (strcmp(host, "slow.invalid") == 0) {
		nanosleep(&slow, NULL);
		add4(out, "127.0.0.1");
		return 0;
	}
	return EAI_NONAME;
}

static void
outcome_cb(const struct pst_addrs *addrs, const struct pst_err *err,
    void *arg)
{
	struct outcome *o = arg;

	o->calls++;
	if (addrs != NULL) {
		ck_assert_ptr_null(err);
		o->ok = 1;
		o->addrs = *addrs;
	} else {
		ck_assert_ptr_nonnull(err);
		o->err = *err;
	}
	event_base_loopbreak(base);
}

static void
run(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static char *
fmt(const struct pst_addrs *a, size_t i, char *buf, size_t len)
{
	return pst_sockaddr_format((const struct sockaddr *)&a->addr[i],
	    a->len[i], buf, len);
}

START_TEST(resolve_literals_skip_the_pool_and_are_not_synchronous)
{
	static const struct {
		const char	*host;
		const char	*want;
	} lits[] = {
		{ "192.0.2.1", "192.0.2.1:25" },
		{ "::1", "[::1]:25" },
		{ "2001:db8::ff", "[2001:db8::ff]:25" },
	};
	struct outcome o;
	struct pst_err err;
	char buf[64];
	size_t i;

	for (i = 0; i < NELEMS(lits); i++) {
		memset(&o, 0, sizeof(o));
		/* No pool at all: a literal must not need one. */
		ck_assert_ptr_nonnull(pst_resolve_start(base, NULL,
		    lits[i].host, 25, fake_lookup, outcome_cb, &o, &err));
		ck_assert_int_eq(o.calls, 0);
		run(2000);
		ck_assert_int_eq(o.calls, 1);
		ck_assert(o.ok);
		ck_assert_uint_eq(o.addrs.count, 1);
		ck_assert_str_eq(fmt(&o.addrs, 0, buf, sizeof(buf)),
		    lits[i].want);
	}
	ck_assert_int_eq(atomic_load(&lookups), 0);
}
END_TEST

START_TEST(resolve_localhost_on_the_pool)
{
	struct outcome o;
	struct pst_err err;
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	size_t i;

	memset(&o, 0, sizeof(o));
	ck_assert_ptr_nonnull(pst_resolve_start(base, pool, "localhost", 587,
	    NULL, outcome_cb, &o, &err));
	ck_assert_int_eq(o.calls, 0);
	run(10000);
	ck_assert_int_eq(o.calls, 1);
	ck_assert_msg(o.ok, "localhost: %s", o.err.text);
	ck_assert_uint_ge(o.addrs.count, 1);
	for (i = 0; i < o.addrs.count; i++) {
		if (o.addrs.addr[i].ss_family == AF_INET) {
			sin = (struct sockaddr_in *)&o.addrs.addr[i];
			ck_assert_uint_eq(ntohs(sin->sin_port), 587);
			ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr) >> 24,
			    127);
		} else {
			sin6 = (struct sockaddr_in6 *)&o.addrs.addr[i];
			ck_assert_int_eq(o.addrs.addr[i].ss_family,
			    AF_INET6);
			ck_assert_uint_eq(ntohs(sin6->sin6_port), 587);
			ck_assert(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) ||
			    IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr));
		}
	}
}
END_TEST

START_TEST(resolve_keeps_the_order_the_resolver_gives)
{
	struct outcome o;
	struct pst_err err;
	char buf[64];

	memset(&o, 0, sizeof(o));
	ck_assert_ptr_nonnull(pst_resolve_start(base, pool, "three.invalid",
	    25, fake_lookup, outcome_cb, &o, &err));
	run(10000);
	ck_assert(o.ok);
	ck_assert_uint_eq(o.addrs.count, 3);
	ck_assert_str_eq(fmt(&o.addrs, 0, buf, sizeof(buf)),
	    "[2001:db8::1]:25");
	ck_assert_str_eq(fmt(&o.addrs, 1, buf, sizeof(buf)), "192.0.2.1:25");
	ck_assert_str_eq(fmt(&o.addrs, 2, buf, sizeof(buf)), "192.0.2.2:25");
}
END_TEST

START_TEST(resolve_trusts_no_count_or_family_from_a_hook)
{
	struct outcome o;
	struct pst_err err;
	char buf[64];

	memset(&o, 0, sizeof(o));
	ck_assert_ptr_nonnull(pst_resolve_start(base, pool,
	    "hostile.invalid", 25, fake_lookup, outcome_cb, &o, &err));
	run(10000);
	ck_assert(o.ok);
	ck_assert_uint_le(o.addrs.count, PST_RESOLVE_MAX);
	ck_assert_str_eq(fmt(&o.addrs, 0, buf, sizeof(buf)), "192.0.2.1:25");
	ck_assert_uint_eq(o.addrs.count, 1);
}
END_TEST

static const struct {
	const char	*host;
	const char	*text;
	int		 sys_errno;
} failures[] = {
	{ "noname.invalid", "noname.invalid: host not found", 0 },
	{ "nodata.invalid",
	    "nodata.invalid: host not found (no IPv4 or IPv6 address)", 0 },
	{ "empty.invalid",
	    "empty.invalid: host not found (no IPv4 or IPv6 address)", 0 },
	{ "again.invalid",
	    "again.invalid: temporary failure in name resolution", 0 },
	{ "fail.invalid", "fail.invalid: name server failure", 0 },
	{ "memory.invalid", "memory.invalid: lookup ran out of memory", 0 },
	{ "system.invalid", "system.invalid: lookup failed: ", EMFILE },
	{ "service.invalid", "service.invalid: lookup failed: ", 0 },
};

START_TEST(resolve_failures_are_temporary_with_clear_text)
{
	struct outcome o;
	struct pst_err err;

	memset(&o, 0, sizeof(o));
	ck_assert_ptr_nonnull(pst_resolve_start(base, pool, failures[_i].host,
	    25, fake_lookup, outcome_cb, &o, &err));
	run(10000);
	ck_assert_int_eq(o.calls, 1);
	ck_assert(!o.ok);
	/* Undeliverable on resolve is a deferral, never a bounce. */
	ck_assert_int_eq(o.err.cls, PST_TEMP);
	ck_assert_int_eq(o.err.stage, PST_STAGE_RESOLVE);
	ck_assert_msg(strncmp(o.err.text, failures[_i].text,
	    strlen(failures[_i].text)) == 0, "got \"%s\"", o.err.text);
	ck_assert_int_eq(o.err.sys_errno, failures[_i].sys_errno);
}
END_TEST

START_TEST(resolve_refuses_bad_names_and_names_without_a_pool)
{
	static const char *bad[] = { "", "bad_host", "a..b", "-x.example",
	    "has space", "[::1]", "127.0.0.1:25", "\n" };
	char longname[400];
	struct outcome o;
	struct pst_err err;
	size_t i;

	memset(&o, 0, sizeof(o));
	for (i = 0; i < NELEMS(bad); i++) {
		ck_assert_msg(pst_resolve_start(base, pool, bad[i], 25,
		    fake_lookup, outcome_cb, &o, &err) == NULL, "\"%s\"",
		    bad[i]);
		ck_assert_int_eq(err.cls, PST_LOCAL);
	}
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert_ptr_null(pst_resolve_start(base, pool, longname, 25,
	    fake_lookup, outcome_cb, &o, &err));
	ck_assert_ptr_null(pst_resolve_start(base, NULL, "localhost", 25,
	    fake_lookup, outcome_cb, &o, &err));
	ck_assert_int_eq(err.cls, PST_LOCAL);
	ck_assert_ptr_nonnull(strstr(err.text, "no worker pool"));
	run(50);
	ck_assert_int_eq(o.calls, 0);
	ck_assert_int_eq(atomic_load(&lookups), 0);
}
END_TEST

START_TEST(resolve_cancel_drops_the_answer_quietly)
{
	struct pst_resolve *req;
	struct outcome o;
	struct pst_err err;

	memset(&o, 0, sizeof(o));
	req = pst_resolve_start(base, pool, "slow.invalid", 25, fake_lookup,
	    outcome_cb, &o, &err);
	ck_assert_ptr_nonnull(req);
	run(50);
	pst_resolve_cancel(req);
	/* The worker finishes; its answer must go nowhere. */
	while (pst_pool_pending(pool) > 0)
		run(50);
	ck_assert_int_eq(o.calls, 0);
	ck_assert_int_eq(atomic_load(&lookups), 1);

	/* A literal cancelled before its turn. */
	req = pst_resolve_start(base, NULL, "192.0.2.1", 25, NULL,
	    outcome_cb, &o, &err);
	ck_assert_ptr_nonnull(req);
	pst_resolve_cancel(req);
	run(50);
	ck_assert_int_eq(o.calls, 0);
	pst_resolve_cancel(NULL);
}
END_TEST

START_TEST(resolve_cancel_then_pool_free_leaks_nothing)
{
	struct outcome o;
	struct pst_err err;

	memset(&o, 0, sizeof(o));
	pst_resolve_cancel(pst_resolve_start(base, pool, "slow.invalid", 25,
	    fake_lookup, outcome_cb, &o, &err));
	/* The teardown frees the pool with the job in flight. */
	ck_assert_int_eq(o.calls, 0);
}
END_TEST

static const struct {
	const char	*host;
	int		 ok;
	int		 family;
} literals[] = {
	{ "127.0.0.1", 1, AF_INET },
	{ "0.0.0.0", 1, AF_INET },
	{ "::", 1, AF_INET6 },
	{ "::ffff:192.0.2.1", 1, AF_INET6 },
	{ "fe80::1%1", 1, AF_INET6 },
	{ "127.1", 0, 0 },
	{ "0x7f.0.0.1", 0, 0 },
	{ "1", 0, 0 },
	{ "256.0.0.1", 0, 0 },
	{ "1.2.3.4 ", 0, 0 },
	{ "[::1]", 0, 0 },
	{ "::1:25:", 0, 0 },
	{ "localhost", 0, 0 },
	{ "", 0, 0 },
};

START_TEST(resolve_literal_is_strict)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int rc;

	rc = pst_resolve_literal(literals[_i].host, 25, &ss, &len);
	ck_assert_msg(rc == (literals[_i].ok ? 0 : -1), "\"%s\"",
	    literals[_i].host);
	if (rc == 0)
		ck_assert_int_eq(ss.ss_family, literals[_i].family);
}
END_TEST

START_TEST(lookup_getaddrinfo_localhost_has_no_duplicates)
{
	struct pst_addrs a;
	size_t i, j;

	ck_assert_int_eq(pst_lookup_getaddrinfo("localhost", &a), 0);
	ck_assert_uint_ge(a.count, 1);
	for (i = 0; i < a.count; i++)
		for (j = i + 1; j < a.count; j++)
			ck_assert(a.len[i] != a.len[j] ||
			    memcmp(&a.addr[i], &a.addr[j], a.len[i]) != 0);
	/* Numeric input goes through the same function untouched. */
	ck_assert_int_eq(pst_lookup_getaddrinfo("192.0.2.9", &a), 0);
	ck_assert_uint_eq(a.count, 1);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("net/resolve");
	TCase *tc = tcase_create("resolve");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc,
	    resolve_literals_skip_the_pool_and_are_not_synchronous);
	tcase_add_test(tc, resolve_localhost_on_the_pool);
	tcase_add_test(tc, resolve_keeps_the_order_the_resolver_gives);
	tcase_add_test(tc, resolve_trusts_no_count_or_family_from_a_hook);
	tcase_add_loop_test(tc, resolve_failures_are_temporary_with_clear_text,
	    0, NELEMS(failures));
	tcase_add_test(tc, resolve_refuses_bad_names_and_names_without_a_pool);
	tcase_add_test(tc, resolve_cancel_drops_the_answer_quietly);
	tcase_add_test(tc, resolve_cancel_then_pool_free_leaks_nothing);
	tcase_add_loop_test(tc, resolve_literal_is_strict, 0,
	    NELEMS(literals));
	tcase_add_test(tc, lookup_getaddrinfo_localhost_has_no_duplicates);
	suite_add_tcase(s, tc);
	return s;
}
