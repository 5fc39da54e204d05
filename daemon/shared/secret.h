/*
 * secret.h: an upstream's password or token, fetched when it is needed.
 *
 * Sources (exactly one per upstream, the config loader makes sure):
 *   password          the inline value
 *   password_file     the file's first line
 *   password_command  the first line the command prints (run by /bin/sh,
 *                     killed after SECRET_COMMAND_TIMEOUT_MS); its output
 *                     is never logged, its stderr passes through
 *   credential        $CREDENTIALS_DIRECTORY/NAME (systemd LoadCredential=)
 * Files and commands are read at every use, so a rotated secret is picked
 * up without a reload.  All of it blocks: call it from the worker pool in
 * the daemon.
 */
#ifndef POSTERN_SECRET_H
#define POSTERN_SECRET_H

struct config_upstream;
struct pst_err;

#define SECRET_MAX			4096
#define SECRET_COMMAND_TIMEOUT_MS	30000

/*
 * secret_load()
 * Fetches the secret of 'u' into a new string '*out' (free it with
 * secret_free()).  Returns 0, or -1 with 'err' (PST_LOCAL, stage AUTH)
 * naming the source and what went wrong, never the secret.
 */
int	secret_load(const struct config_upstream *u, char **out,
	    struct pst_err *err);

/*
 * secret_free()
 * Wipes and frees a secret.  NULL is fine.
 */
void	secret_free(char *secret);

#endif /* POSTERN_SECRET_H */
