/*
 * probe_dane.c - tls.dane: the TLSA records of _PORT._tcp.NAME (RFC 6698,
 * RFC 7672 for SMTP), looked up with the system resolver (res_nquery of
 * libresolv, or the one --dns names), must match the certificate the
 * server sent. The probe does not validate DNSSEC itself: it asks for the
 * AD bit (trust-ad) and says when the answer did not carry it, since DANE
 * without DNSSEC protects nothing. Reserved names (RFC 6761: .test,
 * .example, .invalid, .localhost) are not looked up unless --dns is given.
 */
#include "probe/probe_int.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#ifndef ns_t_tlsa
#define PROBE_T_TLSA 52 /* RFC 6698 section 7.1 */
#else
#define PROBE_T_TLSA ns_t_tlsa
#endif

/* ---- the DNS answer ---------------------------------------------------------
 */

int
probe_dane_parse(const unsigned char *ans, int len, struct probe_tlsa *out,
		 size_t max, bool *ad_r)
{
	ns_msg msg;
	ns_rr rr;
	size_t n = 0;

	*ad_r = false;
	if (len <= 0 || ns_initparse(ans, len, &msg) < 0)
		return -1;
	*ad_r = ns_msg_getflag(msg, ns_f_ad) != 0;
	for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			return -1;
		if (ns_rr_type(rr) != PROBE_T_TLSA ||
		    ns_rr_class(rr) != ns_c_in)
			continue;
		const unsigned char *rd = ns_rr_rdata(rr);
		size_t rdlen = ns_rr_rdlen(rr);

		if (rdlen < 3 || n >= max)
			continue;
		out[n].usage = rd[0];
		out[n].selector = rd[1];
		out[n].mtype = rd[2];
		out[n].len = rdlen - 3;
		out[n].too_long = out[n].len > sizeof(out[n].data);
		if (!out[n].too_long)
			memcpy(out[n].data, rd + 3, out[n].len);
		n++;
	}
	return (int)n;
}

/* ---- matching -------------------------------------------------------------
 */

/* The selected bytes of a certificate (RFC 6698 2.1.2), malloc'd. */
static unsigned char *
probe_dane_select(X509 *x, unsigned selector, int *len_r)
{
	unsigned char *buf = NULL;

	*len_r = selector == 0 ? i2d_X509(x, &buf)
			       : i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &buf);
	return *len_r > 0 ? buf : NULL;
}

/* Does one record match one certificate? */
static bool
probe_dane_match_one(const struct probe_tlsa *t, X509 *x)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned char *sel;
	int len;
	bool ok = false;

	sel = probe_dane_select(x, t->selector, &len);
	if (sel == NULL)
		return false;
	if (t->mtype == 0)
		ok = (size_t)len == t->len && memcmp(sel, t->data, t->len) == 0;
	else if (EVP_Digest(sel, (size_t)len, md, &mdlen,
			    t->mtype == 1 ? EVP_sha256() : EVP_sha512(),
			    NULL) == 1)
		ok = mdlen == t->len && memcmp(md, t->data, mdlen) == 0;
	OPENSSL_free(sel);
	return ok;
}

int
probe_dane_match(const struct probe_tlsa *t, STACK_OF(X509) * chain)
{
	int n = chain != NULL ? sk_X509_num(chain) : 0;

	/* RFC 7672 3.1.3: PKIX-TA(0) and PKIX-EE(1) are not for SMTP. */
	if ((t->usage != 2 && t->usage != 3) || t->selector > 1 ||
	    t->mtype > 2 || t->too_long)
		return -1;
	if (t->usage == 3)
		return n > 0 &&
		       probe_dane_match_one(t, sk_X509_value(chain, 0));
	for (int i = 1; i < n; i++)
		if (probe_dane_match_one(t, sk_X509_value(chain, i)))
			return 1;
	return 0;
}

/* ---- the lookup -------------------------------------------------------------
 */

/* RFC 6761 names no resolver is expected to know. */
static bool
probe_dane_reserved(const char *name)
{
	static const char *const tld[] = {".test", ".example", ".invalid",
					  ".localhost"};
	size_t len = strlen(name);

	if (strcasecmp(name, "localhost") == 0)
		return true;
	for (size_t i = 0; i < sizeof(tld) / sizeof(tld[0]); i++) {
		size_t t = strlen(tld[i]);

		if (len > t && strcasecmp(name + len - t, tld[i]) == 0)
			return true;
	}
	return false;
}

/* --dns ADDR[:PORT] (IPv4) as the only name server. */
static int
probe_dane_server(res_state st, const char *spec)
{
	char host[64];
	const char *colon = strchr(spec, ':');
	size_t hl = colon != NULL ? (size_t)(colon - spec) : strlen(spec);
	struct sockaddr_in sin;

	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, spec, hl);
	host[hl] = '\0';
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(53);
	if (colon != NULL) {
		char *end;
		long port = strtol(colon + 1, &end, 10);

		if (*end != '\0' || port < 1 || port > 65535)
			return -1;
		sin.sin_port = htons((uint16_t)port);
	}
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return -1;
	st->nscount = 1;
	st->nsaddr_list[0] = sin;
	return 0;
}

/*
 * Query the TLSA records. Returns the answer length, or -1 with *why_r:
 * "no TLSA records" (NXDOMAIN, NODATA) or another reason.
 */
static int
probe_dane_query(const struct probe *pr, const char *qname, unsigned char *ans,
		 int size, const char **why_r)
{
	struct __res_state st;
	int n;

	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) != 0) {
		*why_r = "the resolver cannot be set up";
		return -1;
	}
	st.retrans = (int)pr->o->timeout;
	st.retry = 1;
	st.options |= RES_USE_EDNS0 | RES_USE_DNSSEC;
#ifdef RES_TRUSTAD
	st.options |= RES_TRUSTAD;
#endif
	if (pr->o->dns != NULL && probe_dane_server(&st, pr->o->dns) < 0) {
		res_nclose(&st);
		*why_r = "--dns: not an IPv4 address[:port]";
		return -1;
	}
	n = res_nquery(&st, qname, ns_c_in, PROBE_T_TLSA, ans, size);
	if (n < 0)
		*why_r = st.res_h_errno == HOST_NOT_FOUND ||
				 st.res_h_errno == NO_DATA
			     ? "no TLSA records"
			     : "the TLSA lookup failed (SERVFAIL or no "
			       "answer): a DANE sender would defer";
	res_nclose(&st);
	return n;
}

/* The verdict over the records found. */
static void
probe_dane_verdict(struct probe_port_state *ps, const char *qname,
		   const struct probe_tlsa *t, int n, bool ad)
{
	struct probe_buf b = {0};
	int usable = 0, matched = 0;

	probe_buf_addf(&b, "%s: %d record%s", qname, n, n == 1 ? "" : "s");
	for (int i = 0; i < n; i++) {
		int m = probe_dane_match(&t[i], ps->chain);

		usable += m >= 0;
		matched += m == 1;
		probe_buf_addf(&b, "%s %u %u %u %s", i == 0 ? ":" : ",",
			       t[i].usage, t[i].selector, t[i].mtype,
			       m < 0 ? "unusable"
			       : m   ? "matches"
				     : "no match");
	}
	probe_buf_addf(&b, "; %s",
		       ad ? "DNSSEC-validated (AD bit)"
			  : "NOT DNSSEC-validated (no AD bit from the "
			    "resolver): DANE needs DNSSEC");
	if (usable == 0)
		probe_buf_addf(&b, "; no usable record (RFC 7672 3.1.3: "
				   "only usages 2 and 3)");
	probe_set_owned(ps->out, PC_TLS_DANE,
			matched == 0 ? PROBE_FAIL
			: ad	     ? PROBE_PASS
				     : PROBE_WARN,
			probe_buf_take(&b));
}

void
probe_dane_check(struct probe_port_state *ps)
{
	const struct probe *pr = ps->pr;
	const char *name = pr->host_is_ip ? pr->o->name : pr->o->host;
	struct probe_tlsa t[PROBE_TLSA_MAX];
	unsigned char ans[8192];
	const char *why = NULL;
	char qname[300];
	bool ad;
	int n;

	if (!ps->tls_works) {
		probe_set(ps->out, PC_TLS_DANE, PROBE_SKIP, "no TLS");
		return;
	}
	if (name == NULL) {
		probe_set(ps->out, PC_TLS_DANE, PROBE_SKIP,
			  "the target is an address: give --name for TLSA");
		return;
	}
	(void)snprintf(qname, sizeof(qname), "_%u._tcp.%s", ps->port, name);
	if (pr->o->dns == NULL && probe_dane_reserved(name)) {
		probe_set(ps->out, PC_TLS_DANE, PROBE_SKIP,
			  "%s: a reserved name (RFC 6761), not looked up",
			  qname);
		return;
	}
	n = probe_dane_query(pr, qname, ans, sizeof(ans), &why);
	if (n >= 0)
		n = probe_dane_parse(ans, n, t, PROBE_TLSA_MAX, &ad);
	if (n < 0 && why == NULL)
		why = "malformed DNS answer";
	if (n == 0)
		why = "no TLSA records";
	if (why != NULL)
		probe_set(ps->out, PC_TLS_DANE,
			  strcmp(why, "no TLSA records") == 0 ? PROBE_SKIP
							      : PROBE_WARN,
			  "%s: %s", qname, why);
	else
		probe_dane_verdict(ps, qname, t, n, ad);
}
