/*
 * fuzz_proxyurl.c: proxy URLs (net/proxyurl.h).
 *
 * The input is one URL.  Checked: a URL that parses gives a hop with a
 * kind, a valid host and a port; the hop written back as a URL (without
 * its password) parses to the same kind, host, port, user and name
 * resolution; a refusal names its reason and leaves no password behind.
 */
#include <string.h>

#include "net/dial.h"
#include "net/proxyurl.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pst_hop hop, again;
	char url[PST_PROXY_URL_MAX + 64], back[PST_PROXY_URL_MAX * 3];
	const char *why = NULL;
	size_t i;

	if (size >= sizeof(url))
		size = sizeof(url) - 1;
	memcpy(url, data, size);
	url[size] = '\0';

	memset(&hop, 0xa5, sizeof(hop));
	if (pst_proxy_url_parse(url, &hop, &why) == -1) {
		FUZZ_CHECK(why != NULL && why[0] != '\0');
		/* Wiped: no partial password stays behind. */
		for (i = 0; i < sizeof(hop.password); i++)
			FUZZ_CHECK(hop.password[i] == '\0');
		return 0;
	}
	FUZZ_CHECK(hop.kind > PST_HOP_NONE && hop.kind < PST_HOP__COUNT);
	FUZZ_CHECK(hop.host[0] != '\0' && hop.port != 0);
	FUZZ_CHECK(memchr(hop.host, '\0', sizeof(hop.host)) != NULL);
	FUZZ_CHECK(memchr(hop.user, '\0', sizeof(hop.user)) != NULL);
	FUZZ_CHECK(memchr(hop.password, '\0', sizeof(hop.password)) != NULL);
	FUZZ_CHECK(hop.ops == NULL);

	pst_proxy_url_format(&hop, back, sizeof(back));
	if (pst_proxy_url_parse(back, &again, &why) == -1) {
		fprintf(stderr, "\"%s\" does not parse: %s\n", back, why);
		FUZZ_CHECK(!"formatted URL does not parse");
	}
	FUZZ_CHECK(again.kind == hop.kind && again.port == hop.port);
	FUZZ_CHECK(again.remote_resolve == hop.remote_resolve);
	FUZZ_CHECK(strcmp(again.host, hop.host) == 0);
	FUZZ_CHECK(strcmp(again.user, hop.user) == 0);
	FUZZ_CHECK(again.password[0] == '\0');
	return 0;
}
