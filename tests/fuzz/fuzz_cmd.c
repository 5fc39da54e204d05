/*
 * fuzz_cmd.c: the SMTP command line parser (smtp/cmd.h).
 *
 * The first byte picks the extensions announced and the SMTPUTF8 state
 * of the transaction; the rest is one command line without its CRLF.
 * Checked: an error always carries a 5xx reply with an enhanced code; a
 * parsed path is a mailbox the mailbox parser accepts as well; every
 * string in the result is terminated within its array, and 'arg' lies in
 * the line.
 */
#include <string.h>

#include "common/err.h"
#include "smtp/addr.h"
#include "smtp/cmd.h"
#include "fuzz.h"

#define CMD_FLAGS	(PST_CMD_EXT_SIZE | PST_CMD_EXT_8BITMIME |	\
			 PST_CMD_EXT_SMTPUTF8 | PST_CMD_EXT_DSN)

static void	cmd_check_string(const char *s, size_t size);

static void
cmd_check_string(const char *s, size_t size)
{
	FUZZ_CHECK(memchr(s, '\0', size) != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct pst_cmd cmd;
	struct pst_addr again;
	struct pst_err err;
	const char *line, *why;
	unsigned flags, aflags;
	uint8_t b;

	b = fuzz_byte(&in, 0);
	flags = b & CMD_FLAGS;
	if (b & 0x10)
		flags |= PST_CMD_TXN_UTF8;
	line = (const char *)in.p;

	memset(&cmd, 0xa5, sizeof(cmd));
	pst_err_clear(&err);
	if (pst_cmd_parse(line, in.len, flags, &cmd, &err) == -1) {
		FUZZ_CHECK(err.smtp_code >= 500 && err.smtp_code <= 555);
		FUZZ_CHECK(err.esc[0] == '5' && err.esc[1] == '.');
		FUZZ_CHECK(err.cls == PST_PERM);
		FUZZ_CHECK(err.text[0] != '\0');
		FUZZ_CHECK(cmd.verb < PST_CMD__COUNT);
		return 0;
	}
	FUZZ_CHECK(cmd.verb > PST_CMD_UNKNOWN && cmd.verb < PST_CMD__COUNT);
	FUZZ_CHECK(strcmp(pst_cmd_name(cmd.verb), "?") != 0);
	if (cmd.arg != NULL) {
		FUZZ_CHECK(cmd.arg >= line);
		FUZZ_CHECK(cmd.arg + cmd.arg_len <= line + in.len);
	}
	switch (cmd.verb) {
	case PST_CMD_HELO:
	case PST_CMD_EHLO:
		cmd_check_string(cmd.helo, sizeof(cmd.helo));
		FUZZ_CHECK(cmd.helo[0] != '\0');
		break;
	case PST_CMD_MAIL:
	case PST_CMD_RCPT:
		cmd_check_string(cmd.addr.local, sizeof(cmd.addr.local));
		cmd_check_string(cmd.addr.domain, sizeof(cmd.addr.domain));
		cmd_check_string(cmd.addr.mailbox, sizeof(cmd.addr.mailbox));
		if (cmd.verb == PST_CMD_MAIL) {
			cmd_check_string(cmd.mail.envid,
			    sizeof(cmd.mail.envid));
			cmd_check_string(cmd.mail.envid_text,
			    sizeof(cmd.mail.envid_text));
		} else {
			cmd_check_string(cmd.rcpt.orcpt_type,
			    sizeof(cmd.rcpt.orcpt_type));
			cmd_check_string(cmd.rcpt.orcpt,
			    sizeof(cmd.rcpt.orcpt));
			cmd_check_string(cmd.rcpt.orcpt_text,
			    sizeof(cmd.rcpt.orcpt_text));
		}
		if (cmd.addr.null || cmd.addr.postmaster)
			break;
		/* What the path parser kept must stand as a mailbox. */
		aflags = cmd.addr.utf8 ? PST_ADDR_F_UTF8 : 0;
		FUZZ_CHECK(pst_addr_parse_mailbox(cmd.addr.mailbox,
		    strlen(cmd.addr.mailbox), aflags, &again, &why) == 0);
		FUZZ_CHECK(strcmp(again.mailbox, cmd.addr.mailbox) == 0);
		break;
	default:
		break;
	}
	return 0;
}
