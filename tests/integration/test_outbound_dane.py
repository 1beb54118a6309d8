"""DANE for outbound SMTP (RFC 7672; issue 9 item 4): when the MX host
and its `_25._tcp` TLSA records are DNSSEC-secure, TLS is mandatory and
the receiver's certificate must match a record (SSL_dane_tlsa_add); a
mismatch or a bogus TLSA answer defers the mail, never plain text.

The receiver is a second postern whose self-signed certificate names
mx.dane.example; NSD serves zones signed in the run, with the TLSA record
made from that certificate's key (3 1 1: DANE-EE, SPKI, SHA-256).
A secure TLSA RRset with no usable record (PKIX usages, unknown selector
or matching type) still makes TLS mandatory, unauthenticated (RFC 7672
2.2): never plain text.
"""

import os
import subprocess

import pytest

from conftest import ALICE, ALICE_PW
from helpers import list_dir, read_file, wait_for
from outbound_fixtures import BrokenTlsServer, DnsServer, ScriptedServer

WAIT = 30.0


def spki_sha256(cert):
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout",
                          "-pubkey"], capture_output=True, check=True,
                         timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],
                         input=pub, capture_output=True, check=True,
                         timeout=30).stdout
    import hashlib
    return hashlib.sha256(der).hexdigest()


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   capture_output=True, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key",
            "-out", name + ".pem", "-days", "30", "-subj", "/CN=" + name,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    der = subprocess.run(["openssl", "x509", "-in", name + ".pem",
                          "-outform", "DER"], cwd=d, check=True,
                         capture_output=True, timeout=30).stdout
    import hashlib
    return hashlib.sha256(der).hexdigest()


def make_leaf(d, name, host, ca):
    """NAME.key and NAME.chain (the leaf for HOST, then CA's certificate:
    RFC 7672 3.2.1, the server sends its trust anchor)."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
            "-subj", "/CN=" + host, cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=DNS:%s\n" % host)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
            "-CAkey", ca + ".key", "-CAcreateserial", "-days", "30",
            "-extfile", name + ".ext", "-out", name + ".pem", cwd=d)
    with open(os.path.join(d, name + ".chain"), "wb") as out:
        for part in (name + ".pem", ca + ".pem"):
            with open(os.path.join(d, part), "rb") as f:
                out.write(f.read())
    return os.path.join(d, name + ".chain"), os.path.join(d, name + ".key")


class ChainTlsServer(ScriptedServer):
    """A receiving server on ADDR:25 offering STARTTLS with a certificate
    chain (Python's ssl)."""

    name = b"chain.example"

    def __init__(self, addr, chain, key):
        import ssl
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(chain, key)
        super().__init__(addr)

    def starttls(self, conn):
        conn.sendall(b"220 2.0.0 go ahead\r\n")
        return self.ctx.wrap_socket(conn, server_side=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The receiver (on 127.0.0.9, .10 and .11, port 25) and the zones."""
    from conftest import Server
    root = tmp_path_factory.mktemp("dane")
    rcv = Server(os.path.join(str(root), "rcv"), submission=True,
                 hostname="mx.dane.example",
                 domains="dane.example danebad.example danebogus.example "
                         "danepkix.example",
                 mailbox="bob@dane.example bob@danebad.example "
                         "bob@danebogus.example bob@danepkix.example")
    rcv.listen = ["127.0.0.9:25 mx", "127.0.0.10:25 mx", "127.0.0.11:25 mx",
                  "127.0.0.12:25 mx"]
    rcv.write_config()
    rcv.start()
    good = spki_sha256(rcv.cert)
    # DANE-TA: leaves signed by a test CA, and one by another CA.
    pki = os.path.join(str(root), "pki")
    os.mkdir(pki)
    ca = make_ca(pki, "ca1")
    make_ca(pki, "ca2")
    rcv.ta_good = make_leaf(pki, "good", "mx.daneta.example", "ca1")
    rcv.ta_bad = make_leaf(pki, "bad", "mx.danetabad.example", "ca2")
    zones = {
        "dane.example": ["@ IN MX 10 mx.dane.example.",
                         "mx IN A 127.0.0.9",
                         "_25._tcp.mx IN TLSA 3 1 1 " + good],
        "danebad.example": ["@ IN MX 10 mx.danebad.example.",
                            "mx IN A 127.0.0.10",
                            "_25._tcp.mx IN TLSA 3 1 1 " + "00" * 32],
        "danebogus.example": ["@ IN MX 10 mx.danebogus.example.",
                              "mx IN A 127.0.0.11",
                              "_25._tcp.mx IN TLSA 3 1 1 " + good],
        # No usable record: PKIX-EE, an unknown selector, an unknown
        # matching type, malformed data (RFC 7672 2.2).
        "danepkix.example": ["@ IN MX 10 mx.danepkix.example.",
                             "mx IN A 127.0.0.12",
                             "_25._tcp.mx IN TLSA 1 1 1 " + "00" * 32,
                             "_25._tcp.mx IN TLSA 3 7 1 " + "00" * 32,
                             "_25._tcp.mx IN TLSA 3 1 9 " + "00" * 32,
                             # malformed: not a DER certificate, a digest
                             # of the wrong length
                             "_25._tcp.mx IN TLSA 2 0 0 0011223344",
                             "_25._tcp.mx IN TLSA 3 1 1 " + "00" * 20],
        # The same, served by a receiver whose handshake fails.
        "danepkixbroken.example": ["@ IN MX 10 mx.danepkixbroken.example.",
                                   "mx IN A 127.0.0.13",
                                   "_25._tcp.mx IN TLSA 1 1 1 "
                                   + "00" * 32],
        # DANE-TA(2), full certificate (0), SHA-256 (1) of ca1.
        "daneta.example": ["@ IN MX 10 mx.daneta.example.",
                           "mx IN A 127.0.0.14",
                           "_25._tcp.mx IN TLSA 2 0 1 " + ca],
        "danetabad.example": ["@ IN MX 10 mx.danetabad.example.",
                              "mx IN A 127.0.0.15",
                              "_25._tcp.mx IN TLSA 2 0 1 " + ca],
    }
    dns = DnsServer(os.path.join(str(root), "dns"), zones=zones,
                    signed=tuple(zones),
                    corrupt=(("danebogus.example", "TLSA"),)).start()
    yield rcv, dns
    dns.stop()
    rcv.stop()


def submit(srv, rcpt):
    with srv.smtp_sub(login=(ALICE, ALICE_PW)) as s:
        s.sendmail(ALICE, [rcpt], b"From: alice@local.test\r\n"
                   b"Subject: dane test\r\n\r\nhello\r\n")


def test_dane_match_delivers_over_tls(world, make_server):
    rcv, dns = world
    srv = make_server(submission=True, outbound_delivery="yes", **dns.directives())
    submit(srv, "bob@dane.example")
    new = rcv.new_dir("bob", "dane.example")
    assert wait_for(lambda: list_dir(new), WAIT), srv.log()[-3000:]
    msg = read_file(os.path.join(new, list_dir(new)[0]))
    first = msg.split(b"\r\n\r\n", 1)[0].split(b"\r\nFrom:")[0]
    first = first[first.index(b"Received: "):]  # after Return-Path, ...
    assert first.startswith(b"Received: from mx.local.test")
    assert first.count(b"Received:") == 2  # ours, then the submission's
    assert b"(using TLSv1.3" in first.split(b"\r\nReceived:")[0], first
    assert wait_for(lambda: "status=sent" in srv.log(), 10)
    log = srv.log()
    assert "tls relay=mx.dane.example[127.0.0.9]:25 tls=TLSv1.3" in log
    assert "verified=dane-ee" in log
    assert "status=sent" in log


def test_dane_mismatch_defers_never_plain(world, make_server):
    rcv, dns = world
    srv = make_server(submission=True, outbound_delivery="yes", **dns.directives())
    start = len(rcv.log())
    submit(srv, "bob@danebad.example")
    assert wait_for(lambda: "status=deferred" in srv.log(), WAIT), \
        srv.log()[-3000:]
    log = srv.log()
    line = [l for l in log.splitlines() if "status=deferred" in l][0]
    assert "dsn=4.7.5" in line and "TLS handshake failed" in line, line
    assert "status=sent" not in log
    # The receiver saw a handshake, never a MAIL in plain text.
    assert "bob@danebad.example" not in rcv.log()[start:]
    assert not list_dir(rcv.new_dir("bob", "danebad.example"))


def test_bogus_tlsa_defers(world, make_server):
    rcv, dns = world
    srv = make_server(submission=True, outbound_delivery="yes", **dns.directives())
    start = len(rcv.log())
    submit(srv, "bob@danebogus.example")
    assert wait_for(lambda: "status=deferred" in srv.log(), WAIT), \
        srv.log()[-3000:]
    line = [l for l in srv.log().splitlines()
            if "status=deferred" in l][0]
    assert "dsn=4.7.5" in line and "TLSA of mx.danebogus.example is bogus" \
        in line, line
    assert "bob@danebogus.example" not in rcv.log()[start:]


def test_insecure_zone_stays_opportunistic(world, make_server):
    """Without a trust anchor the same zone is insecure: no DANE, the
    mismatching record is ignored and mail goes over unverified TLS."""
    rcv, dns = world
    d = dns.directives()
    d["dns-trust-anchor"] = "none"
    srv = make_server(submission=True, outbound_delivery="yes", **d)
    submit(srv, "bob@danebad.example")
    new = rcv.new_dir("bob", "danebad.example")
    assert wait_for(lambda: list_dir(new), WAIT), srv.log()[-3000:]
    assert wait_for(lambda: "verified=no" in srv.log(), 10)


def test_unusable_tlsa_still_encrypts(world, make_server):
    """RFC 7672 2.2: secure TLSA records, none usable: mandatory TLS,
    unauthenticated (Postfix's `encrypt`); delivered, logged so."""
    rcv, dns = world
    srv = make_server(submission=True, outbound_delivery="yes",
                      **dns.directives())
    submit(srv, "bob@danepkix.example")
    new = rcv.new_dir("bob", "danepkix.example")
    assert wait_for(lambda: list_dir(new), WAIT), srv.log()[-3000:]
    msg = read_file(os.path.join(new, list_dir(new)[0]))
    first = msg[msg.index(b"Received: "):].split(b"\r\nReceived:")[0]
    assert b"(using TLSv1.3" in first, msg[:600]
    assert wait_for(lambda: "status=sent" in srv.log(), 10)
    line = [l for l in srv.log().splitlines()
            if "tls relay=mx.danepkix.example[127.0.0.12]:25" in l][0]
    assert "tls=TLSv1.3" in line and "verified=no dane=unusable" in line, \
        line


def test_unusable_tlsa_failed_handshake_defers_never_plain(world,
                                                           make_server):
    """The same with a failed handshake: deferred, never a retry in plain
    text (which `may` would do)."""
    rcv, dns = world
    bad = BrokenTlsServer("127.0.0.13")
    try:
        srv = make_server(submission=True, outbound_delivery="yes",
                          **dns.directives())
        submit(srv, "bob@danepkixbroken.example")
        done = ("status=deferred", "status=sent", "status=bounced")
        assert wait_for(lambda: any(d in srv.log() for d in done), WAIT), \
            srv.log()[-3000:]
        log = srv.log()
        line = [l for l in log.splitlines() if any(d in l for d in done)][0]
        assert "status=deferred" in line and "dsn=4.7.5" in line, line
        assert "status=sent" not in log
        sessions = list(bad.sessions)
    finally:
        bad.stop()
    assert sessions and all("STARTTLS" in c for c in sessions), sessions
    assert not any(x.upper().startswith("MAIL") for c in sessions
                   for x in c), sessions
    assert not bad.messages


def test_dane_ta_chain_delivers(world, make_server):
    """DANE-TA(2): the server's chain ends in the CA of the TLSA record,
    its leaf names the MX host: delivered, logged verified=dane-ta."""
    rcv, dns = world
    ta = ChainTlsServer("127.0.0.14", *rcv.ta_good)
    try:
        srv = make_server(submission=True, outbound_delivery="yes",
                          **dns.directives())
        submit(srv, "bob@daneta.example")
        assert wait_for(lambda: ta.messages, WAIT), srv.log()[-3000:]
        assert wait_for(lambda: "status=sent" in srv.log(), 10)
        sessions = list(ta.sessions)
    finally:
        ta.stop()
    assert b"Subject: dane test\r\n" in ta.messages[0]
    # MAIL came after the handshake, in the same session.
    cmds = sessions[0]
    assert "STARTTLS" in cmds and any(
        c.upper().startswith("MAIL") for c in
        cmds[cmds.index("STARTTLS"):]), cmds
    line = [l for l in srv.log().splitlines()
            if "tls relay=mx.daneta.example[127.0.0.14]:25" in l][0]
    assert "verified=dane-ta" in line and "dane=unusable" not in line, line


def test_dane_ta_other_ca_defers(world, make_server):
    """A leaf from a CA that no TLSA record names: deferred, never
    plain text."""
    rcv, dns = world
    bad = ChainTlsServer("127.0.0.15", *rcv.ta_bad)
    try:
        srv = make_server(submission=True, outbound_delivery="yes",
                          **dns.directives())
        submit(srv, "bob@danetabad.example")
        assert wait_for(lambda: "status=deferred" in srv.log(), WAIT), \
            srv.log()[-3000:]
        sessions = list(bad.sessions)
    finally:
        bad.stop()
    log = srv.log()
    line = [l for l in log.splitlines() if "status=deferred" in l][0]
    assert "dsn=4.7.5" in line and "TLS handshake failed" in line, line
    assert "status=sent" not in log and not bad.messages
    assert sessions and all(c[-1] == "STARTTLS" for c in sessions), sessions
