/*
 * faultshim.c: an LD_PRELOAD library for the tests that makes chosen
 * system calls fail with a chosen errno, so that the spool's answers to
 * disk trouble are checked against the same faults every time.  Built by
 * meson for the tests only; never installed.
 *
 * FAULTSHIM_RULES holds rules separated by ';', each
 *
 *	CALL:ERRNO[:OPTION]...
 *
 * CALL is one of the wrapped functions below, or a group:
 *	write	  write, pwrite, pwrite64, writev, pwritev, pwritev64
 *	read	  read, pread, pread64
 *	fsync	  fsync, fdatasync
 *	open	  open, open64, openat, openat64
 *	rename	  rename, renameat, renameat2
 *	mkdir	  mkdir, mkdirat
 *	link	  link, linkat
 *	unlink	  unlink, unlinkat
 *	fallocate posix_fallocate, posix_fallocate64
 * (a group's name stands for all of them; a single name such as
 * "fdatasync" or "renameat2" for that function only).
 * ERRNO is a name (EIO, ENOSPC, EACCES, EDQUOT, EROFS, EPERM, ENOENT,
 * EEXIST, EMFILE, ENOMEM, EXDEV, EINTR) or a number.
 * OPTIONs narrow which calls fail:
 *	path=GLOB  only calls whose path matches GLOB (fnmatch(3) without
 *		   flags, so '*' also matches '/').  The path is what the
 *		   call names, made absolute through its directory
 *		   descriptor, or for calls on a descriptor the file it
 *		   refers to (from /proc/self/fd).  A rename or link matches
 *		   when either of its paths does.
 *	nth=N	   fail only the N-th matching call (counting from 1)
 *	from=N	   fail the N-th matching call and every later one
 *		   (the default is from=1: every matching call)
 *	count=K	   fail at most K calls
 *	while=PATH the rule counts and fails calls only while the file PATH
 *		   exists, so that a test can arm it once the program is
 *		   where the test wants the fault (checked with a bare
 *		   faccessat system call)
 * FAULTSHIM_LOG, if set, names a file to which one line is appended per
 * injected failure: "faultshim: CALL PATH ERRNO", so that a test can see
 * the fault was met.
 *
 * Examples:
 *	fsync:EIO:path=*queue/?:nth=1	the first fsync of a bucket
 *	write:ENOSPC:path=*tmp/?*.body	every write of a body
 *	open:EACCES:path=*queue/?/?*.env	opening any queued envelope
 *
 * Thread-safe: the rules are read once, before main(), and never change;
 * the counters are atomic.  A failing call does nothing but set errno.
 */
#undef _FILE_OFFSET_BITS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_RULES	16
#define RULES_VAR	"FAULTSHIM_RULES"
#define LOG_VAR		"FAULTSHIM_LOG"

enum group {
	G_WRITE, G_READ, G_FSYNC, G_OPEN, G_RENAME, G_MKDIR, G_LINK, G_UNLINK,
	G_FALLOCATE,
};

struct rule {
	enum group	 group;
	char		 call[16];	/* one function, or "" for the group */
	int		 err;
	char		 path[PATH_MAX];	/* glob, or "" for any */
	char		 arm[PATH_MAX];	/* while=, or "" for always */
	unsigned long	 from, nth, count;
	unsigned long	 seen;		/* matching calls (atomic) */
	unsigned long	 failed;	/* failures injected (atomic) */
};

static struct rule	rules[MAX_RULES];
static int		nrules;
static char		log_path[PATH_MAX];

static const struct {
	const char	*name;
	enum group	 group;
} groups[] = {
	{ "write", G_WRITE }, { "read", G_READ }, { "fsync", G_FSYNC },
	{ "open", G_OPEN }, { "rename", G_RENAME }, { "mkdir", G_MKDIR },
	{ "link", G_LINK }, { "unlink", G_UNLINK },
	{ "fallocate", G_FALLOCATE },
};

static const struct {
	const char	*name;
	enum group	 group;
} calls[] = {
	{ "pwrite", G_WRITE }, { "pwrite64", G_WRITE }, { "writev", G_WRITE },
	{ "pwritev", G_WRITE }, { "pwritev64", G_WRITE },
	{ "posix_fallocate", G_FALLOCATE },
	{ "posix_fallocate64", G_FALLOCATE },
	{ "pread", G_READ }, { "pread64", G_READ }, { "fdatasync", G_FSYNC },
	{ "open64", G_OPEN }, { "openat", G_OPEN }, { "openat64", G_OPEN },
	{ "renameat", G_RENAME }, { "renameat2", G_RENAME },
	{ "mkdirat", G_MKDIR }, { "linkat", G_LINK }, { "unlinkat", G_UNLINK },
};

static const struct {
	const char	*name;
	int		 err;
} errnos[] = {
	{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EACCES", EACCES },
	{ "EDQUOT", EDQUOT }, { "EROFS", EROFS }, { "EPERM", EPERM },
	{ "ENOENT", ENOENT }, { "EEXIST", EEXIST }, { "EMFILE", EMFILE },
	{ "ENOMEM", ENOMEM }, { "EXDEV", EXDEV }, { "EINTR", EINTR },
};

static void
die(const char *what, const char *text)
{
	fprintf(stderr, "faultshim: %s: \"%s\"\n", what, text);
	_exit(127);
}

static void
parse_option(struct rule *r, const char *opt)
{
	const char *v = strchr(opt, '=');
	char *end;
	unsigned long n;

	if (v == NULL)
		die("option without a value", opt);
	v++;
	if (strncmp(opt, "path=", 5) == 0) {
		snprintf(r->path, sizeof(r->path), "%s", v);
		return;
	}
	if (strncmp(opt, "while=", 6) == 0) {
		snprintf(r->arm, sizeof(r->arm), "%s", v);
		return;
	}
	n = strtoul(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n == 0)
		die("not a positive number", opt);
	if (strncmp(opt, "nth=", 4) == 0)
		r->nth = n;
	else if (strncmp(opt, "from=", 5) == 0)
		r->from = n;
	else if (strncmp(opt, "count=", 6) == 0)
		r->count = n;
	else
		die("unknown option", opt);
}

static void
parse_rule(char *text)
{
	struct rule *r;
	char *field, *save = NULL, *end;
	size_t i;
	long e;

	if (nrules == MAX_RULES)
		die("too many rules at", text);
	r = &rules[nrules];
	memset(r, 0, sizeof(*r));
	r->from = 1;
	if ((field = strtok_r(text, ":", &save)) == NULL)
		die("empty rule", text);
	for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		if (strcmp(field, groups[i].name) == 0)
			break;
	if (i < sizeof(groups) / sizeof(groups[0])) {
		r->group = groups[i].group;
	} else {
		for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
			if (strcmp(field, calls[i].name) == 0)
				break;
		if (i == sizeof(calls) / sizeof(calls[0]))
			die("unknown call", field);
		r->group = calls[i].group;
		snprintf(r->call, sizeof(r->call), "%s", field);
	}
	if ((field = strtok_r(NULL, ":", &save)) == NULL)
		die("rule without an errno", text);
	for (i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (strcmp(field, errnos[i].name) == 0)
			r->err = errnos[i].err;
	if (r->err == 0) {
		e = strtol(field, &end, 10);
		if (*field == '\0' || *end != '\0' || e <= 0)
			die("unknown errno", field);
		r->err = (int)e;
	}
	while ((field = strtok_r(NULL, ":", &save)) != NULL)
		parse_option(r, field);
	nrules++;
}

__attribute__((constructor)) static void
faultshim_init(void)
{
	const char *env = getenv(RULES_VAR), *logp = getenv(LOG_VAR);
	char *copy, *rule, *save = NULL;

	if (logp != NULL)
		snprintf(log_path, sizeof(log_path), "%s", logp);
	if (env == NULL || *env == '\0')
		return;
	if ((copy = strdup(env)) == NULL)
		die("out of memory for", env);
	for (rule = strtok_r(copy, ";", &save); rule != NULL;
	    rule = strtok_r(NULL, ";", &save))
		parse_rule(rule);
	free(copy);
}

/* The real function; resolved on first use (the same answer each time). */
static void *
real(void **slot, const char *name)
{
	void *fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);

	if (fn == NULL) {
		if ((fn = dlsym(RTLD_NEXT, name)) == NULL)
			die("no such function", name);
		__atomic_store_n(slot, fn, __ATOMIC_RELEASE);
	}
	return fn;
}

/*
 * Our own prototype is the real function's; dlsym()'s object pointer
 * becomes a function pointer through memcpy, as POSIX allows.
 */
#define REAL(name)							\
	static void *slot_##name;					\
	void *addr_##name = real(&slot_##name, #name);			\
	__typeof__(&name) real_##name;					\
	memcpy(&real_##name, &addr_##name, sizeof(real_##name))

/* 'name' made absolute through 'dirfd'. */
static void
at_path(int dirfd, const char *name, char *out, size_t len)
{
	char link[64], dir[PATH_MAX];
	ssize_t n;

	out[0] = '\0';
	if (name == NULL)
		return;
	if (name[0] == '/' || dirfd == AT_FDCWD) {
		if (name[0] == '/' || getcwd(dir, sizeof(dir)) == NULL)
			snprintf(out, len, "%s", name);
		else
			snprintf(out, len, "%s/%s", dir, name);
		return;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
	if ((n = readlink(link, dir, sizeof(dir) - 1)) <= 0)
		return;
	dir[n] = '\0';
	snprintf(out, len, "%s/%s", dir, name);
}

static void
fd_path(int fd, char *out, size_t len)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, out, len - 1)) <= 0)
		n = 0;
	out[n] = '\0';
}

/* Appended through the kernel: write() and open() here are wrapped. */
static void
log_fault(const char *call, const char *path, int err)
{
	char line[PATH_MAX + 128];
	int fd, n;

	if (log_path[0] == '\0')
		return;
	n = snprintf(line, sizeof(line), "faultshim: %s %s %d\n", call,
	    path[0] != '\0' ? path : "-", err);
	if (n <= 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	fd = (int)syscall(SYS_openat, AT_FDCWD, log_path,
	    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd == -1)
		return;
	(void)syscall(SYS_write, fd, line, (size_t)n);
	(void)syscall(SYS_close, fd);
}

static bool
applies(const struct rule *r, enum group g, const char *call)
{
	return r->group == g && (r->call[0] == '\0' ||
	    strcmp(r->call, call) == 0);
}

/* Whether any rule could fail this call: the paths cost a readlink. */
static bool
armed(enum group g, const char *call)
{
	int i;

	for (i = 0; i < nrules; i++)
		if (applies(&rules[i], g, call))
			return true;
	return false;
}

static bool
path_matches(const struct rule *r, const char *p1, const char *p2)
{
	if (r->path[0] == '\0')
		return true;
	return (p1 != NULL && fnmatch(r->path, p1, 0) == 0) ||
	    (p2 != NULL && fnmatch(r->path, p2, 0) == 0);
}

/* Whether a rule's while= file exists; errno is left as it was. */
static bool
arm_exists(const char *path)
{
	int saved = errno;
	bool there;

	there = syscall(SYS_faccessat, AT_FDCWD, path, F_OK) == 0;
	errno = saved;
	return there;
}

/* Whether this call fails; errno is set when it does. */
static bool
inject(enum group g, const char *call, const char *p1, const char *p2)
{
	struct rule *r;
	unsigned long seen, failed;
	bool hit;
	int i;

	for (i = 0; i < nrules; i++) {
		r = &rules[i];
		if (!applies(r, g, call) || !path_matches(r, p1, p2))
			continue;
		if (r->arm[0] != '\0' && !arm_exists(r->arm))
			continue;
		seen = __atomic_add_fetch(&r->seen, 1, __ATOMIC_RELAXED);
		hit = r->nth != 0 ? seen == r->nth : seen >= r->from;
		if (hit && r->count != 0) {
			failed = __atomic_add_fetch(&r->failed, 1,
			    __ATOMIC_RELAXED);
			hit = failed <= r->count;
		}
		if (!hit)
			continue;
		log_fault(call, p1 != NULL ? p1 : "", r->err);
		errno = r->err;
		return true;
	}
	return false;
}

static bool
fail_fd(enum group g, const char *call, int fd)
{
	char path[PATH_MAX];

	if (!armed(g, call))
		return false;
	fd_path(fd, path, sizeof(path));
	return inject(g, call, path, NULL);
}

static bool
fail_at(enum group g, const char *call, int dirfd, const char *name)
{
	char path[PATH_MAX];

	if (!armed(g, call))
		return false;
	at_path(dirfd, name, path, sizeof(path));
	return inject(g, call, path, NULL);
}

static bool
fail_at2(enum group g, const char *call, int fd1, const char *n1, int fd2,
    const char *n2)
{
	char p1[PATH_MAX], p2[PATH_MAX];

	if (!armed(g, call))
		return false;
	at_path(fd1, n1, p1, sizeof(p1));
	at_path(fd2, n2, p2, sizeof(p2));
	return inject(g, call, p1, p2);
}

/*
 * The wrappers.
 */

ssize_t
write(int fd, const void *buf, size_t len)
{
	REAL(write);

	if (fail_fd(G_WRITE, "write", fd))
		return -1;
	return real_write(fd, buf, len);
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	REAL(pwrite);

	if (fail_fd(G_WRITE, "pwrite", fd))
		return -1;
	return real_pwrite(fd, buf, len, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	REAL(pwrite64);

	if (fail_fd(G_WRITE, "pwrite64", fd))
		return -1;
	return real_pwrite64(fd, buf, len, off);
}

ssize_t
writev(int fd, const struct iovec *iov, int n)
{
	REAL(writev);

	if (fail_fd(G_WRITE, "writev", fd))
		return -1;
	return real_writev(fd, iov, n);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	REAL(pwritev);

	if (fail_fd(G_WRITE, "pwritev", fd))
		return -1;
	return real_pwritev(fd, iov, n, off);
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int n, off64_t off)
{
	REAL(pwritev64);

	if (fail_fd(G_WRITE, "pwritev64", fd))
		return -1;
	return real_pwritev64(fd, iov, n, off);
}

/* posix_fallocate() reports its error as its value, not in errno. */
int
posix_fallocate(int fd, off_t off, off_t len)
{
	int saved = errno, e;

	REAL(posix_fallocate);

	if (fail_fd(G_FALLOCATE, "posix_fallocate", fd)) {
		e = errno;
		errno = saved;
		return e;
	}
	return real_posix_fallocate(fd, off, len);
}

int
posix_fallocate64(int fd, off64_t off, off64_t len)
{
	int saved = errno, e;

	REAL(posix_fallocate64);

	if (fail_fd(G_FALLOCATE, "posix_fallocate64", fd)) {
		e = errno;
		errno = saved;
		return e;
	}
	return real_posix_fallocate64(fd, off, len);
}

ssize_t
read(int fd, void *buf, size_t len)
{
	REAL(read);

	if (fail_fd(G_READ, "read", fd))
		return -1;
	return real_read(fd, buf, len);
}

ssize_t
pread(int fd, void *buf, size_t len, off_t off)
{
	REAL(pread);

	if (fail_fd(G_READ, "pread", fd))
		return -1;
	return real_pread(fd, buf, len, off);
}

ssize_t
pread64(int fd, void *buf, size_t len, off64_t off)
{
	REAL(pread64);

	if (fail_fd(G_READ, "pread64", fd))
		return -1;
	return real_pread64(fd, buf, len, off);
}

int
fsync(int fd)
{
	REAL(fsync);

	if (fail_fd(G_FSYNC, "fsync", fd))
		return -1;
	return real_fsync(fd);
}

int
fdatasync(int fd)
{
	REAL(fdatasync);

	if (fail_fd(G_FSYNC, "fdatasync", fd))
		return -1;
	return real_fdatasync(fd);
}

/* The mode is there only with O_CREAT or O_TMPFILE. */
static mode_t
open_mode(int flags, va_list ap)
{
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		return (mode_t)va_arg(ap, int);
	return 0;
}

int
open(const char *path, int flags, ...)
{
	REAL(open);
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	if (fail_at(G_OPEN, "open", AT_FDCWD, path))
		return -1;
	return real_open(path, flags, mode);
}

int
open64(const char *path, int flags, ...)
{
	REAL(open64);
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	if (fail_at(G_OPEN, "open64", AT_FDCWD, path))
		return -1;
	return real_open64(path, flags, mode);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	REAL(openat);
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	if (fail_at(G_OPEN, "openat", dirfd, path))
		return -1;
	return real_openat(dirfd, path, flags, mode);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	REAL(openat64);
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	if (fail_at(G_OPEN, "openat64", dirfd, path))
		return -1;
	return real_openat64(dirfd, path, flags, mode);
}

int
rename(const char *from, const char *to)
{
	REAL(rename);

	if (fail_at2(G_RENAME, "rename", AT_FDCWD, from, AT_FDCWD, to))
		return -1;
	return real_rename(from, to);
}

int
renameat(int fromfd, const char *from, int tofd, const char *to)
{
	REAL(renameat);

	if (fail_at2(G_RENAME, "renameat", fromfd, from, tofd, to))
		return -1;
	return real_renameat(fromfd, from, tofd, to);
}

int
renameat2(int fromfd, const char *from, int tofd, const char *to,
    unsigned int flags)
{
	REAL(renameat2);

	if (fail_at2(G_RENAME, "renameat2", fromfd, from, tofd, to))
		return -1;
	return real_renameat2(fromfd, from, tofd, to, flags);
}

int
mkdir(const char *path, mode_t mode)
{
	REAL(mkdir);

	if (fail_at(G_MKDIR, "mkdir", AT_FDCWD, path))
		return -1;
	return real_mkdir(path, mode);
}

int
mkdirat(int dirfd, const char *path, mode_t mode)
{
	REAL(mkdirat);

	if (fail_at(G_MKDIR, "mkdirat", dirfd, path))
		return -1;
	return real_mkdirat(dirfd, path, mode);
}

int
link(const char *from, const char *to)
{
	REAL(link);

	if (fail_at2(G_LINK, "link", AT_FDCWD, from, AT_FDCWD, to))
		return -1;
	return real_link(from, to);
}

int
linkat(int fromfd, const char *from, int tofd, const char *to, int flags)
{
	REAL(linkat);

	if (fail_at2(G_LINK, "linkat", fromfd, from, tofd, to))
		return -1;
	return real_linkat(fromfd, from, tofd, to, flags);
}

int
unlink(const char *path)
{
	REAL(unlink);

	if (fail_at(G_UNLINK, "unlink", AT_FDCWD, path))
		return -1;
	return real_unlink(path);
}

int
unlinkat(int dirfd, const char *path, int flags)
{
	REAL(unlinkat);

	if (fail_at(G_UNLINK, "unlinkat", dirfd, path))
		return -1;
	return real_unlinkat(dirfd, path, flags);
}
