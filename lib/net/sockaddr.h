/*
 * sockaddr.h: endpoints and networks as written in config files.
 *
 *   "host:port"      host name or IPv4 literal, port 1-65535
 *   "[v6]:port"      IPv6 literal in brackets
 *   "host"           when the caller supplies a default port
 *   "unix:/path"     a unix-domain socket (absolute path)
 *   "192.0.2.0/24", "2001:db8::/32", "127.0.0.1"  networks (CIDR)
 *
 * Pure functions: no name resolution ever happens here.
 */
#ifndef PST_SOCKADDR_H
#define PST_SOCKADDR_H

#include <sys/socket.h>
#include <sys/un.h>

#include <stdbool.h>
#include <stdint.h>

#define PST_HOST_MAX	255

enum pst_endpoint_kind {
	PST_EP_INET,		/* host (name or literal) and port */
	PST_EP_UNIX,		/* unix-domain socket path */
};

struct pst_endpoint {
	enum pst_endpoint_kind	 kind;
	char			 host[PST_HOST_MAX + 1];  /* no brackets */
	uint16_t		 port;
	bool			 literal;	/* host is an IP literal */
	char			 path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct pst_cidr {
	int		 family;	/* AF_INET or AF_INET6 */
	uint8_t		 addr[16];	/* network bytes, host bits zero */
	unsigned	 prefix;
};

/*
 * pst_endpoint_parse()
 * Parses 's'.  With 'default_port' 0 a port is required.  'allow_unix'
 * permits the "unix:" form.  Returns 0, or -1 with '*why' naming the
 * problem ("port out of range", "IPv6 address needs brackets", ...).
 */
int	pst_endpoint_parse(const char *s, uint16_t default_port,
	    bool allow_unix, struct pst_endpoint *ep, const char **why);

/*
 * pst_endpoint_sockaddr()
 * For an endpoint whose host is an IP literal (or "localhost", taken as
 * 127.0.0.1), or a unix path, fills 'ss' and '*len'.  Returns 0, or -1
 * with '*why' when the host is a name that would need a lookup.
 */
int	pst_endpoint_sockaddr(const struct pst_endpoint *ep,
	    struct sockaddr_storage *ss, socklen_t *len, const char **why);

/*
 * pst_endpoint_format()
 * "host:port", "[v6]:port" or "unix:/path" into 'buf'.  Returns 'buf'.
 */
char	*pst_endpoint_format(const struct pst_endpoint *ep, char *buf,
	    size_t len);

/*
 * pst_hostname_valid()
 * True when 's' is a syntactically valid DNS host name (letters, digits,
 * hyphens, dots; labels 1-63 bytes; 253 bytes in all).
 */
bool	pst_hostname_valid(const char *s);

/*
 * pst_cidr_parse()
 * Parses a network ("10.0.0.0/8") or a single address (full prefix).
 * Host bits set below the prefix are an error: "10.0.0.1/8" most likely
 * means something else than what it says.
 */
int	pst_cidr_parse(const char *s, struct pst_cidr *net, const char **why);

/*
 * pst_cidr_match()
 * True when 'sa' lies in 'net'.  An IPv4-mapped IPv6 address matches IPv4
 * networks.  Unix-domain peers never match (the caller decides on them).
 */
bool	pst_cidr_match(const struct pst_cidr *net, const struct sockaddr *sa);

/*
 * pst_sockaddr_format()
 * "192.0.2.1:25", "[2001:db8::1]:25", "unix:/path" or "unix" into 'buf'.
 */
char	*pst_sockaddr_format(const struct sockaddr *sa, socklen_t salen,
	    char *buf, size_t len);

#endif /* PST_SOCKADDR_H */
