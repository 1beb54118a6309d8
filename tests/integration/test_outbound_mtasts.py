"""MTA-STS for outbound SMTP (RFC 8461; issue 9 item 4): the
`_mta-sts.DOMAIN` TXT record, the policy over HTTPS from
`mta-sts.DOMAIN`, its cache on disk, and what `enforce` and `testing` do.

NSD serves a zone per recipient domain (made in the run); the receiving
server is a second postern on 127.0.0.14:25 whose self-signed certificate
names mx.sts.example (`mxalias.sts.example` has the same address, so its
certificate does not name it); the policy servers are Python's
http.server with ssl on 127.0.0.16:443 (and 127.0.0.17:443 for the cache
tests, stopped in the middle), with a certificate made in the run.
`outbound-tls-ca` trusts both certificates.
"""

import http.server
import os
import ssl
import subprocess
import threading

import pytest

from conftest import ALICE, ALICE_PW
from helpers import list_dir, wait_for
from outbound_fixtures import DnsServer, Sink
from test_outbound_dane import spki_sha256

WAIT = 30.0
RCV_ADDR = "127.0.0.14"
HTTPS_ADDR = "127.0.0.16"
HTTPS2_ADDR = "127.0.0.17"  # stopped by the cache tests
SINK_ADDR = "127.0.0.15"  # smtp-sink: no STARTTLS

GOOD = "version: STSv1\r\nmode: enforce\r\nmx: mx.sts.example\r\n" \
       "max_age: 86400\r\n"
# domain -> (TXT id, policy server address, MX host, policy answer)
# policy answer: (status, content type, body, extra headers)
DOMAINS = {
    "enforce.example": ("e1", HTTPS_ADDR, "mx.sts.example",
                        (200, "text/plain", GOOD, {})),
    "wild.example": ("w1", HTTPS_ADDR, "mx.sts.example",
                     (200, "text/plain; charset=utf-8",
                      "version: STSv1\nmode: enforce\nmx: *.STS.example.\n"
                      "max_age: 86400\n", {})),
    "nomatch.example": ("n1", HTTPS_ADDR, "mx.sts.example",
                        (200, "text/plain",
                         "version: STSv1\nmode: enforce\n"
                         "mx: mx.elsewhere.example\nmax_age: 86400\n", {})),
    "badcert.example": ("b1", HTTPS_ADDR, "mxalias.sts.example",
                        (200, "text/plain",
                         "version: STSv1\nmode: enforce\n"
                         "mx: mxalias.sts.example\nmax_age: 86400\n", {})),
    "testing.example": ("t1", HTTPS_ADDR, "mxalias.sts.example",
                        (200, "text/plain",
                         "version: STSv1\nmode: testing\n"
                         "mx: mx.sts.example\nmax_age: 86400\n", {})),
    # Followed, the redirect would give an enforce policy that the MX
    # does not meet (its certificate does not name it): the mail would be
    # deferred. Not followed: no policy, opportunistic TLS, delivered.
    "redirect.example": ("r1", HTTPS_ADDR, "mxalias.sts.example",
                         (301, "text/plain", "moved\n",
                          {"Location": "https://mta-sts.badcert.example"
                                       "/.well-known/mta-sts.txt"})),
    # A valid enforce policy (which the MX fails), padded to over 64 KiB
    # with lines of an unknown key: over the cap, no policy: delivered.
    "big.example": ("g1", HTTPS_ADDR, "mxalias.sts.example",
                    (200, "text/plain",
                     "version: STSv1\nmode: enforce\n"
                     "mx: mxalias.sts.example\nmax_age: 86400\n"
                     + "x-pad: %s\n" % ("p" * 100) * 700, {})),
    # The MX (smtp-sink on 127.0.0.15) offers no STARTTLS.
    "notls.example": ("p1", HTTPS_ADDR, "mx.notls.example",
                      (200, "text/plain",
                       "version: STSv1\nmode: enforce\n"
                       "mx: mx.notls.example\nmax_age: 86400\n", {})),
    # The policy server's certificate does not name mta-sts.DOMAIN: no
    # policy (taken, the enforce policy would defer the mail).
    "wrongcert.example": ("x1", HTTPS_ADDR, "mxalias.sts.example",
                          (200, "text/plain",
                           "version: STSv1\nmode: enforce\n"
                           "mx: mx.elsewhere.example\nmax_age: 86400\n",
                           {})),
    # Not text/plain: no policy.
    "html.example": ("h1", HTTPS_ADDR, "mxalias.sts.example",
                     (200, "text/html",
                      "version: STSv1\nmode: enforce\n"
                      "mx: mx.elsewhere.example\nmax_age: 86400\n", {})),
    # The cache tests: their policy server is stopped in the middle.
    "cache.example": ("c1", HTTPS2_ADDR, "mx.sts.example",
                      (200, "text/plain", GOOD, {})),
    "idchange.example": ("new2", HTTPS_ADDR, "mx.sts.example",
                         (200, "text/plain", GOOD, {})),
    "keep.example": ("new3", HTTPS2_ADDR, "mx.sts.example",
                     (200, "text/plain", GOOD, {})),
    # Its policy server holds the answer until the test releases it.
    "shared.example": ("s1", HTTPS_ADDR, "mx.sts.example",
                       (200, "text/plain", GOOD, {})),
    # Signed, with a TLSA record of the receiver: DANE wins over a policy
    # that lists no MX host of the domain.
    "danests.example": ("d1", HTTPS_ADDR, "mx.danests.example",
                        (200, "text/plain",
                         "version: STSv1\nmode: enforce\n"
                         "mx: mx.elsewhere.example\nmax_age: 86400\n", {})),
}


class PolicyServer:
    """HTTPS on ADDR:443 (a thread): answers GET /.well-known/mta-sts.txt
    by the Host header from `answers`; records every request."""

    def __init__(self, addr, cert, key, answers):
        self.requests = []
        self.hold = {}  # host -> threading.Event the answer waits for
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = self.headers.get("Host", "")
                outer.requests.append((host, self.path))
                if host in outer.hold:
                    outer.hold[host].wait(25)
                a = answers.get(host)
                if a is None or self.path != "/.well-known/mta-sts.txt":
                    self.send_error(404)
                    return
                status, ctype, body, extra = a
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((addr, 443), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                            server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def hosts(self):
        return [h for h, _ in self.requests]

    def stop(self):
        if self.thread is None:
            return
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)
        self.thread = None


def make_policy_cert(root, domains=None):
    """A certificate naming mta-sts.D for each of `domains` (by default
    those of DOMAINS but wrongcert.example)."""
    cert = os.path.join(root, "policy-cert.pem")
    key = os.path.join(root, "policy-key.pem")
    if domains is None:
        domains = [d for d in DOMAINS if d != "wrongcert.example"]
    san = ",".join("DNS:mta-sts." + d for d in domains)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=mta-sts.test-ca",
                    "-addext", "subjectAltName=" + san,
                    "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def zones_for(rcv_cert):
    zones = {"sts.example": ["mx IN A " + RCV_ADDR,
                             "mxalias IN A " + RCV_ADDR]}
    for d, (txt_id, https, mx, _) in DOMAINS.items():
        recs = ["@ IN MX 10 %s." % mx,
                "_mta-sts IN TXT \"v=STSv1; id=%s;\"" % txt_id,
                "mta-sts IN A " + https]
        if d == "notls.example":
            recs += ["mx IN A " + SINK_ADDR]
        if d == "danests.example":
            recs += ["mx IN A " + RCV_ADDR,
                     "_25._tcp.mx IN TLSA 3 1 1 " + spki_sha256(rcv_cert)]
        zones[d] = recs
    return zones


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from conftest import Server
    root = str(tmp_path_factory.mktemp("mtasts"))
    rcv = Server(os.path.join(root, "rcv"), submission=True,
                 hostname="mx.sts.example", domains=" ".join(DOMAINS),
                 mailbox=" ".join("bob@" + d for d in DOMAINS))
    rcv.listen = ["%s:25 mx" % RCV_ADDR]
    rcv.write_config()
    rcv.start()
    cert, key = make_policy_cert(root)
    bundle = os.path.join(root, "ca-bundle.pem")
    with open(bundle, "w") as out:
        for path in (rcv.cert, cert):
            with open(path) as f:
                out.write(f.read())
    answers = {"mta-sts." + d: v[3] for d, v in DOMAINS.items()}
    https = PolicyServer(HTTPS_ADDR, cert, key, answers)
    dns = DnsServer(os.path.join(root, "dns"), zones=zones_for(rcv.cert),
                    signed=("danests.example",)).start()
    w = {"rcv": rcv, "dns": dns, "https": https, "bundle": bundle,
         "cert": cert, "key": key, "answers": answers}
    yield w
    https.stop()
    dns.stop()
    rcv.stop()


def sender(world, make_server, **extra):
    return make_server(submission=True, outbound_delivery="yes",
                       outbound_tls_ca=world["bundle"],
                       **world["dns"].directives(), **extra)


def submit(srv, rcpt):
    with srv.smtp_sub(login=(ALICE, ALICE_PW)) as s:
        s.sendmail(ALICE, [rcpt], b"From: alice@local.test\r\n"
                   b"Subject: mta-sts test\r\n\r\nhello\r\n")


def delivered(world, domain):
    return list_dir(world["rcv"].new_dir("bob", domain))


def lines(srv, word):
    return [l for l in srv.log().splitlines() if word in l]


def test_enforce_matching_mx_verified(world, make_server):
    srv = sender(world, make_server)
    for d in ("enforce.example", "wild.example"):
        submit(srv, "bob@" + d)
        assert wait_for(lambda: delivered(world, d), WAIT), \
            srv.log()[-3000:]
    assert wait_for(lambda: len(lines(srv, "status=sent")) == 2, 10)
    tls = lines(srv, "tls relay=mx.sts.example[127.0.0.14]:25")
    assert len(tls) == 2 and all("verified=mta-sts" in l for l in tls), tls
    assert "mta-sts domain=enforce.example id=e1 mode=enforce " \
        "max_age=86400 policy=fetched" in srv.log()
    # the policy is on disk, named after the domain
    cache = os.path.join(srv.spool, "queue", "mta-sts")
    assert "p.enforce.example" in list_dir(cache)
    assert oct(os.stat(cache).st_mode & 0o777) == "0o700"


def test_enforce_non_matching_mx_deferred(world, make_server):
    srv = sender(world, make_server)
    start = len(world["rcv"].log())
    submit(srv, "bob@nomatch.example")
    assert wait_for(lambda: lines(srv, "status=deferred"), WAIT), \
        srv.log()[-3000:]
    line = lines(srv, "status=deferred")[0]
    assert "dsn=4.7.5" in line and "does not list MX host " \
        "mx.sts.example" in line, line
    assert lines(srv, "mta-sts host=mx.sts.example skipped")
    assert "status=sent" not in srv.log()
    # never connected to the MX at all
    assert "connect relay=mx.sts.example" not in srv.log()
    assert "nomatch.example" not in world["rcv"].log()[start:]
    assert not delivered(world, "nomatch.example")


def test_enforce_bad_certificate_deferred_never_plain(world, make_server):
    srv = sender(world, make_server)
    start = len(world["rcv"].log())
    submit(srv, "bob@badcert.example")
    assert wait_for(lambda: lines(srv, "status=deferred"), WAIT), \
        srv.log()[-3000:]
    line = lines(srv, "status=deferred")[0]
    assert "TLS handshake failed" in line, line
    assert "status=sent" not in srv.log()
    assert "badcert.example" not in world["rcv"].log()[start:]
    assert not delivered(world, "badcert.example")


def test_enforce_without_starttls_deferred_never_plain(world,
                                                      make_server):
    sink = Sink(SINK_ADDR)
    try:
        srv = sender(world, make_server)
        submit(srv, "bob@notls.example")
        assert wait_for(lambda: lines(srv, "status=deferred"), WAIT), \
            srv.log()[-3000:]
        line = lines(srv, "status=deferred")[0]
        assert "relay=mx.notls.example[127.0.0.15]:25" in line, line
        assert "dsn=4.7.4" in line, line
        assert "status=sent" not in srv.log()
        assert not sink.messages()
    finally:
        sink.stop()


def test_one_fetch_for_concurrent_sessions(world, make_server):
    """Three messages to one domain while its policy is being fetched:
    one TXT lookup and one fetch serve the three sessions. Meanwhile
    mail to another domain goes (no head-of-line blocking)."""
    https = world["https"]
    host = "mta-sts.shared.example"
    https.hold[host] = threading.Event()
    try:
        srv = sender(world, make_server)
        submit(srv, "bob@shared.example")
        assert wait_for(lambda: host in https.hosts(), WAIT), \
            srv.log()[-3000:]
        submit(srv, "bob@shared.example")
        submit(srv, "bob@shared.example")
        assert wait_for(lambda: len(lines(
            srv, "mta-sts domain=shared.example lookup=shared")) == 2,
            WAIT), srv.log()[-3000:]
        assert not delivered(world, "shared.example")
        n = len(delivered(world, "enforce.example"))
        submit(srv, "bob@enforce.example")
        assert wait_for(lambda: len(delivered(world, "enforce.example"))
                        > n, WAIT), srv.log()[-3000:]
        assert not delivered(world, "shared.example")
    finally:
        https.hold[host].set()
    assert wait_for(lambda: len(delivered(world, "shared.example")) == 3,
                    WAIT), srv.log()[-3000:]
    assert wait_for(lambda: len(lines(srv, "status=sent")) == 4, 10)
    assert https.hosts().count(host) == 1
    assert len(lines(srv, "domain=shared.example id=s1 mode=enforce")) == 1
    tls = lines(srv, "tls relay=")
    assert len(tls) == 4 and all("verified=mta-sts" in l for l in tls), tls


def test_testing_mode_delivers_and_logs(world, make_server):
    srv = sender(world, make_server)
    submit(srv, "bob@testing.example")
    assert wait_for(lambda: delivered(world, "testing.example"), WAIT), \
        srv.log()[-3000:]
    assert wait_for(lambda: lines(srv, "status=sent"), 10)
    log = srv.log()
    assert "mta-sts testing host=mxalias.sts.example would fail=" \
        "\"MTA-STS policy of testing.example (testing, id t1) does not " \
        "list MX host mxalias.sts.example\"" in log, log[-3000:]
    assert "mta-sts testing relay=mxalias.sts.example[127.0.0.14]:25 " \
        "would fail=\"certificate: " in log, log[-3000:]
    assert lines(srv, "tls relay=mxalias.sts.example")[0].endswith(
        "verified=no")


@pytest.mark.parametrize("domain,why", [
    ("redirect.example", "HTTP status 301"),
    ("big.example", "policy over 64 KiB"),
    ("html.example", "media type is not text/plain"),
    ("wrongcert.example", "TLS: error:0A000086:SSL routines::certificate "
                          "verify failed"),
])
def test_unusable_policy_is_no_policy(world, make_server, domain, why):
    srv = sender(world, make_server)
    before = list(world["https"].hosts())
    submit(srv, "bob@" + domain)
    assert wait_for(lambda: delivered(world, domain), WAIT), \
        srv.log()[-3000:]
    assert "mta-sts domain=%s fetch=mta-sts.%s error=\"%s\" policy=none" \
        % (domain, domain, why) in srv.log(), srv.log()[-3000:]
    # one request, the redirect not followed (none over a failed
    # handshake)
    assert world["https"].hosts()[len(before):] == \
        ([] if domain == "wrongcert.example" else ["mta-sts." + domain])


def write_cache(srv, domain, txt_id, policy):
    """A cache entry written while the server is stopped, owned as the
    queue process made its directory."""
    d = os.path.join(srv.spool, "queue", "mta-sts")
    assert wait_for(lambda: os.path.isdir(d), 10)
    srv.stop()
    path = os.path.join(d, "p." + domain)
    with open(path, "w") as f:
        f.write("postern-mta-sts 1\nid %s\nexpires 4000000000\n\n%s"
                % (txt_id, policy))
    st = os.stat(d)
    os.chown(path, st.st_uid, st.st_gid)
    os.chmod(path, 0o600)
    srv.start()


def test_cached_policy_survives_server_gone_and_restart(world,
                                                        make_server):
    https2 = PolicyServer(HTTPS2_ADDR, world["cert"], world["key"],
                          world["answers"])
    try:
        srv = sender(world, make_server)
        submit(srv, "bob@cache.example")
        assert wait_for(lambda: delivered(world, "cache.example"), WAIT), \
            srv.log()[-3000:]
        assert https2.hosts() == ["mta-sts.cache.example"]
    finally:
        https2.stop()
    # The policy server is gone; the queue process starts again.
    srv.stop()
    srv.start()
    start = len(srv.log())
    submit(srv, "bob@cache.example")
    assert wait_for(lambda: len(delivered(world, "cache.example")) == 2,
                    WAIT), srv.log()[-3000:]
    assert wait_for(lambda: "status=sent" in srv.log()[start:], 10)
    log = srv.log()[start:]
    assert "verified=mta-sts" in log, log
    assert "fetch=" not in log and "policy=fetched" not in log, log


def test_id_change_refetches(world, make_server):
    """The cache says id old1 and lists another MX; the TXT record says
    new2: the policy is fetched again (and lists ours): delivered."""
    srv = sender(world, make_server)
    write_cache(srv, "idchange.example", "old1",
                "version: STSv1\nmode: enforce\nmx: mx.elsewhere.example\n"
                "max_age: 86400\n")
    before = world["https"].hosts().count("mta-sts.idchange.example")
    submit(srv, "bob@idchange.example")
    assert wait_for(lambda: delivered(world, "idchange.example"), WAIT), \
        srv.log()[-3000:]
    assert world["https"].hosts().count("mta-sts.idchange.example") == \
        before + 1
    assert "mta-sts domain=idchange.example id=new2 mode=enforce" in \
        srv.log()
    with open(os.path.join(srv.spool, "queue", "mta-sts",
                           "p.idchange.example")) as f:
        assert "\nid new2\n" in f.read()


def test_failed_refetch_keeps_cached_policy(world, make_server):
    """A new id, but the policy server is down: the cached policy (which
    lists another MX) stays in force: deferred, not delivered."""
    srv = sender(world, make_server)
    write_cache(srv, "keep.example", "old3",
                "version: STSv1\nmode: enforce\nmx: mx.elsewhere.example\n"
                "max_age: 86400\n")
    submit(srv, "bob@keep.example")
    assert wait_for(lambda: lines(srv, "status=deferred"), WAIT), \
        srv.log()[-3000:]
    assert "mta-sts domain=keep.example fetch=mta-sts.keep.example " \
        "error=" in srv.log()
    assert "policy=cached" in srv.log()
    assert "does not list MX host mx.sts.example" in \
        lines(srv, "status=deferred")[0]
    assert not delivered(world, "keep.example")


def test_dane_wins_over_enforce(world, make_server):
    srv = sender(world, make_server)
    submit(srv, "bob@danests.example")
    assert wait_for(lambda: delivered(world, "danests.example"), WAIT), \
        srv.log()[-3000:]
    assert wait_for(lambda: lines(srv, "status=sent"), 10)
    assert "verified=dane-ee" in lines(srv, "tls relay=mx.danests")[0]
    # the policy was there, and would have skipped the MX
    assert "mta-sts domain=danests.example id=d1 mode=enforce " \
        "max_age=86400 policy=fetched" in srv.log()
    assert "skipped" not in srv.log()


def test_tls_policy_overrides_mta_sts(world, make_server):
    """tls-policy for the domain: MTA-STS is not even asked (for the
    other domains it is)."""
    srv = sender(world, make_server,
                 tls_policy="nomatch.example encrypt")
    n = len(delivered(world, "nomatch.example"))
    submit(srv, "bob@nomatch.example")
    assert wait_for(lambda: len(delivered(world, "nomatch.example")) > n,
                    WAIT), srv.log()[-3000:]
    assert "mta-sts" not in srv.log()
    submit(srv, "bob@enforce.example")
    assert wait_for(lambda: "verified=mta-sts" in srv.log(), WAIT), \
        srv.log()[-3000:]
    assert "mta-sts domain=nomatch.example" not in srv.log()


def test_mta_sts_no(world, make_server):
    srv = sender(world, make_server, mta_sts="no")
    n = len(delivered(world, "nomatch.example"))
    submit(srv, "bob@nomatch.example")
    assert wait_for(lambda: len(delivered(world, "nomatch.example")) > n,
                    WAIT), srv.log()[-3000:]
    assert "mta-sts" not in srv.log()
