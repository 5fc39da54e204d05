/*
 * replay.c: a main() for fuzz targets in builds without libFuzzer.
 *
 * Each argument is a file or a directory of files (a seed corpus); every
 * file is handed to LLVMFuzzerTestOneInput() once, in name order, and
 * reported as one TAP test.  A target that finds a broken invariant
 * aborts, so the run fails; the sanitizers of an ASan build report the
 * rest.  The target's LLVMFuzzerInitialize(), when it has one, runs first.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define REPLAY_FILE_MAX	(4u << 20)

static int	replay_file(const char *path, int *n);
static int	replay_dir(const char *path, int *n);
static int	replay_cmp(const void *, const void *);

/* Targets without set-up code do not define it. */
#pragma weak LLVMFuzzerInitialize

static int
replay_file(const char *path, int *n)
{
	FILE *fp;
	uint8_t *buf;
	size_t len;

	if ((fp = fopen(path, "rb")) == NULL) {
		printf("not ok %d - %s: %s\n", ++*n, path, strerror(errno));
		return -1;
	}
	if ((buf = malloc(REPLAY_FILE_MAX)) == NULL) {
		fclose(fp);
		printf("not ok %d - %s: out of memory\n", ++*n, path);
		return -1;
	}
	len = fread(buf, 1, REPLAY_FILE_MAX, fp);
	fclose(fp);
	/* A copy of exactly 'len' bytes, so ASan sees reads past the end. */
	buf = realloc(buf, len > 0 ? len : 1);
	if (buf == NULL) {
		printf("not ok %d - %s: out of memory\n", ++*n, path);
		return -1;
	}
	fflush(stdout);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	printf("ok %d - %s\n", ++*n, path);
	fflush(stdout);
	return 0;
}

static int
replay_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
replay_dir(const char *path, int *n)
{
	DIR *d;
	struct dirent *de;
	char **names = NULL, **nn, full[4096];
	size_t count = 0, i;
	int rc = 0;

	if ((d = opendir(path)) == NULL) {
		printf("not ok %d - %s: %s\n", ++*n, path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((nn = realloc(names, (count + 1) * sizeof(*names))) ==
		    NULL || (nn[count] = strdup(de->d_name)) == NULL) {
			if (nn != NULL)
				names = nn;
			rc = -1;
			break;
		}
		names = nn;
		count++;
	}
	closedir(d);
	if (count > 0)
		qsort(names, count, sizeof(*names), replay_cmp);
	for (i = 0; i < count; i++) {
		snprintf(full, sizeof(full), "%s/%s", path, names[i]);
		if (replay_file(full, n) == -1)
			rc = -1;
		free(names[i]);
	}
	free(names);
	return rc;
}

int
main(int argc, char **argv)
{
	struct stat st;
	int i, n = 0, rc = 0;

	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == -1) {
			printf("not ok %d - %s: %s\n", ++n, argv[i],
			    strerror(errno));
			rc = -1;
		} else if (S_ISDIR(st.st_mode)) {
			if (replay_dir(argv[i], &n) == -1)
				rc = -1;
		} else if (replay_file(argv[i], &n) == -1)
			rc = -1;
	}
	printf("1..%d\n", n);
	return rc == 0 && n > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
