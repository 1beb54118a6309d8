"""Outbound TLS (issue 9, docs/outbound.md): opportunistic STARTTLS to a
receiving server that offers it (a second postern), one retry in plain
text after a failed handshake (Postfix's `may`), and the relay host
(smarthost) with AUTH over STARTTLS, its certificate verified.

Every wait is bounded; nothing is timed.
"""

import os

import pytest

from conftest import ALICE, ALICE_PW
from helpers import list_dir, read_file, wait_for
from outbound_fixtures import BrokenTlsServer, DnsServer

WAIT = 30.0

ZONES = {"relay.example": ["@ IN A 127.0.0.1"],
         "verify.example": ["@ IN MX 10 mx.verify.example.",
                            "mx IN A 127.0.0.12"]}


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    server = DnsServer(tmp_path_factory.mktemp("dns"), zones=ZONES,
                       signed=()).start()
    yield server
    server.stop()


def first_received(msg):
    """The receiver's own Received header (the first one), unfolded: the
    submission's, further down, says TLS too."""
    head = msg.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    # (Return-Path and Delivered-To may come first)
    first = [i for i, l in enumerate(head) if l.startswith(b"Received: ")]
    assert first, head[:4]
    head = head[first[0]:]
    out = [head[0]]
    for line in head[1:]:
        if not line[:1] in (b" ", b"\t"):
            break
        out.append(line)
    return b" ".join(out)


def submit(srv, rcpt, body=b"Subject: tls test\r\n\r\nhello\r\n"):
    with srv.smtp_sub(login=(ALICE, ALICE_PW)) as s:
        s.sendmail(ALICE, [rcpt], b"From: " + ALICE.encode() + b"\r\n" + body)


def test_opportunistic_starttls(make_server, dns):
    """A receiver that offers STARTTLS gets the mail encrypted."""
    rcv = make_server(start=False, submission=True, hostname="tls.example",
                      domains="tls.example", mailbox="bob@tls.example")
    rcv.listen = ["127.0.0.7:25 mx"]
    rcv.write_config()
    rcv.start()
    srv = make_server(submission=True, outbound_delivery="yes",
                      transport="tls.example [127.0.0.7]:25",
                      **dns.directives())
    submit(srv, "bob@tls.example")
    new = rcv.new_dir("bob", "tls.example")
    assert wait_for(lambda: list_dir(new), WAIT), srv.log()[-3000:]
    msg = read_file(os.path.join(new, list_dir(new)[0]))
    assert b"(using TLSv1.3" in first_received(msg), msg[:600]
    assert b"Subject: tls test" in msg
    assert wait_for(lambda: "status=sent" in srv.log(), 10)
    log = srv.log()
    assert "tls relay=127.0.0.7[127.0.0.7]:25 tls=TLSv1.3" in log, log
    assert "verified=no" in log
    assert "status=sent" in log


@pytest.mark.parametrize("inject", [False, True])
def test_failed_handshake_retried_in_plain_text(make_server, dns, inject):
    """Postfix's `may`: the same server once more, without STARTTLS.
    Also when the server's 220 came with plain text behind it."""
    broken = BrokenTlsServer("127.0.0.8", inject=inject)
    try:
        srv = make_server(submission=True, outbound_delivery="yes",
                          transport="broken.example [127.0.0.8]:25",
                          **dns.directives())
        submit(srv, "bob@broken.example")
        assert wait_for(lambda: broken.messages, WAIT), srv.log()[-3000:]
        assert len(broken.sessions) == 2, broken.sessions
        first, second = broken.sessions
        assert first[-1] == "STARTTLS"
        assert "STARTTLS" not in second
        assert any(c.startswith("MAIL FROM:<alice@local.test>")
                   for c in second)
        assert b"Subject: tls test\r\n" in broken.messages[0]
        assert wait_for(lambda: "status=sent" in srv.log(), 10)
        if inject:
            assert "protocol error: data after STARTTLS reply" in srv.log()
        else:
            assert broken.hello[:1] == b"\x16"  # a handshake record
            assert "TLS handshake failed" in srv.log()
    finally:
        broken.stop()


def test_relay_host_with_auth(make_server, dns, tmp_path):
    """Everything goes through the smarthost (a second postern, on its
    submission port), with AUTH PLAIN after STARTTLS; its self-signed
    certificate is given as outbound-tls-ca and must name relay.example."""
    rcv = make_server(submission=True, hostname="relay.example")
    pw = os.path.join(str(tmp_path), "relay-password")
    with open(pw, "w") as f:
        f.write(ALICE_PW + "\n")
    os.chmod(pw, 0o600)
    srv = make_server(submission=True, outbound_delivery="yes",
                      relay_host="[relay.example]:%d" % rcv.sub_port("587"),
                      relay_auth="%s %s" % (ALICE, pw),
                      outbound_tls_ca=rcv.cert, **dns.directives())
    submit(srv, "zed@far.example")
    # The smarthost took it (as alice, authenticated) into its own queue.
    assert wait_for(lambda: rcv.queue_ids(), WAIT), srv.log()[-3000:]
    env, msg = rcv.queue_entry(rcv.queue_ids()[0])
    assert env["auth"] == ALICE, env
    assert b"Subject: tls test" in msg
    # The smarthost commits before its 250 reaches us: wait for our line.
    assert wait_for(lambda: "status=sent" in srv.log(), WAIT), \
        srv.log()[-2000:]
    log = srv.log()
    assert "verified=ca" in log, log[-2000:]
    assert "auth result=ok" in rcv.log()


def test_relay_certificate_must_verify(make_server, dns, tmp_path):
    """Without the right CA the smarthost is not trusted: deferred, and
    the password never sent."""
    rcv = make_server(submission=True, hostname="relay.example")
    pw = os.path.join(str(tmp_path), "relay-password")
    with open(pw, "w") as f:
        f.write(ALICE_PW + "\n")
    os.chmod(pw, 0o600)
    srv = make_server(submission=True, outbound_delivery="yes",
                      relay_host="[relay.example]:%d" % rcv.sub_port("587"),
                      relay_auth="%s %s" % (ALICE, pw), **dns.directives())
    submit(srv, "zed@far.example")
    assert wait_for(lambda: "status=deferred" in srv.log(), WAIT), \
        srv.log()[-3000:]
    assert "TLS handshake failed" in srv.log()
    assert "auth result" not in rcv.log()
    assert not rcv.queue_ids()


def tls_receiver(make_server, host, addr, domain):
    rcv = make_server(start=False, submission=True, hostname=host,
                      domains=domain, mailbox="bob@" + domain)
    rcv.listen = ["%s:25 mx" % addr]
    rcv.write_config()
    return rcv.start()


def test_tls_policy_none(make_server, dns):
    """tls-policy none: plain text even where STARTTLS is offered."""
    rcv = tls_receiver(make_server, "tls.example", "127.0.0.7",
                       "tls.example")
    srv = make_server(submission=True, outbound_delivery="yes",
                      transport="tls.example [127.0.0.7]:25",
                      tls_policy="tls.example none", **dns.directives())
    submit(srv, "bob@tls.example")
    new = rcv.new_dir("bob", "tls.example")
    assert wait_for(lambda: list_dir(new), WAIT), srv.log()[-3000:]
    msg = read_file(os.path.join(new, list_dir(new)[0]))
    assert b"(using TLS" not in first_received(msg), msg[:600]
    assert wait_for(lambda: "status=sent" in srv.log(), 10)
    tls = [l for l in srv.log().splitlines() if " tls relay=" in l]
    assert len(tls) == 1 and tls[0].endswith(" tls=none"), tls


def test_tls_policy_encrypt_never_plain(make_server, dns):
    """tls-policy encrypt: a failed handshake defers; no plain retry."""
    broken = BrokenTlsServer("127.0.0.8")
    try:
        srv = make_server(submission=True, outbound_delivery="yes",
                          transport="broken.example [127.0.0.8]:25",
                          tls_policy="broken.example encrypt",
                          **dns.directives())
        submit(srv, "bob@broken.example")
        assert wait_for(lambda: "status=deferred" in srv.log(), WAIT), \
            srv.log()[-3000:]
        assert len(broken.sessions) == 1, broken.sessions
        assert broken.sessions[0][-1] == "STARTTLS"
        assert not broken.messages
        line = [l for l in srv.log().splitlines()
                if "status=deferred" in l][0]
        assert "TLS handshake failed" in line, line
    finally:
        broken.stop()


def test_tls_policy_verify(make_server, dns):
    """tls-policy verify: the MX host's certificate must chain to
    outbound-tls-ca and name the MX host; else deferred."""
    rcv = tls_receiver(make_server, "mx.verify.example", "127.0.0.12",
                       "verify.example")
    srv = make_server(submission=True, outbound_delivery="yes",
                      tls_policy="verify.example verify",
                      outbound_tls_ca=rcv.cert, **dns.directives())
    submit(srv, "bob@verify.example")
    new = rcv.new_dir("bob", "verify.example")
    assert wait_for(lambda: list_dir(new), WAIT), srv.log()[-3000:]
    assert wait_for(lambda: "status=sent" in srv.log(), 10)
    assert "tls relay=mx.verify.example[127.0.0.12]:25" in srv.log()
    assert "verified=ca" in srv.log()
    # The same without a CA that knows the certificate: deferred.
    other = make_server(submission=True, outbound_delivery="yes",
                        tls_policy="verify.example verify",
                        **dns.directives())
    submit(other, "bob@verify.example")
    assert wait_for(lambda: "status=deferred" in other.log(), WAIT), \
        other.log()[-3000:]
    assert "TLS handshake failed" in other.log()
    assert len(list_dir(new)) == 1


def test_tls_policy_dane_needs_tlsa(make_server, dns):
    """tls-policy dane on an unsigned zone: no server qualifies."""
    tls_receiver(make_server, "mx.verify.example", "127.0.0.12",
                 "verify.example")
    srv = make_server(submission=True, outbound_delivery="yes",
                      tls_policy="verify.example dane", **dns.directives())
    submit(srv, "bob@verify.example")
    assert wait_for(lambda: "status=deferred" in srv.log(), WAIT), \
        srv.log()[-3000:]
    line = [l for l in srv.log().splitlines() if "status=deferred" in l][0]
    assert "dsn=4.7.5" in line and "DANE is required" in line, line
