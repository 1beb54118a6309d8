"""Relay control and address parsing (THREATS R-01, R-04, R-05): the MX
never relays, whatever form the recipient takes."""

import time

import pytest

from helpers import split_received, read_file, wait_for

IP = "127.0.0.1"
SRV = "mx.local.test"
DOM = "nmap.scanme.org"

RELAY = (554, "5.7.1")
NO_MAILBOX = (550, "5.1.1")
BAD_RCPT = (501, "5.1.3")

# THREATS.md R-01: the 16 MAIL/RCPT pairs of nmap's smtp-open-relay.nse,
# with the fixture's names. mx.local.test is our host name but not one of
# the served domains (only local.test is), so where the table expects
# "550 5.1.1" for a recipient at mx.local.test, "554 5.7.1" is also right.
NMAP_FORMS = [
    ("", "relaytest@%s" % DOM, [RELAY]),
    ("antispam@%s" % DOM, "relaytest@%s" % DOM, [RELAY]),
    ("antispam@%s" % SRV, "relaytest@%s" % DOM, [RELAY]),
    ("antispam@[%s]" % IP, "relaytest@%s" % DOM, [RELAY]),
    ("antispam@[%s]" % IP, "relaytest%%%s@[%s]" % (DOM, IP),
     [NO_MAILBOX, RELAY]),
    ("antispam@[%s]" % IP, "relaytest%%%s@%s" % (DOM, SRV),
     [NO_MAILBOX, RELAY]),
    ("antispam@[%s]" % IP, '"relaytest@%s"' % DOM, [BAD_RCPT]),
    ("antispam@[%s]" % IP, '"relaytest%%%s"' % DOM, [BAD_RCPT]),
    ("antispam@[%s]" % IP, "relaytest@%s@[%s]" % (DOM, IP),
     [BAD_RCPT, RELAY]),
    ("antispam@[%s]" % IP, '"relaytest@%s"@[%s]' % (DOM, IP),
     [NO_MAILBOX, RELAY]),
    ("antispam@[%s]" % IP, "relaytest@%s@%s" % (DOM, SRV),
     [BAD_RCPT, NO_MAILBOX, RELAY]),
    ("antispam@[%s]" % IP, "@[%s]:relaytest@%s" % (IP, DOM), [RELAY]),
    ("antispam@[%s]" % IP, "@%s:relaytest@%s" % (SRV, DOM), [RELAY]),
    ("antispam@[%s]" % IP, "%s!relaytest" % DOM, [BAD_RCPT]),
    ("antispam@[%s]" % IP, "%s!relaytest@[%s]" % (DOM, IP),
     [NO_MAILBOX, RELAY]),
    ("antispam@[%s]" % IP, "%s!relaytest@%s" % (DOM, SRV),
     [NO_MAILBOX, RELAY]),
]


def rcpt(server, to, sender="s@example.org", mail_params=b""):
    """Fresh session: EHLO, MAIL (must be 250), RCPT TO:<to>; returns the
    RCPT reply. `to` may be bytes."""
    if isinstance(to, str):
        to = to.encode()
    if isinstance(sender, str):
        sender = sender.encode()
    with server.client() as c:
        c.ehlo()
        r = c.cmd(b"MAIL FROM:<" + sender + b">" + mail_params)
        assert r.code == 250, r
        r = c.cmd(b"RCPT TO:<" + to + b">")
        c.cmd("QUIT")
        return r


def test_relay_denied(server):
    r = rcpt(server, "x@example.net")
    assert r.is_(554, "5.7.1"), r


def test_relay_denied_ipv6(server):
    with server.client("::1") as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<a@example.org>", 250)
        c.expect_cmd("RCPT TO:<victim@example.net>", 554, "5.7.1")


def test_unknown_local_user(server):
    r = rcpt(server, "nosuchuser@local.test")
    assert r.is_(550, "5.1.1"), r


def test_known_users_any_case(server):
    assert rcpt(server, "alice@local.test").code == 250
    assert rcpt(server, "Bob@LOCAL.TEST").code == 250


def test_relay_denied_even_from_local_sender(server):
    r = rcpt(server, "x@example.net", sender="alice@local.test")
    assert r.is_(554, "5.7.1"), r


@pytest.mark.parametrize("sender,to,expected", NMAP_FORMS,
                         ids=["form%d" % (i + 1)
                              for i in range(len(NMAP_FORMS))])
def test_nmap_relay_forms(server, sender, to, expected):
    r = rcpt(server, to, sender=sender)
    assert r.code // 100 != 2, "open relay: %s -> %r" % (to, r)
    assert (r.code, r.enh) in expected, "%s: got %r, want one of %s" % (
        to, r, expected)


def test_nmap_relay_forms_one_session_no_2xx(server):
    """All 16 in one session, as nmap sends them (RSET, MAIL, RCPT): never
    a 2xx to any RCPT, even when the error limit ends the session."""
    with server.client() as c:
        c.ehlo()
        for sender, to, _ in NMAP_FORMS:
            try:
                c.cmd("RSET")
                c.cmd("MAIL FROM:<%s>" % sender)
                r = c.cmd("RCPT TO:<%s>" % to)
            except Exception:
                break
            assert r.code // 100 != 2, (to, r)
            if r.code == 421:
                break


# -- address syntax ------------------------------------------------


def test_quoted_local_part_is_same_mailbox(server):
    r = rcpt(server, '"alice"@local.test')
    assert r.code == 250, r


@pytest.mark.parametrize("to,expected", [
    ('"user@local.test', [BAD_RCPT]),
    ("x@[256.256.256.256]", [BAD_RCPT]),
    ("x@[IPv6:::1]", [RELAY]),
    ("x@[10.0.0.5]", [RELAY]),
    ("x@[127.0.0.1]", [RELAY, NO_MAILBOX]),
    ("x@[::1]", [BAD_RCPT]),
    ("alice@local.test@example.net", [RELAY, BAD_RCPT]),
    ("alice@local..test", [BAD_RCPT]),
    ("alice@", [BAD_RCPT]),
    ("a..b@local.test", [BAD_RCPT, NO_MAILBOX]),
    ("alice@local.test.", [(250, "2.1.5"), BAD_RCPT]),
])
def test_address_syntax(server, to, expected):
    r = rcpt(server, to)
    assert (r.code, r.enh) in expected, "%s: %r" % (to, r)


def test_source_route_ignored(server):
    """RFC 5321 section 3.6.1 / appendix C: accept the route, ignore it,
    deliver to the final mailbox."""
    before = set(server.new_files("alice"))
    with server.client() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.org>", 250)
        c.expect_cmd("RCPT TO:<@a.example,@b.example:alice@local.test>", 250)
        c.expect_cmd("DATA", 354)
        c.send(b"Subject: routed\r\n\r\nx\r\n.\r\n")
        r = c.reply()
        assert r.code == 250, r
    new = wait_for(lambda: set(server.new_files("alice")) - before, 2)
    assert len(new) == 1
    hdr, rest = split_received(read_file(new.pop()))
    assert rest == b"Subject: routed\r\n\r\nx\r\n"


def test_not_delivered_via_double_at(server):
    before = server.snapshot()
    with server.client() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.org>", 250)
        r = c.cmd("RCPT TO:<alice@local.test@example.net>")
        assert r.code in (554, 501), r
        r = c.cmd("DATA")
        assert r.code in (503, 554), r
    assert server.snapshot() == before


def test_bang_path_sender_no_hang(server):
    """R-04 / CVE-2003-0540: `.!` in an address is answered promptly."""
    with server.client() as c:
        c.ehlo()
        t = time.monotonic()
        r = c.cmd("MAIL FROM:<a.!b@example.org>", timeout=3)
        assert time.monotonic() - t < 1.0
        assert r.code in (250, 501, 553), r
        c.expect_cmd("NOOP", 250)


# -- SMTPUTF8 ------------------------------------------------------


def test_utf8_sender_needs_smtputf8(server):
    with server.client() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<\xce\xb4@example.org>\r\n")
        c.expect(553, "5.6.7")


def test_utf8_sender_with_smtputf8(server):
    with server.client() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<\xce\xb4@example.org> SMTPUTF8\r\n")
        c.expect(250)


@pytest.mark.parametrize("to", [
    b"\xf4\x90\x80\x80@local.test",   # above U+10FFFF
    b"a@local.test\xe2\x82",          # truncated sequence
    b"\xc0\xaf@local.test",           # overlong
    b"\xed\xa0\x80@local.test",       # surrogate
])
def test_bad_utf8_rcpt(server, to):
    with server.client() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<a@example.org> SMTPUTF8", 250)
        c.send(b"RCPT TO:<" + to + b">\r\n")
        c.expect(500, "5.5.2")
