/*
 * spool.h: postern's on-disk queue.
 *
 * The promise: a message postern answered 250 for (or for which sendmail
 * exited 0) is on stable storage; a message never acknowledged leaves
 * nothing behind in the queue after recovery.
 *
 * FORMAT (spool format 1; doc/spool.md says the same at more length)
 *
 *   SPOOL/format            "postern-spool 1\n": the layout version
 *   SPOOL/lock              daemon lock: flock()ed by the one posternd
 *                           that owns the spool, holds its pid
 *   SPOOL/tmp/              files being written; never read as mail
 *   SPOOL/queue/0 .. f/     committed messages, bucket = last id digit
 *   SPOOL/queue/X/ID.body   the message as received: immutable
 *   SPOOL/queue/X/ID.env    its envelope: replaced whole, never edited
 *   SPOOL/quarantine/       files recovery set aside, original names
 *
 * ID: 16 lower-case hex digits, a 64-bit number whose high 44 bits are
 * the arrival time in milliseconds since 1970 and whose low 20 bits are
 * random.  Ids sort by time as strings, are safe as file names, and are
 * never reused: a process never hands out the same id twice, and two
 * processes picking the same one collide on O_EXCL or on a rename that
 * refuses to replace, which fails that commit (temporary error).
 *
 * ENVELOPE RECORD: text, one "key value" per line, LF terminated.
 *   - line 1 is exactly "postern-envelope 1";
 *   - a key is [a-z0-9.-]+, then one space and the value (a key alone
 *     means an empty value);
 *   - values are escaped: bytes 0x20-0x7e other than '%' stand for
 *     themselves, every other byte is %XX (upper-case hex), the only
 *     accepted form; decoded values never hold NUL, CR, LF or other
 *     control characters;
 *   - the last line is "end LEN SUM": LEN is the decimal number of bytes
 *     before that line and SUM the FNV-1a 64-bit hash of them as 16
 *     lower-case hex digits: pst_fnv1a64() of common/codec.h, the
 *     standard offset basis 0xcbf29ce484222325 and prime 0x100000001b3,
 *     the values every spool was written with (a unit test reads an
 *     envelope written before and checks its bytes).  Never change them.
 *     A file that does not end with a valid end line is torn;
 *   - "rcpt ADDR" starts a recipient; "rcpt.*" keys that follow describe
 *     it.  Unknown keys are an error unless they start with "x-" (or
 *     "rcpt.x-"): those are optional and ignored (not kept on rewrite).
 *   Keys: id, arrival, size, origin, body, smtputf8, x-smtputf8-needed
 *   (an "x-" key that this version knows), ret, envid, sender,
 *   attempts, next-attempt, last-code, last-esc, last-error, held, rcpt,
 *   rcpt.state, rcpt.notify, rcpt.orcpt, rcpt.code, rcpt.esc, rcpt.error.
 *   id, arrival, size, sender, one rcpt and each rcpt.state are required.
 *
 * COMMIT: body and envelope are written in tmp/ (O_CREAT|O_EXCL, the
 * spool's file mode, flock()ed while being written) and fsync()ed; the
 * body is renamed into queue/X/, the bucket directory fsync()ed, then the
 * envelope is renamed beside it (the commit point) and the bucket fsync()ed
 * again.  Renames into queue/ never replace a file.  An envelope is only
 * ever replaced whole (tmp, fsync, rename over, fsync directory) by the
 * holder of its lock (flock on ID.env); removal unlinks the envelope
 * first, fsyncs, then unlinks the body.  So a queue directory never holds
 * an envelope without its body unless something outside postern broke it.
 *
 * RECOVERY (pst_spool_open() with PST_SPOOL_RECOVER, under the daemon
 * lock): any unlocked file in tmp/ is garbage and removed; a body without
 * an envelope was never committed and is removed; an envelope without a
 * body, an envelope that does not decode (bad version, torn, bad value,
 * wrong id), anything that is not a regular file (symlinks are never
 * followed) and unexpected names in queue/X/ are moved to quarantine/.
 * Each action is reported to the caller; the rest of the queue is left
 * alone.
 *
 * THREADS: a struct pst_spool may be used from several threads at once
 * (the loop and pool workers) except pst_spool_msg_begin() and
 * pst_spool_close(), which belong to one thread.  The library never logs
 * and never holds a lock across calls except through the objects it
 * returns.  Errors come as struct pst_err with stage PST_STAGE_SPOOL:
 * PST_TEMP for disk trouble (ENOSPC, EDQUOT, EIO, EROFS, no memory or
 * descriptors), PST_LOCAL for configuration and bugs.
 */
#ifndef PST_SPOOL_H
#define PST_SPOOL_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct evbuffer;
struct pst_err;
struct pst_pool;

#define PST_SPOOL_FORMAT	2	/* layout version (SPOOL/format) */
#define PST_SPOOL_ENV_VERSION	1	/* envelope record version */
#define PST_SPOOL_ID_LEN	16	/* hex digits in an id */
#define PST_SPOOL_BUCKETS	16	/* queue/0 .. queue/f */

/* Bounds on what an envelope may hold. */
#define PST_SPOOL_VALUE_MAX	1000		/* decoded bytes per value */
#define PST_SPOOL_LINE_MAX	4096		/* encoded bytes per line */
#define PST_SPOOL_RCPT_MAX	100000		/* recipients per message */
#define PST_SPOOL_ENV_MAX	(32u << 20)	/* bytes per envelope file */

/* Message writing: flush when this much is buffered; refuse beyond max. */
#define PST_SPOOL_FLUSH_BYTES	(256u << 10)
#define PST_SPOOL_BUFFER_MAX	(16u * PST_SPOOL_FLUSH_BYTES)

/*
 * Envelope.
 */

enum pst_spool_rcpt_state {
	PST_SPOOL_RCPT_PENDING = 0,	/* not tried yet */
	PST_SPOOL_RCPT_DEFERRED,	/* tried, temporary failure */
	PST_SPOOL_RCPT_DELIVERED,	/* accepted upstream: done */
	PST_SPOOL_RCPT_FAILED,		/* permanent failure: done, bounce */
	PST_SPOOL_RCPT__COUNT
};

/* RFC 3461 §4.1 NOTIFY; 0 means the client gave none. */
#define PST_SPOOL_NOTIFY_NEVER		0x01
#define PST_SPOOL_NOTIFY_SUCCESS	0x02
#define PST_SPOOL_NOTIFY_FAILURE	0x04
#define PST_SPOOL_NOTIFY_DELAY		0x08

/* RFC 3461 §4.3 RET. */
enum pst_spool_ret {
	PST_SPOOL_RET_UNSET = 0,	/* not given */
	PST_SPOOL_RET_FULL,		/* RET=FULL */
	PST_SPOOL_RET_HDRS,		/* RET=HDRS */
};

/* Message flags (struct pst_spool_env 'flags'). */
#define PST_SPOOL_F_8BITMIME	0x01	/* BODY=8BITMIME (RFC 6152) */
#define PST_SPOOL_F_SMTPUTF8	0x02	/* SMTPUTF8 (RFC 6531) */
/*
 * Whether the message needs SMTPUTF8 (RFC 6531 §3.4: UTF-8 in an envelope
 * address or in the header section), as its writer found: NEEDED only
 * with CHECKED.  Without CHECKED nobody looked (an envelope from before
 * this was recorded): a reader that must know looks at the message.
 */
#define PST_SPOOL_F_UTF8_CHECKED 0x04
#define PST_SPOOL_F_UTF8_NEEDED	0x08

struct pst_spool_rcpt {
	char			*addr;		/* forward path, no <> */
	char			*orcpt;		/* ORCPT as given, or NULL */
	unsigned		 notify;	/* PST_SPOOL_NOTIFY_* bits */
	enum pst_spool_rcpt_state state;
	int			 code;		/* last reply code, 0 if none */
	char			 esc[16];	/* last enhanced code or "" */
	char			*error;		/* last error text, or NULL */
};

struct pst_spool_env {
	char			 id[PST_SPOOL_ID_LEN + 1];
	time_t			 arrival;	/* set by commit if 0 */
	uint64_t		 size;		/* body bytes, set by commit */
	char			*origin;	/* "smtp [ip]:port", "sendmail
						   uid=N", or NULL */
	unsigned		 flags;		/* PST_SPOOL_F_* */
	enum pst_spool_ret	 ret;
	char			*envid;		/* ENVID, or NULL */
	char			*sender;	/* reverse path, "" for <> */
	unsigned		 attempts;	/* delivery attempts made */
	time_t			 next_attempt;	/* 0: as soon as possible */
	int			 last_code;	/* message-level last error */
	char			 last_esc[16];
	char			*last_error;
	bool			 held;		/* operator hold */
	struct pst_spool_rcpt	*rcpts;
	size_t			 nrcpts;
	size_t			 rcpts_cap;	/* allocated; library use */
};

/*
 * pst_spool_env_new()
 * An empty envelope (no id, no sender, no recipients).  Free it with
 * pst_spool_env_free().  NULL with 'err' (PST_TEMP) when out of memory.
 */
struct pst_spool_env *pst_spool_env_new(struct pst_err *err);

/*
 * pst_spool_env_free()
 * Frees 'env' and every string it owns.  NULL is fine.
 */
void	pst_spool_env_free(struct pst_spool_env *env);

/*
 * pst_spool_env_set_sender(), pst_spool_env_set_envid(),
 * pst_spool_env_set_origin()
 * Copy 'value' into the envelope after checking it: at most
 * PST_SPOOL_VALUE_MAX bytes, no control characters.  The sender may be ""
 * (the null reverse path); envid and origin may be NULL to clear them.
 * Return 0, or -1 with 'err' (PST_LOCAL for a bad value, PST_TEMP for
 * memory) and the envelope unchanged.
 */
int	pst_spool_env_set_sender(struct pst_spool_env *env, const char *value,
	    struct pst_err *err);
int	pst_spool_env_set_envid(struct pst_spool_env *env, const char *value,
	    struct pst_err *err);
int	pst_spool_env_set_origin(struct pst_spool_env *env, const char *value,
	    struct pst_err *err);

/*
 * pst_spool_env_add_rcpt()
 * Appends a pending recipient: 'addr' non-empty, 'orcpt' NULL or a
 * value as above, 'notify' a valid NOTIFY set (NEVER alone, or any of
 * SUCCESS, FAILURE, DELAY, or 0).  At most PST_SPOOL_RCPT_MAX.  Returns
 * 0, or -1 with 'err' and the envelope unchanged.
 */
int	pst_spool_env_add_rcpt(struct pst_spool_env *env, const char *addr,
	    unsigned notify, const char *orcpt, struct pst_err *err);

/*
 * pst_spool_env_set_result()
 * Records the outcome of an attempt for recipient 'i': new state, the
 * reply code (kept only if 200-599), the enhanced status code (kept only
 * if it looks like one) and the text, which is untrusted: control
 * characters become '?' and it is cut to PST_SPOOL_VALUE_MAX bytes.
 * 'esc' and 'text' may be NULL.  Returns 0, or -1 with 'err' (bad index,
 * memory).
 */
int	pst_spool_env_set_result(struct pst_spool_env *env, size_t i,
	    enum pst_spool_rcpt_state state, int code, const char *esc,
	    const char *text, struct pst_err *err);

/*
 * pst_spool_env_set_error()
 * The same for the message as a whole (e.g. "connection refused" before
 * any recipient was tried): sets last-code, last-esc and last-error.
 */
int	pst_spool_env_set_error(struct pst_spool_env *env, int code,
	    const char *esc, const char *text, struct pst_err *err);

/*
 * pst_spool_env_pending()
 * Number of recipients not yet final (pending or deferred).  Zero means
 * the message is done and can be removed (after any bounce).
 */
size_t	pst_spool_env_pending(const struct pst_spool_env *env);

/*
 * pst_spool_env_utf8_addrs()
 * Whether the sender or a recipient address holds a byte above 127 (an
 * internationalized address: RFC 6531 §3.4).
 */
bool	pst_spool_env_utf8_addrs(const struct pst_spool_env *env);

/*
 * pst_spool_rcpt_state_name()
 * "pending", "deferred", "delivered", "failed".
 */
const char *pst_spool_rcpt_state_name(enum pst_spool_rcpt_state state);

/*
 * pst_spool_env_encode()
 * Writes 'env' as an envelope record into a new buffer '*out' of '*len'
 * bytes (the caller frees it).  Every value is checked again: a control
 * character (CR, LF...), an oversized value, a missing id or sender, no
 * recipient, an invalid state or NOTIFY set make it fail with PST_LOCAL:
 * a record is never written that the decoder would refuse.  Returns 0 or
 * -1 with 'err'.
 */
int	pst_spool_env_encode(const struct pst_spool_env *env, char **out,
	    size_t *len, struct pst_err *err);

/*
 * pst_spool_env_decode()
 * Parses an envelope record of 'len' bytes.  Refuses (NULL, PST_LOCAL,
 * a text naming the line and the trouble) a wrong first line or version,
 * a torn record (no end line, wrong length or checksum, bytes after it),
 * unknown keys, repeated keys, bad or overlong values, missing required
 * keys and more than PST_SPOOL_RCPT_MAX recipients.  Returns a new
 * envelope the caller frees.
 */
struct pst_spool_env *pst_spool_env_decode(const char *buf, size_t len,
	    struct pst_err *err);

/*
 * Spool.
 */

/* pst_spool_open() flags */
#define PST_SPOOL_CREATE	0x01	/* create missing directories */
#define PST_SPOOL_DAEMON	0x02	/* take the daemon lock */
#define PST_SPOOL_RECOVER	0x04	/* recover (implies DAEMON) */

enum pst_spool_action {
	PST_SPOOL_REMOVED = 0,	/* deleted: never acknowledged */
	PST_SPOOL_QUARANTINED,	/* moved to quarantine/ */
	PST_SPOOL_SKIPPED,	/* left where it is, not a message */
};

/* One thing recovery or a scan found wrong, for the caller to log. */
struct pst_spool_problem {
	enum pst_spool_action	 action;
	const char		*path;	/* relative to the spool: "tmp/x" */
	const char		*moved_to; /* under quarantine/, or NULL */
	const char		*reason; /* "torn envelope: no end line" */
};

typedef void (*pst_spool_problem_fn)(const struct pst_spool_problem *p,
    void *arg);

struct pst_spool_opts {
	unsigned		 flags;		/* PST_SPOOL_* */
	mode_t			 file_mode;	/* 0 = 0600; 0600 or 0640 */
	mode_t			 dir_mode;	/* 0 = 0700; no "other" bits,
						   02000 allowed */
	pst_spool_problem_fn	 problem;	/* may be NULL */
	void			*problem_arg;
	uint64_t		 segment_bytes;	/* log segments; 0: 64 MiB,
						   less on small volumes */
};

struct pst_spool;

/*
 * pst_spool_open()
 * Opens the spool in directory 'dir' (which may be a symlink; nothing
 * under it may be).  With PST_SPOOL_CREATE the directory, its
 * subdirectories and the format file are created when missing.  With
 * PST_SPOOL_DAEMON the daemon lock is taken without waiting; if another
 * process holds it, the call fails with "... is in use by posternd (pid
 * N)".  With PST_SPOOL_RECOVER recovery (see FORMAT) runs before it
 * returns and every file it removes or moves is reported through
 * 'opts->problem'.  'opts' may be NULL for defaults.  Subdirectories
 * writable by others, a wrong format file and a missing layout are
 * PST_LOCAL errors.  Blocking.  Returns NULL with 'err' on failure.
 */
struct pst_spool *pst_spool_open(const char *dir,
	    const struct pst_spool_opts *opts, struct pst_err *err);

/*
 * pst_spool_start()
 * For the daemon, after opening with PST_SPOOL_DAEMON: starts the log
 * writer, a thread reporting to 'base' (evthread_use_pthreads() first).
 * From then on pst_spool_msg_commit() appends to the log, and the
 * changes made through locks are written in its batches.  Without it,
 * commits become drops (as sendmail's) and changes are written on the
 * caller's thread.  Returns 0 or -1 with 'err'.
 */
struct event_base;
int	pst_spool_start(struct pst_spool *spool, struct event_base *base,
	    struct pst_err *err);

/*
 * pst_spool_stop()
 * Writes what the log writer still has and stops it, running the
 * callbacks of its last batches; on the loop thread, before the objects
 * those callbacks reach are freed.  Commits afterwards become drops.
 */
void	pst_spool_stop(struct pst_spool *spool);

/*
 * pst_spool_maintain()
 * Copies forward what little still lives in the oldest segment of the
 * log once two newer ones exist (a message deferred for days must not
 * keep every later segment on the disk), then gives back the segments
 * nothing needs any more.  Blocking: run it on the pool, now and then.
 * Returns 0 or -1 with 'err'.
 */
int	pst_spool_maintain(struct pst_spool *spool, struct pst_err *err);

/*
 * pst_spool_close()
 * Releases the daemon lock (if held) and frees 'spool'.  Every message
 * object and lock taken from it must be gone, and no pool job of it
 * outstanding (free the pool first).  With a writer started, on the
 * loop thread: what the writer still has runs its callbacks here.  NULL
 * is fine.
 */
void	pst_spool_close(struct pst_spool *spool);

/*
 * pst_spool_path()
 * The directory given to pst_spool_open().
 */
const char *pst_spool_path(const struct pst_spool *spool);

/*
 * pst_spool_daemon()
 * Whether a daemon holds this spool's lock: 1 (and '*pid' its pid when
 * the lock file names one, else 0), 0 when none does or when this very
 * spool object holds it, -1 with 'err'.
 */
int	pst_spool_daemon(struct pst_spool *spool, pid_t *pid,
	    struct pst_err *err);

/*
 * pst_spool_id_valid()
 * Whether 's' has the form of a queue id (16 lower-case hex digits).  Use
 * before passing operator input on: every function taking an id refuses
 * other strings, so no id can name a path outside the queue.
 */
bool	pst_spool_id_valid(const char *s);

/*
 * pst_spool_space()
 * Whether the spool's file system can take a message of 'need' bytes:
 * at least need + 'reserve' bytes free for an unprivileged writer and, on
 * file systems that count inodes, at least 'reserve_inodes' + 2 inodes.
 * PST_SPOOL_RESERVE_AUTO picks the defaults: bytes 1% of the file system
 * but at least 64 MiB and at most 1 GiB; inodes 1% of them, at least
 * 1000.  Either reserve, given or picked, is at most an eighth of the
 * file system's bytes or inodes, so that a small volume (a container's,
 * a tmpfs) still takes mail.  A caller that does not know the size (no
 * SIZE= at MAIL) passes 0: a message larger than what is left then fails
 * its write with ENOSPC, cleanly.  Returns 1 when there is room, 0 when there is not ('err' says
 * how much is free, PST_TEMP: the server answers 452 4.3.1, RFC 3463),
 * -1 with 'err' when statvfs fails.
 */
#define PST_SPOOL_RESERVE_AUTO	UINT64_MAX
int	pst_spool_space(struct pst_spool *spool, uint64_t need,
	    uint64_t reserve, uint64_t reserve_inodes, struct pst_err *err);

/*
 * pst_spool_scan()
 * Calls 'fn' once for each queued message with its envelope, which 'fn'
 * then owns: every message the log and the drops hold (a spool opened
 * without the daemon lock reads them first).  Order: as the envelopes lie
 * on the disk (drops first, then the log's segments in order), so each
 * file is read front to back.  An envelope that cannot be read for good
 * (damage, EACCES, EPERM) is reported (PST_SPOOL_SKIPPED) and skipped.
 * 'fn' returns 0 to go on, -1 to stop (the scan then returns -1 with
 * 'err' untouched).  Blocking; meant for start-up and for the queue tool.
 * Returns 0, or -1 with 'err' when a read fails in a way that may pass
 * (PST_TEMP: EIO, no memory), so an index is never built from half a
 * queue without the caller knowing.
 */
typedef int (*pst_spool_scan_fn)(struct pst_spool_env *env, void *arg);
int	pst_spool_scan(struct pst_spool *spool, pst_spool_scan_fn fn,
	    void *arg, struct pst_err *err);

/*
 * pst_spool_scan_brief()
 * The same with what a scheduler needs of each message, from memory
 * where the index has it (every envelope decoded since the spool was
 * loaded), else read as pst_spool_scan() does.  'brief' is valid during
 * the call only.
 */
struct pst_spool_brief {
	char		 id[PST_SPOOL_ID_LEN + 1];
	time_t		 arrival;
	time_t		 next_attempt;
	bool		 held;
};

typedef int (*pst_spool_brief_fn)(const struct pst_spool_brief *brief,
    void *arg);
int	pst_spool_scan_brief(struct pst_spool *spool, pst_spool_brief_fn fn,
	    void *arg, struct pst_err *err);

/*
 * pst_spool_read()
 * Reads the envelope of message 'id' without locking it (a snapshot).
 * NULL with 'err': sys_errno ENOENT when there is no such message,
 * PST_LOCAL when it does not decode.  Blocking.
 */
struct pst_spool_env *pst_spool_read(struct pst_spool *spool, const char *id,
	    struct pst_err *err);

/*
 * pst_spool_body_open()
 * Opens the body of the message 'env' describes, read-only: the body is
 * the env->size bytes from '*offset' of the file (read them with
 * pread()), and the file is checked to hold them.  Returns the
 * descriptor (the caller closes it) or -1 with 'err' (ENOENT: gone;
 * PST_LOCAL: the size differs, the body is damaged).  Blocking.
 */
int	pst_spool_body_open(struct pst_spool *spool,
	    const struct pst_spool_env *env, uint64_t *offset,
	    struct pst_err *err);

/*
 * Per-message lock.  A message is changed only by the process that
 * writes the log (the daemon, or a tool holding the daemon lock), and its
 * lock is a mark in that process's index: it keeps two deliveries, or a
 * delivery and an operator's change made through the daemon, apart.
 * Unlocked readers always see a complete envelope.  The calls block on
 * the disk; run them on the pool from the daemon.
 */
struct pst_spool_lock;

#define PST_SPOOL_WAIT		0x01	/* wait for the lock */

/*
 * pst_spool_lock_msg()
 * Locks message 'id' and reads its envelope.  Without PST_SPOOL_WAIT a
 * message locked elsewhere fails at once with sys_errno EWOULDBLOCK
 * (PST_TEMP, "message ID is locked").  A message that does not exist
 * (or disappears while we wait) fails with sys_errno ENOENT.  An envelope
 * that does not decode is damaged (its record's sums held, so the bytes
 * are as written): it is moved to quarantine/ with its body, and the
 * call fails with sys_errno EBADMSG and the reason.  An envelope this
 * process may not read (EACCES, EPERM) is a PST_TEMP error, never damage.
 * Returns the lock, or NULL with 'err'.
 */
struct pst_spool_lock *pst_spool_lock_msg(struct pst_spool *spool,
	    const char *id, unsigned flags, struct pst_err *err);

/*
 * pst_spool_lock_env()
 * The envelope as read under the lock, or as last written through it.
 * The lock owns it; the caller may change it and pass it to
 * pst_spool_lock_update() or pst_spool_lock_save().
 */
struct pst_spool_env *pst_spool_lock_env(struct pst_spool_lock *lock);

/*
 * pst_spool_lock_update()
 * Replaces the message's envelope with 'env' (its id must be the locked
 * one; 'env' may be the lock's own): an ENV record, on stable storage
 * when the call returns.  If 'env' is not the lock's own, the lock keeps
 * a copy.  On failure the old envelope stays (and the lock's envelope
 * may differ from it).  Returns 0 or -1 with 'err'.
 */
int	pst_spool_lock_update(struct pst_spool_lock *lock,
	    const struct pst_spool_env *env, struct pst_err *err);

/*
 * pst_spool_lock_remove()
 * Removes the message: a DEL record, on stable storage when the call
 * returns; then the files that were the message's alone.  Afterwards
 * only pst_spool_lock_release() may be called.  Returns 0 or -1 with
 * 'err' (the message is still queued).
 */
int	pst_spool_lock_remove(struct pst_spool_lock *lock,
	    struct pst_err *err);

/*
 * pst_spool_lock_save()
 * What a delivery made of the message, without waiting for the disk:
 * 'env' as its new envelope, or, when 'env' is NULL, its removal.  The
 * change rides the log's next group flush (pst_log_append_later()); the
 * message stays locked until the change is on stable storage, then
 * 'done' runs on the loop thread with err NULL, or with the error when
 * the flush failed (the message is then as it was before, unlocked).
 * A crash before the flush leaves the message as it was: delivered
 * again, never lost.  Without a writer (a tool) the change is made on
 * the spot and 'done' runs before the return.  Afterwards only
 * pst_spool_lock_release() may be called; it leaves the unlocking to
 * the change.  Returns 0, or -1 with 'err' when the change cannot be
 * queued ('done' does not run and the lock is as before).
 */
typedef void (*pst_spool_saved_fn)(void *arg, const struct pst_err *err);

int	pst_spool_lock_save(struct pst_spool_lock *lock,
	    const struct pst_spool_env *env, pst_spool_saved_fn done,
	    void *arg, struct pst_err *err);

/*
 * pst_spool_lock_quarantine()
 * Moves the message's envelope and then its body to quarantine/ (for a
 * body found damaged during delivery).  Returns 0 or -1 with 'err'.
 */
int	pst_spool_lock_quarantine(struct pst_spool_lock *lock,
	    struct pst_err *err);

/*
 * pst_spool_lock_release()
 * Unlocks and frees 'lock' and its envelope.  NULL is fine.
 */
void	pst_spool_lock_release(struct pst_spool_lock *lock);

/*
 * pst_spool_remove(), pst_spool_hold()
 * Shorthands for the operator's tool: lock 'id' ('flags' as for
 * pst_spool_lock_msg()), remove it or set its held flag, release.
 */
int	pst_spool_remove(struct pst_spool *spool, const char *id,
	    unsigned flags, struct pst_err *err);
int	pst_spool_hold(struct pst_spool *spool, const char *id, bool held,
	    unsigned flags, struct pst_err *err);

/*
 * Writing a message.
 *
 * pst_spool_msg_begin() gives a message object with a fresh id and an
 * empty envelope; the caller fills the envelope and writes the body,
 * which is buffered in memory.  When pst_spool_msg_need_flush() says so,
 * the caller stops reading its client and calls pst_spool_msg_flush(),
 * which writes the buffer to tmp/ID.body on a pool worker; its callback
 * says when to read on.  pst_spool_msg_commit() writes the rest and runs
 * the commit protocol on the pool; its callback reports the outcome on
 * the loop thread: success means the message is on stable storage and
 * may be acknowledged (250); failure means everything of it is already
 * removed (answer 451 4.3.0).
 *
 * OWNERSHIP: while a flush or commit is in flight the job owns the
 * message; the caller must not use it, free it or touch its envelope.
 * The callback always runs, exactly once, on the loop thread, and hands
 * the message back.  So a requester that may go away in between (an SMTP
 * session that drops mid-commit) must pass an 'arg' that stays valid
 * whatever happens, such as its session id, look the session up in the
 * callback, and free the message itself when the session is gone (the
 * message is then either committed, and belongs to the queue, or already
 * cleaned up).
 *
 * The _sync variants run the same steps on the calling thread: for the
 * sendmail command, which commits straight into the spool whether or not
 * the daemon runs (no daemon lock needed: only O_EXCL names and renames).
 */
struct pst_spool_msg;

typedef void (*pst_spool_msg_cb)(struct pst_spool_msg *msg,
    const struct pst_err *err, void *arg);

/*
 * pst_spool_msg_begin()
 * A new message in 'spool' with a fresh id and an empty envelope.  No
 * file is touched yet.  NULL with 'err' (PST_TEMP) when out of memory.
 * The spool must outlive the message.
 */
struct pst_spool_msg *pst_spool_msg_begin(struct pst_spool *spool,
	    struct pst_err *err);

/*
 * pst_spool_msg_id()
 * The message's id (PST_SPOOL_ID_LEN characters); fixed for its life.
 */
const char *pst_spool_msg_id(const struct pst_spool_msg *msg);

/*
 * pst_spool_msg_env()
 * The message's envelope, owned by the message.  Fill in sender,
 * recipients, DSN parameters, flags and origin before committing; id and
 * size are set by the commit, arrival too if left 0.
 */
struct pst_spool_env *pst_spool_msg_env(struct pst_spool_msg *msg);

/*
 * pst_spool_msg_take_env()
 * Hands the envelope over to the caller (after a successful commit, for
 * the scheduler's index); the message keeps none.
 */
struct pst_spool_env *pst_spool_msg_take_env(struct pst_spool_msg *msg);

/*
 * pst_spool_msg_write(), pst_spool_msg_add_buffer()
 * Append body bytes to the message's buffer: a copy of 'len' bytes of
 * 'data', or all of 'src' (moved, not copied; 'src' is left empty).  No
 * I/O.  Refused (-1, PST_LOCAL) while a job is in flight, after a commit
 * or failure, or when the buffer would pass PST_SPOOL_BUFFER_MAX.
 */
int	pst_spool_msg_write(struct pst_spool_msg *msg, const void *data,
	    size_t len, struct pst_err *err);
int	pst_spool_msg_add_buffer(struct pst_spool_msg *msg,
	    struct evbuffer *src, struct pst_err *err);

/*
 * pst_spool_msg_need_flush()
 * True when PST_SPOOL_FLUSH_BYTES or more are buffered.
 */
bool	pst_spool_msg_need_flush(const struct pst_spool_msg *msg);

/*
 * pst_spool_msg_size()
 * Body bytes given so far (written and buffered).
 */
uint64_t pst_spool_msg_size(const struct pst_spool_msg *msg);

/*
 * pst_spool_msg_flush()
 * Writes the buffered bytes to the message's file in tmp/ (creating it
 * on the first flush) on a worker of 'pool'; then 'cb' runs on the loop
 * with err NULL, or with the error, in which case the message has failed
 * and its file is already removed.  Returns 0, or -1 with 'err' if the
 * job could not start (then 'cb' will not run and the message is
 * unchanged).
 */
int	pst_spool_msg_flush(struct pst_spool_msg *msg, struct pst_pool *pool,
	    pst_spool_msg_cb cb, void *arg, struct pst_err *err);
int	pst_spool_msg_flush_sync(struct pst_spool_msg *msg,
	    struct pst_err *err);

/*
 * pst_spool_msg_commit()
 * Commits the message (see FORMAT) on a worker of 'pool'; 'cb' runs on
 * the loop afterwards.  The envelope must have a sender and at least one
 * recipient: a bad envelope fails the commit (PST_LOCAL).  Returns 0, or
 * -1 with 'err' if the job could not start or the message has already
 * failed (then 'cb' will not run).
 */
int	pst_spool_msg_commit(struct pst_spool_msg *msg, struct pst_pool *pool,
	    pst_spool_msg_cb cb, void *arg, struct pst_err *err);
int	pst_spool_msg_commit_sync(struct pst_spool_msg *msg,
	    struct pst_err *err);

/*
 * pst_spool_msg_committed()
 * Whether the message was committed.
 */
bool	pst_spool_msg_committed(const struct pst_spool_msg *msg);

/*
 * pst_spool_msg_free()
 * Frees 'msg'.  A message never committed has its tmp/ file removed: on
 * a worker of 'pool' if given (the loop never waits for the disk), else
 * right here.  A committed message's files belong to the queue and stay.
 * Never while a job is in flight.  NULL is fine.
 */
void	pst_spool_msg_free(struct pst_spool_msg *msg, struct pst_pool *pool);

#endif /* PST_SPOOL_H */
