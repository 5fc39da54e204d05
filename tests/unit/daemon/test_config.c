#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/negotiate.h"
#include "shared/config.h"
#include "shared/config_load.h"
#include "shared/log.h"
#include "sasl/sasl.h"
#include "unit.h"

static char path[64];

static void
write_conf(const char *text)
{
	FILE *fp;

	strcpy(path, "/tmp/postern-test-XXXXXX");
	ck_assert_int_ne(mkstemp(path), -1);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
}

static void
teardown(void)
{
	if (path[0] != '\0')
		unlink(path);
	path[0] = '\0';
}

static void
setup(void)
{
	unsetenv("POSTERN_LISTEN");
	unsetenv("POSTERN_ALLOW");
	unsetenv("POSTERN_SPOOL_DIR");
	unsetenv("POSTERN_HOSTNAME");
	unsetenv("POSTERN_LOG_LEVEL");
	unsetenv("POSTERN_UPSTREAM");
	unsetenv("POSTERN_PASSWORD_FILE");
	unsetenv("POSTERN_PROXY");
}

/* Loads 'text' expecting failure; returns the errors joined by " | ". */
static char *
load_errors(const char *text)
{
	static char all[8192];
	struct config_errors errs;
	struct config *cfg = NULL;
	size_t i;

	write_conf(text);
	ck_assert_int_eq(config_load(path, true, &cfg, &errs), -1);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_gt(errs.count, 0);
	all[0] = '\0';
	for (i = 0; i < errs.count; i++) {
		/* Strip the temporary file name: "PATH:line: ..." */
		const char *e = errs.lines[i];

		if (strncmp(e, path, strlen(path)) == 0)
			e += strlen(path);
		strncat(all, e, sizeof(all) - strlen(all) - 2);
		strcat(all, " | ");
	}
	config_errors_free(&errs);
	return all;
}

static struct config *
load_ok(const char *text)
{
	struct config_errors errs;
	struct config *cfg = NULL;

	write_conf(text);
	if (config_load(path, true, &cfg, &errs) == -1)
		ck_abort_msg("unexpected error: %s", errs.lines[0]);
	return cfg;
}

START_TEST(defaults_when_file_is_empty)
{
	struct config *cfg = load_ok("");
	char buf[64];

	ck_assert_uint_eq(cfg->nlisten, 2);
	ck_assert_str_eq(pst_endpoint_format(&cfg->listen[0], buf,
	    sizeof(buf)), "127.0.0.1:25");
	ck_assert_str_eq(pst_endpoint_format(&cfg->listen[1], buf,
	    sizeof(buf)), "[::1]:25");
	ck_assert_uint_eq(cfg->nallow, 2);
	ck_assert_str_eq(cfg->spool_dir, "/var/spool/postern");
	ck_assert_uint_eq(cfg->limits.message_size, 52428800);
	ck_assert_uint_eq(cfg->limits.recipients, 1000);
	ck_assert_uint_eq(cfg->limits.sessions, 100);
	ck_assert_uint_eq(cfg->limits.idle_ms, 300000);
	ck_assert_uint_eq(cfg->limits.min_data_rate, 500);
	ck_assert_uint_eq(cfg->limits.junk_commands, 100);
	ck_assert_uint_eq(cfg->limits.stress_threshold, 80);
	ck_assert_uint_eq(cfg->limits.stress_idle_ms, 10000);
	ck_assert_uint_eq(cfg->limits.stress_junk_commands, 10);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_INFO);
	ck_assert_ptr_nonnull(cfg->hostname);
	ck_assert_str_eq(cfg->default_domain, cfg->hostname);
	config_unref(cfg);
}
END_TEST

START_TEST(full_file_is_read)
{
	struct config *cfg = load_ok(
	    "hostname = \"relay.example.org\";\n"
	    "spool_dir = \"/srv/spool\";\n"
	    "listen = ( \"127.0.0.1:2525\", \"unix:/run/p.sock\" );\n"
	    "allow = [ \"10.0.0.0/8\" ];\n"
	    "log = { level = \"debug\"; };\n"
	    "limits = { message_size = \"10M\"; recipients = 200;\n"
	    "  sessions = 5; idle = 90; min_data_rate = \"1K\";\n"
	    "  junk_commands = 20; stress_threshold = 50;\n"
	    "  stress_idle = \"5s\"; stress_junk_commands = 2; };\n"
	    "aliases = { Root = \"postmaster\"; postmaster = "
	    "( \"a@example.org\", \"b@example.org\" ); };\n"
	    "default_domain = \"example.org\";\n");
	const struct config_alias *a;

	ck_assert_str_eq(cfg->hostname, "relay.example.org");
	ck_assert_str_eq(cfg->spool_dir, "/srv/spool");
	ck_assert_uint_eq(cfg->nlisten, 2);
	ck_assert_int_eq(cfg->listen[1].kind, PST_EP_UNIX);
	ck_assert_uint_eq(cfg->nallow, 1);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_DEBUG);
	ck_assert_uint_eq(cfg->limits.message_size, 10 * 1024 * 1024);
	ck_assert_uint_eq(cfg->limits.recipients, 200);
	ck_assert_uint_eq(cfg->limits.sessions, 5);
	ck_assert_uint_eq(cfg->limits.idle_ms, 90000);
	ck_assert_uint_eq(cfg->limits.min_data_rate, 1024);
	ck_assert_uint_eq(cfg->limits.junk_commands, 20);
	ck_assert_uint_eq(cfg->limits.stress_threshold, 50);
	ck_assert_uint_eq(cfg->limits.stress_idle_ms, 5000);
	ck_assert_uint_eq(cfg->limits.stress_junk_commands, 2);
	a = config_alias_find(cfg, "ROOT");
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(a->targets[0], "postmaster");
	a = config_alias_find(cfg, "postmaster");
	ck_assert_uint_eq(a->ntargets, 2);
	ck_assert_str_eq(cfg->default_domain, "example.org");
	config_unref(cfg);
}
END_TEST

START_TEST(shipped_example_is_valid)
{
	struct config_errors errs;
	struct config *cfg;
	const char *src = getenv("POSTERN_SOURCE_ROOT");
	char p[512];

	ck_assert_ptr_nonnull(src);
	snprintf(p, sizeof(p), "%s/conf/postern.conf", src);
	if (config_load(p, true, &cfg, &errs) == -1)
		ck_abort_msg("%s", errs.lines[0]);
	ck_assert_str_eq(cfg->spool_dir, "/var/spool/postern");
	config_unref(cfg);
}
END_TEST

static const struct {
	const char	*text;
	const char	*error;
} bad[] = {
	{ "\n\nlimits = { idle = \"4x\"; };\n",
	  ":3: limits.idle: \"4x\" is not a duration (unknown unit" },
	{ "hostname = \"ok.example\";\nlimits = {\n  sesions = 4;\n};\n",
	  ":3: limits.sesions: unknown key (did you mean \"sessions\"?)" },
	{ "spoool_dir = \"/x\";\n",
	  ":1: spoool_dir: unknown key (did you mean \"spool_dir\"?)" },
	{ "upstream_of_mars = 1;\n",
	  ":1: upstream_of_mars: unknown key |" },
	{ "limits = { recipients = \"many\"; };\n",
	  ":1: limits.recipients: must be an integer, not a string" },
	{ "limits = { recipients = 5; };\n",
	  ":1: limits.recipients: 5 is out of range (100 to 100000)" },
	{ "limits = { idle = \"2h\"; };\n",
	  ":1: limits.idle: 2h is out of range (1s to 1h)" },
	{ "limits = {\n  min_data_rate = 0; };\n",
	  ":2: limits.min_data_rate: 0 bytes is out of range (1 to " },
	{ "limits = { junk_commands = 0; };\n",
	  ":1: limits.junk_commands: 0 is out of range (1 to 100000)" },
	{ "limits = { stress_threshold = 101; };\n",
	  ":1: limits.stress_threshold: 101 is out of range (1 to 100)" },
	{ "limits = { stress_idle = \"100ms\"; };\n",
	  ":1: limits.stress_idle: 100ms is out of range (1s to 1h)" },
	{ "limits = { stress_junk_commands = \"few\"; };\n",
	  ":1: limits.stress_junk_commands: must be an integer, not a "
	  "string" },
	{ "limits = { message_size = \"5T\"; };\n",
	  ":1: limits.message_size: \"5T\" is not a size" },
	{ "listen = ( \"127.0.0.1:25\",\n \"::1:25\" );\n",
	  ":2: listen.[1]: \"::1:25\" is not a listen address: IPv6 address "
	  "needs brackets" },
	{ "listen = ( \"mail.example.org:25\" );\n",
	  ":1: listen.[0]: \"mail.example.org:25\" is not a listen address: "
	  "must be an IP address" },
	{ "listen = ( \"127.0.0.1:25\", \"127.0.0.1:25\" );\n",
	  "listen.[1]: \"127.0.0.1:25\" is listed twice" },
	{ "listen = ();\n", "listen: must name at least one address" },
	{ "listen = ( 25 );\n", "listen.[0]: must be a string, not an integer" },
	{ "allow = ( \"10.0.0.1/8\" );\n",
	  ":1: allow.[0]: \"10.0.0.1/8\" is not a network: host bits set" },
	{ "log = { level = \"loud\"; };\n",
	  ":1: log.level: \"loud\" is not a level" },
	{ "log = \"debug\";\n", ":1: log: must be a group { ... }, not a "
	  "string" },
	{ "hostname = \"bad_name\";\n",
	  ":1: hostname: \"bad_name\" is not a valid domain name" },
	{ "default_domain = \"\";\n",
	  ":1: default_domain: \"\" is not a valid domain name" },
	{ "aliases = { root = \"a b@example.org\"; };\n",
	  ":1: aliases.root: \"a b@example.org\" contains a character" },
	{ "aliases = { root = \"x@bad_domain\"; };\n",
	  "aliases.root: \"x@bad_domain\" has an invalid domain" },
	{ "aliases = {\n a = \"b\";\n b = \"a\"; };\n",
	  ":2: aliases.a: aliases loop back to themselves" },
	{ "spool_dir = \"\";\n", ":1: spool_dir: \"\" must not be empty" },
	{ "hostname = \"x\";\nlisten = ( \"a\" ;\n", ":2: syntax error" },
	{ "upstreams = ( {\n host = \"mx.example.org\";\n"
	  " timeouts = { greeting = \"4x\"; }; } );\n",
	  ":3: upstreams.[0].timeouts.greeting: \"4x\" is not a duration" },
	{ "upstreams = ( { port = 25; } );\n",
	  ":1: upstreams.[0]: needs a host" },
	{ "upstreams = ( { host = \"mx.example.org\";\n"
	  " security = \"tlsx\"; } );\n",
	  ":2: upstreams.[0].security: \"tlsx\" is not a mode" },
	{ "upstreams = ( { host = \"mx.example.org\"; prot = 25; } );\n",
	  "upstreams.[0].prot: unknown key (did you mean \"port\"?)" },
	{ "upstreams = ( { host = \"mx.example.org\"; port = 0; } );\n",
	  "upstreams.[0].port: 0 is out of range (1 to 65535)" },
	{ "upstreams = ( { host = \"a.example\"; }, { host = \"a.example\"; "
	  "} );\n", "upstreams.[1].name: \"a.example\" is the name of "
	  "upstreams.[0] too" },
	{ "upstreams = ( { host = \"mx.example.org\";\n"
	  " tls = { versions = ( \"SSLv3\" ); }; } );\n",
	  ":2: upstreams.[0].tls.versions.[0]: \"SSLv3\":" },
	{ "upstreams = ( { host = \"mx.example.org\";\n"
	  " tls = { policy = \"lax\"; }; } );\n",
	  ":2: upstreams.[0].tls.policy: \"lax\" is not a policy" },
	{ "upstreams = ( { host = \"mx.example.org\";\n"
	  " tls = { fingerprint = \"md5:00\"; }; } );\n",
	  ":2: upstreams.[0].tls.fingerprint: \"md5:00\" is not a fingerprint" },
	{ "upstreams = ( { host = \"mx.example.org\";\n"
	  " tls = { fingerprint = ( \"md5:00\", \"md5:11\" ); }; } );\n",
	  ":2: upstreams.[0].tls.fingerprint.[1]: \"md5:11\" is not a" },
	{ "upstreams = ( { host = \"mx.example.org\";\n"
	  " tls = { ca_file = \"/nonexistent/ca.pem\"; }; } );\n",
	  "upstreams.[0].tls: " },
	{ "upstreams = ( { host = \"mx.example.org\";\n"
	  " auth = { user = \"u\"; password_file = \"/nonexistent/pw\";\n"
	  " password_command = \"cat pw\"; }; } );\n",
	  ":2: upstreams.[0].auth: needs exactly one of password, "
	  "password_file, password_command and credential (2 given)" },
	{ "upstreams = ( { host = \"mx.example.org\";\n"
	  " auth = { user = \"u\"; credential = \"../x\"; }; } );\n",
	  "upstreams.[0].auth.credential: \"../x\" is not a credential name" },
	{ "upstreams = ( { host = \"mx.example.org\";\n"
	  " auth = { user = \"u\"; credential = \"pw\";\n"
	  " mechanisms = ( \"DIGEST-MD5\" ); }; } );\n",
	  ":3: upstreams.[0].auth.mechanisms: " },
	{ "upstreams = ( { host = \"mx.example.org\";\n"
	  " auth = { user = \"u\"; credential = \"pw\";\n"
	  " mechanisms = ( \"XOAUTH2\", \"PLAIN\" ); }; } );\n",
	  ":3: upstreams.[0].auth.mechanisms: XOAUTH2 takes an access token" },
	{ "upstreams = ( { host = \"mx.example.org\";\n"
	  " auth = { credential = \"pw\"; }; } );\n",
	  ":2: upstreams.[0].auth: needs a user" },
	{ "upstreams = ( { host = \"mx.example.org\";\n"
	  " bind = \"::1\"; } );\n", "upstreams.[0].bind: " },
	{ "upstreams = ( { host = \"mx.example.org\";\n"
	  " proxy = ( \"socks5h://127.0.0.1:1080\", \"gopher://x:1\" ); } );\n",
	  ":2: upstreams.[0].proxy.[1]: not a usable proxy URL: " },
	{ "upstreams = ( { host = \"mx.example.org\";\n"
	  " proxy = \"socks4://u:secret@127.0.0.1:1080\"; } );\n",
	  "proxy.[0]: not a usable proxy URL: SOCKS4 has no password" },
	{ "upstreams = ( { host = \"mx.example.org\";\n"
	  " timeouts = { proxy = \"soon\"; }; } );\n",
	  ":2: upstreams.[0].timeouts.proxy: \"soon\" is not a duration" },
	{ "upstreams = ( { host = \"mx.example.org\"; rate = \"fast\"; } );\n",
	  "upstreams.[0].rate: \"fast\" is not a rate" },
	{ "queue = { retry = ( \"1m\", \"later\" ); };\n",
	  ":1: queue.retry.[1]: \"later\" is not a duration" },
	{ "upstreams = ( { host = \"mx.example.org\";\n"
	  " proxy = ( { user = \"u\"; } ); } );\n",
	  ":2: upstreams.[0].proxy.[0]: needs a url" },
	{ "upstreams = ( { host = \"mx.example.org\";\n"
	  " proxy = ( { url = \"http://p:3128\"; pasword = \"x\"; } ); } );\n",
	  "proxy.[0].pasword: unknown key (did you mean \"password\"?)" },
	{ "queue = { concurrency = 0; };\n",
	  "queue.concurrency: 0 is out of range" },
	{ "upstreams = { host = \"mx.example.org\"; };\n",
	  ":1: upstreams: must be a list ( { ... }, ... ), not a group" },
};

START_TEST(each_error_names_line_and_key)
{
	const char *all = load_errors(bad[_i].text);

	ck_assert_msg(strstr(all, bad[_i].error) != NULL,
	    "want \"%s\" in: %s", bad[_i].error, all);
}
END_TEST

START_TEST(every_error_is_reported_at_once)
{
	const char *all = load_errors(
	    "limits = { idle = \"4x\"; sessions = 0; };\n"
	    "log = { level = \"loud\"; };\n"
	    "listen = ( \"nope\" );\n");

	ck_assert_ptr_nonnull(strstr(all, "limits.idle"));
	ck_assert_ptr_nonnull(strstr(all, "limits.sessions"));
	ck_assert_ptr_nonnull(strstr(all, "log.level"));
	ck_assert_ptr_nonnull(strstr(all, "listen.[0]"));
}
END_TEST

START_TEST(environment_overrides_file)
{
	struct config *cfg;
	char buf[64];

	setenv("POSTERN_LISTEN", "127.0.0.1:2525, [::1]:2526", 1);
	setenv("POSTERN_ALLOW", "192.0.2.0/24", 1);
	setenv("POSTERN_SPOOL_DIR", "relative/spool", 1);
	setenv("POSTERN_HOSTNAME", "env.example.org", 1);
	setenv("POSTERN_LOG_LEVEL", "warn", 1);
	cfg = load_ok("listen = ( \"127.0.0.1:25\" );\n"
	    "hostname = \"file.example.org\";\n");
	ck_assert_uint_eq(cfg->nlisten, 2);
	ck_assert_str_eq(pst_endpoint_format(&cfg->listen[1], buf,
	    sizeof(buf)), "[::1]:2526");
	ck_assert_uint_eq(cfg->nallow, 1);
	ck_assert_str_eq(cfg->hostname, "env.example.org");
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_WARN);
	/* Relative paths are made absolute against the working directory. */
	ck_assert(cfg->spool_dir[0] == '/');
	ck_assert_ptr_nonnull(strstr(cfg->spool_dir, "/relative/spool"));
	config_unref(cfg);
}
END_TEST

START_TEST(environment_errors_name_the_variable)
{
	const char *all;

	setenv("POSTERN_LISTEN", "127.0.0.1:99999", 1);
	all = load_errors("");
	ck_assert_msg(strstr(all, "environment POSTERN_LISTEN: "
	    "\"127.0.0.1:99999\" is not a listen address: port out of range")
	    != NULL, "%s", all);
}
END_TEST

START_TEST(missing_file)
{
	struct config_errors errs;
	struct config *cfg;

	setenv("POSTERN_LISTEN", "127.0.0.1:2525", 1);
	ck_assert_int_eq(config_load("/nonexistent/postern.conf", false,
	    &cfg, &errs), 0);
	ck_assert_ptr_null(cfg->path);
	ck_assert_uint_eq(cfg->listen[0].port, 2525);
	config_unref(cfg);

	ck_assert_int_eq(config_load("/nonexistent/postern.conf", true,
	    &cfg, &errs), -1);
	ck_assert_uint_eq(errs.count, 1);
	ck_assert_str_eq(errs.lines[0], "/nonexistent/postern.conf: cannot "
	    "read: No such file or directory");
	config_errors_free(&errs);
}
END_TEST

START_TEST(upstream_is_read)
{
	const struct config_upstream *u;
	struct config *cfg = load_ok(
	    "upstreams = ( {\n"
	    "  name = \"primary\"; host = \"127.0.0.1\"; port = 2525;\n"
	    "  security = \"starttls\"; bind = \"127.0.0.2\";\n"
	    "  timeouts = { connect = \"2s\"; greeting = \"500ms\"; };\n"
	    "  tls = { versions = ( \"TLSv1.3\" ); verify = false;\n"
	    "    server_name = \"mx.example.org\"; };\n"
	    "  auth = { user = \"me\"; credential = \"smtp\";\n"
	    "    mechanisms = ( \"CRAM-MD5\", \"plain\" );\n"
	    "    allow_plaintext = true; };\n"
	    "}, { host = \"backup.example.org\"; security = \"tls\"; } );\n");

	ck_assert_uint_eq(cfg->nupstreams, 2);
	u = config_upstream_find(cfg, "primary");
	ck_assert_ptr_nonnull(u);
	ck_assert_str_eq(u->host, "127.0.0.1");
	ck_assert_uint_eq(u->port, 2525);
	ck_assert_int_eq(u->security, PST_SEC_STARTTLS);
	ck_assert_str_eq(u->bind, "127.0.0.2");
	ck_assert_uint_eq(u->timeouts.connect, 2000);
	ck_assert_uint_eq(u->timeouts.greeting, 500);
	ck_assert_uint_eq(u->timeouts.command, 300000);
	ck_assert_uint_eq(u->timeouts.dot, 600000);
	ck_assert_uint_eq(u->tls.versions, PST_TLS_V1_3);
	ck_assert(!u->tls.verify);
	ck_assert_str_eq(u->tls.server_name, "mx.example.org");
	ck_assert_ptr_nonnull(u->ssl_ctx);
	ck_assert(u->has_auth);
	ck_assert_str_eq(u->auth.user, "me");
	ck_assert_str_eq(u->auth.credential, "smtp");
	ck_assert_uint_eq(u->auth.mechanisms,
	    PST_SASL_CRAM_MD5 | PST_SASL_PLAIN);
	ck_assert(u->auth.allow_plaintext);
	/* Defaults: the host names it, 465 for implicit TLS. */
	u = config_upstream_find(cfg, "backup.example.org");
	ck_assert_ptr_nonnull(u);
	ck_assert_uint_eq(u->port, 465);
	ck_assert(u->tls.verify);
	ck_assert(!u->has_auth);
	config_unref(cfg);
}
END_TEST

START_TEST(inline_password_needs_a_private_file)
{
	const char *all;
	struct config *cfg;

	cfg = load_ok("upstreams = ( { host = \"mx.example.org\";\n"
	    " auth = { user = \"u\"; password = \"secret\"; }; } );\n");
	ck_assert_str_eq(cfg->upstreams[0].auth.password, "secret");
	config_unref(cfg);
	unlink(path);

	write_conf("upstreams = ( { host = \"mx.example.org\";\n"
	    " auth = { user = \"u\"; password = \"secret\"; }; } );\n");
	chmod(path, 0644);
	{
		struct config_errors errs;

		ck_assert_int_eq(config_load(path, true, &cfg, &errs), -1);
		all = errs.lines[0];
		ck_assert_msg(strstr(all, ":2: upstreams.[0].auth.password: "
		    "the file holding it is readable by others (mode 0644)") !=
		    NULL, "%s", all);
		config_errors_free(&errs);
	}
}
END_TEST

START_TEST(upstream_from_environment)
{
	const struct config_upstream *u;
	struct config *cfg;

	setenv("POSTERN_UPSTREAM", "smtps://me%40example.org:p%40ss@"
	    "mail.example.org", 1);
	cfg = load_ok("upstreams = ( { host = \"file.example.org\"; } );\n");
	unsetenv("POSTERN_UPSTREAM");
	ck_assert_uint_eq(cfg->nupstreams, 1);
	u = &cfg->upstreams[0];
	ck_assert_str_eq(u->host, "mail.example.org");
	ck_assert_uint_eq(u->port, 465);
	ck_assert_int_eq(u->security, PST_SEC_TLS);
	ck_assert_str_eq(u->auth.user, "me@example.org");
	ck_assert_str_eq(u->auth.password, "p@ss");
	ck_assert_ptr_nonnull(u->ssl_ctx);
	config_unref(cfg);

	setenv("POSTERN_UPSTREAM", "smtp+auto://[::1]:2525", 1);
	cfg = load_ok("");
	unsetenv("POSTERN_UPSTREAM");
	ck_assert_str_eq(cfg->upstreams[0].host, "::1");
	ck_assert_uint_eq(cfg->upstreams[0].port, 2525);
	ck_assert_int_eq(cfg->upstreams[0].security, PST_SEC_AUTO);
	config_unref(cfg);

	setenv("POSTERN_UPSTREAM", "smtp+starttls://mail.example.org", 1);
	setenv("POSTERN_PROXY", "socks5h://127.0.0.1:1080,http://p:3128", 1);
	cfg = load_ok("");
	unsetenv("POSTERN_PROXY");
	ck_assert_uint_eq(cfg->upstreams[0].nproxies, 2);
	ck_assert_int_eq(cfg->upstreams[0].proxies[0].kind, PST_HOP_SOCKS5);
	ck_assert(cfg->upstreams[0].proxies[0].remote_resolve);
	ck_assert_int_eq(cfg->upstreams[0].proxies[1].kind, PST_HOP_HTTP);
	config_unref(cfg);

	setenv("POSTERN_UPSTREAM", "imap://mail.example.org", 1);
	ck_assert_ptr_nonnull(strstr(load_errors(""), "environment "
	    "POSTERN_UPSTREAM: \"imap://mail.example.org\" is not"));
	setenv("POSTERN_UPSTREAM", "smtp://user@mail.example.org", 1);
	ck_assert_ptr_nonnull(strstr(load_errors(""), "names a user but no "
	    "password"));
	/* A bad escape, %00 and a decoded control byte are refused. */
	setenv("POSTERN_UPSTREAM", "smtp://me:p%4@mail.example.org", 1);
	ck_assert_ptr_nonnull(strstr(load_errors(""), "bad user or password"));
	setenv("POSTERN_UPSTREAM", "smtp://me%00:p@mail.example.org", 1);
	ck_assert_ptr_nonnull(strstr(load_errors(""), "bad user or password"));
	setenv("POSTERN_UPSTREAM", "smtp://me:p%0a@mail.example.org", 1);
	ck_assert_ptr_nonnull(strstr(load_errors(""), "bad user or password"));
	unsetenv("POSTERN_UPSTREAM");
}
END_TEST

START_TEST(queue_and_rate_are_read)
{
	struct config *cfg = load_ok(
	    "queue = { retry = ( \"30s\", \"2m\" ); max_age = \"2d\";\n"
	    "  concurrency = 8; messages_per_connection = 10;\n"
	    "  breaker_failures = 5; breaker_backoff = \"30s\"; };\n"
	    "upstreams = ( { host = \"a.example\"; rate = \"600/h\";\n"
	    "  proxy = ( \"socks5://127.0.0.1:1080\" );\n"
	    "  timeouts = { proxy = \"5s\"; }; } );\n");

	ck_assert_uint_eq(cfg->queue.nretry, 2);
	ck_assert_uint_eq(cfg->queue.retry[0], 30);
	ck_assert_uint_eq(cfg->queue.retry[1], 120);
	ck_assert_uint_eq(cfg->queue.max_age_ms, 2ull * 86400 * 1000);
	ck_assert_uint_eq(cfg->queue.concurrency, 8);
	ck_assert_uint_eq(cfg->queue.per_connection, 10);
	ck_assert_uint_eq(cfg->queue.breaker_failures, 5);
	ck_assert_uint_eq(cfg->queue.breaker_backoff_ms, 30000);
	ck_assert_uint_eq(cfg->upstreams[0].rate_count, 600);
	ck_assert_uint_eq(cfg->upstreams[0].rate_per_ms, 3600000);
	ck_assert_uint_eq(cfg->upstreams[0].nproxies, 1);
	ck_assert(!cfg->upstreams[0].proxies[0].remote_resolve);
	ck_assert_uint_eq(cfg->upstreams[0].timeouts.proxy, 5000);
	config_unref(cfg);

	cfg = load_ok("upstreams = ( { host = \"a.example\";\n"
	    "  proxy = ( { url = \"socks5h://127.0.0.1:1080\";\n"
	    "    user = \"bob\"; password = \"s3cret\"; } ); } );\n");
	ck_assert_uint_eq(cfg->upstreams[0].nproxies, 1);
	ck_assert_str_eq(cfg->upstreams[0].proxies[0].user, "bob");
	ck_assert_str_eq(cfg->upstreams[0].proxies[0].password, "s3cret");
	config_unref(cfg);
}
END_TEST

START_TEST(references_keep_config_alive)
{
	struct config *cfg = load_ok("hostname = \"a.example\";\n");

	config_ref(cfg);
	config_unref(cfg);
	ck_assert_str_eq(cfg->hostname, "a.example");
	config_unref(cfg);
}
END_TEST

Suite *
unit_suite(void)
{
	Suite *s = suite_create("daemon/config");
	TCase *tc = tcase_create("config");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, defaults_when_file_is_empty);
	tcase_add_test(tc, full_file_is_read);
	tcase_add_test(tc, shipped_example_is_valid);
	tcase_add_loop_test(tc, each_error_names_line_and_key, 0, NELEMS(bad));
	tcase_add_test(tc, every_error_is_reported_at_once);
	tcase_add_test(tc, environment_overrides_file);
	tcase_add_test(tc, environment_errors_name_the_variable);
	tcase_add_test(tc, missing_file);
	tcase_add_test(tc, references_keep_config_alive);
	tcase_add_test(tc, upstream_is_read);
	tcase_add_test(tc, inline_password_needs_a_private_file);
	tcase_add_test(tc, upstream_from_environment);
	tcase_add_test(tc, queue_and_rate_are_read);
	suite_add_tcase(s, tc);
	return s;
}
