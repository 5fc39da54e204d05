/*
 * secret.c: fetching secrets; every buffer that held one is wiped.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "config.h"
#include "secret.h"

/* Keeps the first line of 'buf' (len bytes) as the secret. */
static int
first_line(char *buf, size_t len, const char *what, char **out,
    struct pst_err *err)
{
	char *nl;

	buf[len] = '\0';
	if ((nl = strpbrk(buf, "\r\n")) != NULL)
		*nl = '\0';
	if (buf[0] == '\0')
		return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
		    "%s gave an empty secret", what);
	if ((*out = strdup(buf)) == NULL)
		return pst_err_sys(err, PST_LOCAL, PST_STAGE_AUTH, ENOMEM,
		    "%s", what);
	return 0;
}

static int
read_file(const char *path, const char *what, char **out, struct pst_err *err)
{
	char buf[SECRET_MAX + 1];
	ssize_t n;
	size_t len = 0;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1)
		return pst_err_sys(err, PST_LOCAL, PST_STAGE_AUTH, errno,
		    "%s \"%s\"", what, path);
	while (len < SECRET_MAX &&
	    (n = read(fd, buf + len, SECRET_MAX - len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			close(fd);
			OPENSSL_cleanse(buf, len);
			return pst_err_sys(err, PST_LOCAL, PST_STAGE_AUTH,
			    errno, "%s \"%s\"", what, path);
		}
		len += (size_t)n;
	}
	close(fd);
	rc = first_line(buf, len, what, out, err);
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

static long
elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000 +
	    (now.tv_nsec - start->tv_nsec) / 1000000;
}

static int
run_command(const char *cmd, char **out, struct pst_err *err)
{
	char buf[SECRET_MAX + 1];
	struct timespec start;
	struct pollfd pfd;
	size_t len = 0;
	ssize_t n;
	pid_t pid;
	int fds[2], status, rc = -1;
	long left;

	if (pipe2(fds, O_CLOEXEC) == -1)
		return pst_err_sys(err, PST_LOCAL, PST_STAGE_AUTH, errno,
		    "password_command: pipe");
	if ((pid = fork()) == -1) {
		close(fds[0]);
		close(fds[1]);
		return pst_err_sys(err, PST_LOCAL, PST_STAGE_AUTH, errno,
		    "password_command: fork");
	}
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	clock_gettime(CLOCK_MONOTONIC, &start);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	for (;;) {
		left = SECRET_COMMAND_TIMEOUT_MS - elapsed_ms(&start);
		if (left <= 0) {
			kill(pid, SIGKILL);
			pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
			    "password_command timed out after %ds",
			    SECRET_COMMAND_TIMEOUT_MS / 1000);
			goto reap;
		}
		if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR) {
			kill(pid, SIGKILL);
			pst_err_sys(err, PST_LOCAL, PST_STAGE_AUTH, errno,
			    "password_command: poll");
			goto reap;
		}
		if (pfd.revents == 0)
			continue;
		n = read(fds[0], buf + len, SECRET_MAX - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0 || (len += (size_t)n) == SECRET_MAX)
			break;
	}
	rc = 0;
reap:
	close(fds[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		continue;
	if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		if (WIFEXITED(status))
			pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
			    "password_command exited with status %d",
			    WEXITSTATUS(status));
		else
			pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
			    "password_command was killed by signal %d",
			    WTERMSIG(status));
		rc = -1;
	}
	if (rc == 0)
		rc = first_line(buf, len, "password_command", out, err);
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

int
secret_load(const struct config_upstream *u, char **out, struct pst_err *err)
{
	const struct config_auth *a = &u->auth;
	const char *dir;
	char path[PATH_MAX];

	*out = NULL;
	if (a->password != NULL) {
		if ((*out = strdup(a->password)) == NULL)
			return pst_err_sys(err, PST_LOCAL, PST_STAGE_AUTH,
			    ENOMEM, "password");
		return 0;
	}
	if (a->password_file != NULL)
		return read_file(a->password_file, "password_file", out, err);
	if (a->password_command != NULL)
		return run_command(a->password_command, out, err);
	if (a->credential != NULL) {
		if ((dir = getenv("CREDENTIALS_DIRECTORY")) == NULL)
			return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
			    "credential \"%s\": CREDENTIALS_DIRECTORY is not "
			    "set (credentials come from systemd's "
			    "LoadCredential=)", a->credential);
		snprintf(path, sizeof(path), "%s/%s", dir, a->credential);
		return read_file(path, "credential", out, err);
	}
	return pst_err_set(err, PST_LOCAL, PST_STAGE_AUTH,
	    "upstream \"%s\" has no secret configured", u->name);
}

void
secret_free(char *secret)
{
	if (secret == NULL)
		return;
	OPENSSL_cleanse(secret, strlen(secret));
	free(secret);
}
