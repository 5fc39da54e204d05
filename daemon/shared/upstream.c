/*
 * upstream.c: connection parameters and the remembered TLS mode.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "upstream.h"

static uint32_t
ms32(uint64_t ms)
{
	return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

void
upstream_params(const struct config *cfg, const struct config_upstream *u,
    const char *secret, enum pst_learned remembered, size_t proxy,
    struct pst_negotiate_params *np, struct pst_creds *creds)
{
	struct pst_client_params *cp = &np->client;
	struct pst_err err;

	memset(np, 0, sizeof(*np));
	/* config_load() built the same plan once: these cannot fail now. */
	pst_dial_plan_init(&np->plan, u->host, u->port, &err);
	pst_dial_plan_set_bind(&np->plan, u->bind, u->bind6, &err);
	np->plan.timeouts.connect_ms = ms32(u->timeouts.connect);
	np->plan.timeouts.resolve_ms = ms32(u->timeouts.connect);
	np->plan.timeouts.proxy_ms = ms32(u->timeouts.proxy);
	/* One proxy per attempt: the list is for failover, not a chain. */
	if (u->nproxies > 0)
		pst_dial_plan_add_hop(&np->plan,
		    &u->proxies[proxy % u->nproxies], &err);
	np->mode = (enum pst_secmode)u->security;
	np->remembered = remembered;
	np->greeting_ms = ms32(u->timeouts.greeting);

	cp->helo = cfg->hostname;
	cp->ssl_ctx = u->ssl_ctx;
	cp->tls_policy = &u->tls;
	cp->tls_name = u->host;
	cp->timeouts.greeting_ms = ms32(u->timeouts.command);
	cp->timeouts.tls_ms = ms32(u->timeouts.tls);
	cp->timeouts.command_ms = ms32(u->timeouts.command);
	cp->timeouts.data_ms = ms32(u->timeouts.data);
	cp->timeouts.dot_ms = ms32(u->timeouts.dot);
	if (u->has_auth && secret != NULL) {
		creds->user = u->auth.user;
		creds->secret = secret;
		creds->kind = u->auth.token ? PST_CREDS_TOKEN :
		    PST_CREDS_PASSWORD;
		cp->creds = creds;
		cp->sasl_allowed = u->auth.mechanisms;
		cp->allow_plaintext = u->auth.allow_plaintext;
	}
}

bool
upstream_proxy_failed(const struct pst_err *err)
{
	switch (err->stage) {
	case PST_STAGE_PROXY:
	case PST_STAGE_CONNECT:
	case PST_STAGE_BIND:
	case PST_STAGE_RESOLVE:
		return true;
	default:
		return false;
	}
}

static void
memory_path(const char *spool_dir, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/state/upstream.%s", spool_dir, name);
}

enum pst_learned
upstream_memory_load(const char *spool_dir, const char *name)
{
	char path[PATH_MAX], word[32];
	ssize_t n;
	int fd;

	memory_path(spool_dir, name, path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return PST_LEARNED_UNKNOWN;
	n = read(fd, word, sizeof(word) - 1);
	close(fd);
	if (n <= 0)
		return PST_LEARNED_UNKNOWN;
	word[n] = '\0';
	if (strcmp(word, "plain\n") == 0)
		return PST_LEARNED_PLAIN;
	if (strcmp(word, "implicit\n") == 0)
		return PST_LEARNED_IMPLICIT;
	return PST_LEARNED_UNKNOWN;
}

int
upstream_memory_save(const char *spool_dir, const char *name,
    enum pst_learned learned)
{
	char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX + 16];
	const char *word = pst_learned_name(learned);
	struct stat st;
	int fd, saved;
	size_t len;
	bool ok;

	if (learned == PST_LEARNED_UNKNOWN)
		return 0;
	if (upstream_memory_load(spool_dir, name) == learned)
		return 0;
	if (stat(spool_dir, &st) == -1)
		return -1;
	snprintf(dir, sizeof(dir), "%s/state", spool_dir);
	if (mkdir(dir, 0700) == 0) {
		/* Run by root (postern probe): keep the daemon's ownership. */
		if (geteuid() == 0 && chown(dir, st.st_uid, st.st_gid) == -1)
			return -1;
	} else if (errno != EEXIST)
		return -1;
	memory_path(spool_dir, name, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd == -1)
		return -1;
	len = strlen(word);
	ok = write(fd, word, len) == (ssize_t)len && write(fd, "\n", 1) == 1 &&
	    (geteuid() != 0 || fchown(fd, st.st_uid, st.st_gid) == 0);
	saved = errno;
	if (close(fd) == -1 && ok) {
		ok = false;
		saved = errno;
	}
	if (ok && rename(tmp, path) == -1) {
		ok = false;
		saved = errno;
	}
	if (!ok) {
		unlink(tmp);
		errno = saved;
		return -1;
	}
	return 0;
}
