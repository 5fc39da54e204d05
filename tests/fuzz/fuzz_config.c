/*
 * fuzz_config.c: the configuration loader (daemon/shared/config.c) on a file.
 *
 * The input is written to a file in a private temporary directory, made
 * and removed for each input (libFuzzer may end without running atexit
 * handlers), and loaded with config_load(), as posternd and "postern
 * check-config" do.
 * The POSTERN_* environment is cleared once, so only the file counts.
 * Checked: a load either gives a configuration or at least one error,
 * each a non-empty line; what it gives frees cleanly (ASan's leak check
 * does the rest).
 *
 * Inputs that name "@include" or a path under /dev, /proc or /sys are
 * skipped: a configuration is trusted to point at real files, and reading
 * /dev/zero or a fifo would only hang the fuzzer.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "shared/config.h"
#include "shared/config_load.h"
#include "fuzz.h"

extern char	**environ;

static bool	config_skip(const uint8_t *data, size_t size);

static char	 config_tmp[48];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp;
	char name[128];
	size_t i, n;

	/* Only the file counts: drop every POSTERN_* variable. */
	for (i = 0; environ[i] != NULL;) {
		if (strncmp(environ[i], "POSTERN_", 8) != 0) {
			i++;
			continue;
		}
		n = strcspn(environ[i], "=");
		if (n >= sizeof(name))
			abort();
		memcpy(name, environ[i], n);
		name[n] = '\0';
		if (unsetenv(name) == -1)
			abort();
	}
	if ((tmp = getenv("TMPDIR")) == NULL || strlen(tmp) > 40)
		tmp = "/tmp";
	snprintf(config_tmp, sizeof(config_tmp), "%s", tmp);
	return 0;
}

static bool
config_skip(const uint8_t *data, size_t size)
{
	static const char *const bad[] = { "@include", "/dev", "/proc",
	    "/sys" };
	size_t i, n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = strlen(bad[i]);
		if (size >= n && memmem(data, size, bad[i], n) != NULL)
			return true;
	}
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL;
	struct config_errors errs;
	char dir[64], path[96];
	size_t i;
	int fd;

	if (config_skip(data, size))
		return 0;
	snprintf(dir, sizeof(dir), "%s/fuzz-config.XXXXXX", config_tmp);
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/postern.conf", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd == -1 || (size > 0 && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);

	if (config_load(path, true, &cfg, &errs) == 0) {
		FUZZ_CHECK(cfg != NULL && errs.count == 0);
		FUZZ_CHECK(cfg->spool_dir != NULL && cfg->spool_dir[0] == '/');
		FUZZ_CHECK(cfg->hostname != NULL);
		FUZZ_CHECK(cfg->nlisten > 0);
		config_unref(cfg);
	} else {
		FUZZ_CHECK(errs.count > 0);
		for (i = 0; i < errs.count; i++)
			FUZZ_CHECK(errs.lines[i] != NULL &&
			    errs.lines[i][0] != '\0');
	}
	config_errors_free(&errs);
	unlink(path);
	rmdir(dir);
	return 0;
}
