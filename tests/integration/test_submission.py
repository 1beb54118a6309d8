"""Submission policy on 587, 2525 and 465 (issue 3, items 5-7 and 9;
THREATS.md A-01, R-01, R-03, R-04, T-04): TLS before anything, AUTH only
under TLS, MAIL only after AUTH, relay for authenticated users only, to
the parsed domain, with the sender and the From: header bound to the
login. Port 2525 must be exactly as strict as 587: the same dialogue gives
the same bytes on both.

The ports are free ones standing for 587, 2525 and 465 (conftest.py,
`submission=True`); replies are compared with the texts of src/smtp/reply.c.
"""

import re
import shutil
import subprocess
import time

import pytest

from conftest import ALICE, ALICE_ALIAS, ALICE_PW, BOB, BOB_PW, HOSTNAME
from helpers import (LOG_PREFIX_RE, QUEUED_RE, STARTTLS_SETTLE, b64,
                     plain_b64, read_file, split_received, unfold)

NEED_TLS = b"530 5.7.0 Must issue a STARTTLS command first\r\n"
NEED_AUTH = b"530 5.7.0 Authentication required\r\n"
AUTH_OK = b"235 2.7.0 Authentication successful\r\n"
AUTH_FAILED = b"535 5.7.8 Authentication credentials invalid\r\n"
SENDER_NOT_OWNED = b"553 5.7.1 Sender address rejected: not owned by user\r\n"
FROM_NOT_OWNED = b"550 5.7.1 From header address not owned by user\r\n"
AUTH_NOT_AVAILABLE = b"503 5.5.1 AUTH not available\r\n"
SENDER_OK = b"250 2.1.0 Sender ok\r\n"
RCPT_OK = b"250 2.1.5 Recipient ok\r\n"
DATA_GO = b"354 End data with <CR><LF>.<CR><LF>\r\n"

ALICE_PLAIN = "AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw=="  # \0alice@local.test\0pass
assert ALICE_PLAIN == plain_b64(ALICE, ALICE_PW)

PLAIN_PORTS = ["587", "2525"]
ALL_PORTS = ["587", "2525", "465"]

IP = "127.0.0.1"
SRV = HOSTNAME
DOM = "nmap.scanme.org"

# THREATS.md R-01: the 16 (MAIL FROM, RCPT TO) pairs of nmap's
# smtp-open-relay.nse with the fixture's names (ip = 127.0.0.1).
NMAP_FORMS = [
    ("", "relaytest@%s" % DOM),
    ("antispam@%s" % DOM, "relaytest@%s" % DOM),
    ("antispam@%s" % SRV, "relaytest@%s" % DOM),
    ("antispam@[%s]" % IP, "relaytest@%s" % DOM),
    ("antispam@[%s]" % IP, "relaytest%%%s@[%s]" % (DOM, IP)),
    ("antispam@[%s]" % IP, "relaytest%%%s@%s" % (DOM, SRV)),
    ("antispam@[%s]" % IP, '"relaytest@%s"' % DOM),
    ("antispam@[%s]" % IP, '"relaytest%%%s"' % DOM),
    ("antispam@[%s]" % IP, "relaytest@%s@[%s]" % (DOM, IP)),
    ("antispam@[%s]" % IP, '"relaytest@%s"@[%s]' % (DOM, IP)),
    ("antispam@[%s]" % IP, "relaytest@%s@%s" % (DOM, SRV)),
    ("antispam@[%s]" % IP, "@[%s]:relaytest@%s" % (IP, DOM)),
    ("antispam@[%s]" % IP, "@%s:relaytest@%s" % (SRV, DOM)),
    ("antispam@[%s]" % IP, "%s!relaytest" % DOM),
    ("antispam@[%s]" % IP, "%s!relaytest@[%s]" % (DOM, IP)),
    ("antispam@[%s]" % IP, "%s!relaytest@%s" % (DOM, SRV)),
]

BAD_RCPT = b"501 5.1.3 Bad recipient address syntax\r\n"
RELAY_DENIED = b"554 5.7.1 Relay access denied\r\n"
NO_MAILBOX = b"550 5.1.1 No such mailbox here\r\n"

# What an authenticated user gets for each RCPT of NMAP_FORMS: relayed to
# the canonical address of the one parse (source route dropped; % and !
# are part of the local part, never routing), or refused. A recipient at
# an address literal of a loopback or private network is never routed
# (THREATS R-04 "never route address literals of internal or loopback
# addresses"): 554 5.7.1, or 550 5.1.1 if the server's own literal is
# taken as local.
LITERAL_REFUSED = [RELAY_DENIED, NO_MAILBOX]
AUTH_EXPECT = [
    ("relay", "relaytest@%s" % DOM),
    ("relay", "relaytest@%s" % DOM),
    ("relay", "relaytest@%s" % DOM),
    ("relay", "relaytest@%s" % DOM),
    ("refuse", LITERAL_REFUSED),
    ("relay", "relaytest%%%s@%s" % (DOM, SRV)),
    ("refuse", [BAD_RCPT]),
    ("refuse", [BAD_RCPT]),
    ("refuse", [BAD_RCPT] + LITERAL_REFUSED),
    ("refuse", LITERAL_REFUSED),
    ("refuse", [BAD_RCPT]),
    ("relay", "relaytest@%s" % DOM),
    ("relay", "relaytest@%s" % DOM),
    ("refuse", [BAD_RCPT]),
    ("refuse", LITERAL_REFUSED),
    ("relay", "%s!relaytest@%s" % (DOM, SRV)),
]


def message(sender=ALICE, to="carol@example.net", subject="test",
            from_header=None, body="hello\r\n"):
    fh = from_header if from_header is not None else "<%s>" % sender
    return ("From: %s\r\nTo: <%s>\r\nSubject: %s\r\n\r\n%s"
            % (fh, to, subject, body)).encode()


def send_message(c, msg):
    """DATA with `msg` (already dot-safe); returns the final reply."""
    c.expect_cmd("DATA", 354)
    c.send(msg + b".\r\n")
    return c.reply()


def log_since(srv, start):
    return srv.log()[start:]


# --- EHLO keywords (A-01, N-02) -----------------------------------------


@pytest.mark.parametrize("kind", PLAIN_PORTS)
def test_ehlo_before_tls_offers_starttls_and_no_auth(sub_server, kind):
    c = sub_server.sub(kind, tls=False, ehlo=False)
    r = c.expect_cmd("EHLO c.example", 250)
    kws = r.lines[1:]
    assert r.lines[0] == HOSTNAME
    assert "STARTTLS" in kws, r
    assert not any(k.upper().startswith("AUTH") for k in kws), r
    # THREATS N-02: before TLS only what leads to TLS
    assert set(re.sub(r" \d+$", "", k) for k in kws) <= {
        "PIPELINING", "SIZE", "STARTTLS", "ENHANCEDSTATUSCODES"}, r
    c.starttls(sub_server.tls_ctx())
    r = c.expect_cmd("EHLO c.example", 250)
    assert "AUTH PLAIN LOGIN" in r.lines, r
    assert "STARTTLS" not in r.lines, r  # not offered inside TLS
    c.close()


def test_ehlo_on_465_offers_auth_not_starttls(sub_server):
    c = sub_server.sub("465", ehlo=False)
    r = c.expect_cmd("EHLO c.example", 250)
    assert "AUTH PLAIN LOGIN" in r.lines, r
    assert "STARTTLS" not in r.lines, r
    c.close()


def test_mx_port_never_offers_or_accepts_auth(sub_server):
    """THREATS A-01 #2: no AUTH on the mx role, not even inside TLS."""
    c = sub_server.client()
    r = c.ehlo()
    assert not any(k.startswith("AUTH") for k in r.lines), r
    r = c.cmd("AUTH LOGIN")
    assert r.raw == AUTH_NOT_AVAILABLE, r
    c.starttls(sub_server.tls_ctx())
    r = c.expect_cmd("EHLO c.example", 250)
    assert not any(k.startswith("AUTH") for k in r.lines), r
    r = c.cmd("AUTH PLAIN " + ALICE_PLAIN)
    assert r.raw == AUTH_NOT_AVAILABLE, r
    c.close()


# --- before TLS: 530, and the guard is never asked (A-01, T-04) ------------


@pytest.mark.parametrize("kind", PLAIN_PORTS)
def test_commands_before_tls_get_530_and_guard_not_asked(sub_server, kind):
    start = len(sub_server.log())
    c = sub_server.sub(kind, tls=False)
    for line in ("AUTH PLAIN " + ALICE_PLAIN,
                 "AUTH LOGIN",
                 "AUTH PLAIN " + plain_b64(ALICE, "wrong"),
                 "MAIL FROM:<%s>" % ALICE,
                 "RCPT TO:<bob@example.net>",
                 "DATA",
                 "VRFY alice"):
        r = c.cmd(line)
        assert r.raw == NEED_TLS, (line, r)
    assert c.cmd("NOOP").code == 250
    assert c.cmd("RSET").code == 250
    # BDAT before TLS: 530, and the payload is never read as commands
    c.send(b"BDAT 10 LAST\r\nQUIT\r\nXYZ\r\n")
    r = c.reply()
    assert r.raw == NEED_TLS, r
    assert c.wait_closed(5), "session not closed after BDAT before TLS"
    assert b"221" not in c.trailing, c.trailing
    c.close()
    # a successful login elsewhere proves the log is written; none of
    # the pre-TLS AUTHs reached the guard
    sub_server.sub(kind, auth=(ALICE, ALICE_PW)).close()
    assert sub_server.wait_log(lambda t: "guard auth-ok" in t, 5, start)
    text = log_since(sub_server, start)
    assert "guard auth-failure" not in text, text
    assert text.count("guard auth-ok") == 1, text
    assert "auth result=fail" not in text, text
    assert ALICE_PLAIN not in text


def test_465_plaintext_gets_no_cleartext_reply(sub_server):
    """THREATS A-01 #3: :465 is TLS from the first byte."""
    from helpers import RawClient
    c = RawClient(sub_server.sub_port("465"))
    c.send(b"EHLO x\r\n")
    got = c.pending(3.0)
    assert b"220" not in got and b"250" not in got and b"ESMTP" not in got
    if got:
        assert got[:1] == b"\x15", got  # a TLS alert record, nothing else
    c.close()


@pytest.mark.parametrize("kind", ALL_PORTS)
def test_mail_without_auth_gets_530(sub_server, kind):
    """R-03 #1: [587T] / [465] without AUTH."""
    c = sub_server.sub(kind)
    r = c.cmd("MAIL FROM:<%s>" % ALICE)
    assert r.raw == NEED_AUTH, r
    r = c.cmd("RCPT TO:<bob@example.net>")
    assert r.code in (503, 530), r
    r = c.cmd("DATA")
    assert r.code in (503, 530), r
    assert c.cmd("QUIT").code == 221
    c.close()


# --- the 16 nmap forms -----------------------------------------------


@pytest.mark.parametrize("kind", ALL_PORTS)
@pytest.mark.parametrize("n", range(16))
def test_nmap_forms_unauthenticated_530_at_mail(sub_server, kind, n):
    sender, to = NMAP_FORMS[n]
    c = sub_server.sub(kind)
    assert c.cmd("RSET").code == 250
    r = c.cmd("MAIL FROM:<%s>" % sender)
    assert r.raw == NEED_AUTH, (sender, r)
    r = c.cmd("RCPT TO:<%s>" % to)
    assert r.code >= 500, (to, r)
    c.close()


@pytest.mark.parametrize("kind", ALL_PORTS)
@pytest.mark.parametrize("n", range(16))
def test_nmap_forms_authenticated(sub_server, kind, n):
    """Judged as ordinary submission: nmap's senders are not alice's
    (553 5.7.1; the null sender is allowed), and alice may relay to the
    parsed domain; the queue envelope holds the canonical address."""
    sender, to = NMAP_FORMS[n]
    what, expect = AUTH_EXPECT[n]
    with sub_server.sub(kind, auth=(ALICE, ALICE_PW)) as c:
        nmap_form_authenticated(sub_server, c, n, sender, to, what, expect)


def nmap_form_authenticated(sub_server, c, n, sender, to, what, expect):
    r = c.cmd("MAIL FROM:<%s>" % sender)
    if sender == "":
        assert r.raw == SENDER_OK, r
        assert c.cmd("RSET").code == 250
    else:
        assert r.raw == SENDER_NOT_OWNED, (sender, r)
    assert c.cmd("MAIL FROM:<%s>" % ALICE).raw == SENDER_OK
    r = c.cmd("RCPT TO:<%s>" % to)
    if what == "refuse":
        assert r.raw in expect, (to, r)
        c.close()
        return
    assert r.raw == RCPT_OK, (to, r)
    r = send_message(c, message(to=to, subject="form %d" % n))
    assert r.code == 250, r
    qid = r.queue_id
    assert qid and qid in sub_server.queue_ids(), (qid, r)
    env, msg = sub_server.queue_entry(qid)
    assert env["remote"] == [expect], env
    assert env["rcpt"] == [], env
    assert env["sender"] == ALICE and env["auth"] == ALICE, env
    assert b"Subject: form %d\r\n" % n in msg
    c.close()


@pytest.mark.parametrize("to", ["x@[IPv6:::1]", "x@[10.0.0.5]",
                                "x@[127.0.0.1]", "x@[192.168.1.1]"])
def test_authenticated_no_route_to_internal_literals(sub_server, to):
    """THREATS R-04: never route address literals of internal or loopback
    addresses, even for an authenticated user."""
    with sub_server.sub("587", auth=(ALICE, ALICE_PW)) as c:
        c.expect_cmd("MAIL FROM:<%s>" % ALICE, 250)
        r = c.cmd("RCPT TO:<%s>" % to)
        assert r.raw in LITERAL_REFUSED, (to, r)


@pytest.mark.parametrize("to,canonical", [
    ('"a b"@example.net', '"a b"@example.net'),
    ('"alice"@example.net', 'alice@example.net'),
    ("@a.example,@b.example:carol@example.net", "carol@example.net"),
    ("user%remote@example.net", "user%remote@example.net"),
])
def test_authenticated_relay_canonical_address(sub_server, to, canonical):
    """R-01/R-04: the queue holds the one canonical parse (a quoted local
    part that needs no quotes loses them; a source route is dropped; %
    stays in the local part). Escaping per docs/queue-format.md."""
    with sub_server.sub("587", auth=(ALICE, ALICE_PW)) as c:
        c.expect_cmd("MAIL FROM:<%s>" % ALICE, 250)
        assert c.cmd("RCPT TO:<%s>" % to).raw == RCPT_OK
        r = send_message(c, message(to="x@example.net"))
        assert r.code == 250, r
    env, _ = sub_server.queue_entry(r.queue_id)
    assert env["remote"] == [canonical], env
    raw = read_file(sub_server.queue_dir() + "/%s.env" % r.queue_id)
    assert b"\nremote " in raw and b" \n" not in raw


def test_authenticated_utf8_recipients(sub_server):
    """R-05 under AUTH: UTF-8 needs SMTPUTF8 (553 5.6.7) and must be valid
    (500 5.5.2); a valid one is queued, escaped."""
    with sub_server.sub("465", auth=(ALICE, ALICE_PW)) as c:
        c.expect_cmd("MAIL FROM:<%s>" % ALICE, 250)
        r = c.cmd("RCPT TO:<\u03b4@example.net>".encode("utf-8"))
        assert r.raw == (b"553 5.6.7 Must declare SMTPUTF8 to send a UTF-8 "
                         b"address\r\n"), r
        assert c.cmd("RSET").code == 250
        c.expect_cmd("MAIL FROM:<%s> SMTPUTF8" % ALICE, 250)
        for bad in (b"RCPT TO:<\xf4\x90\x80\x80@example.net>",
                    b"RCPT TO:<a@example.net\xe2\x82>",
                    b"RCPT TO:<\xc0\xaf@example.net>"):
            assert c.cmd(bad).raw == b"500 5.5.2 Invalid UTF-8\r\n", bad
        assert c.cmd("RCPT TO:<\u03b4@example.net>".encode()).raw == RCPT_OK
        r = send_message(c, message())
        assert r.code == 250, r
    env, _ = sub_server.queue_entry(r.queue_id)
    assert env["remote"] == ["\u03b4@example.net".encode().decode("latin-1")]
    raw = read_file(sub_server.queue_dir() + "/%s.env" % r.queue_id)
    assert b"remote %CE%B4@example.net\n" in raw, raw


@pytest.mark.parametrize("kind", ["587", "465"])
def test_no_relay_by_ip_trust(sub_server, kind):
    """R-02 on submission: XCLIENT/XFORWARD are not implemented, a PROXY
    line is not a command; relay needs AUTH whatever the client says."""
    with sub_server.sub(kind) as c:
        for line in ("XCLIENT ADDR=127.0.0.1 NAME=localhost",
                     "XFORWARD ADDR=127.0.0.1"):
            assert c.cmd(line).raw == b"502 5.5.1 Command not implemented\r\n"
        assert c.cmd("MAIL FROM:<%s>" % ALICE).raw == NEED_AUTH
    with sub_server.sub(kind, ehlo=False, tls=False) if kind != "465" \
            else sub_server.sub(kind, ehlo=False) as c:
        r = c.cmd("PROXY TCP4 127.0.0.1 192.0.2.10 1234 25")
        assert r.code >= 500, r


# --- sender binding and From: header ---------------------------------


@pytest.mark.parametrize("kind", ALL_PORTS)
def test_sender_must_be_owned(sub_server, kind):
    c = sub_server.sub(kind, auth=(ALICE, ALICE_PW))
    for spoof in ("ceo@local.test", BOB, "alice@example.net",
                  "alice@local.test.evil.example", "salesx@local.test"):
        r = c.cmd("MAIL FROM:<%s>" % spoof)
        assert r.raw == SENDER_NOT_OWNED, (spoof, r)
    assert c.cmd("MAIL FROM:<%s>" % ALICE_ALIAS).raw == SENDER_OK
    c.expect_cmd("RCPT TO:<carol@example.net>", 250)
    r = send_message(c, message(sender=ALICE_ALIAS,
                                from_header="Sales <%s>" % ALICE_ALIAS))
    assert r.code == 250, r
    env, _ = sub_server.queue_entry(r.queue_id)
    assert env["sender"] == ALICE_ALIAS and env["auth"] == ALICE, env
    c.close()


def test_bob_cannot_send_as_alice_or_her_alias(sub_server):
    c = sub_server.sub("587", auth=(BOB, BOB_PW))
    for spoof in (ALICE, ALICE_ALIAS):
        assert c.cmd("MAIL FROM:<%s>" % spoof).raw == SENDER_NOT_OWNED
    assert c.cmd("MAIL FROM:<%s>" % BOB).raw == SENDER_OK
    c.close()


FROM_SPOOFS = [
    "Bob <bob@local.test>",
    "ceo@local.test",
    '"alice@local.test" <ceo@local.test>',
    "alice@local.test (x) <ceo@local.test>",
    "<alice@local.test>, <ceo@local.test>",
    "Alice <alice@local.test",
    "",
]


@pytest.mark.parametrize("fh", FROM_SPOOFS)
def test_from_header_spoof_refused_at_end_of_data(sub_server, fh):
    c = sub_server.sub("587", auth=(ALICE, ALICE_PW))
    c.expect_cmd("MAIL FROM:<%s>" % ALICE, 250)
    c.expect_cmd("RCPT TO:<carol@example.net>", 250)
    before = sub_server.queue_ids()
    r = send_message(c, message(from_header=fh))
    assert r.raw == FROM_NOT_OWNED, (fh, r)
    assert sub_server.queue_ids() == before
    assert c.cmd("NOOP").code == 250  # the session goes on
    c.close()


def test_from_header_two_fields_refused(sub_server):
    c = sub_server.sub("465", auth=(ALICE, ALICE_PW))
    c.expect_cmd("MAIL FROM:<%s>" % ALICE, 250)
    c.expect_cmd("RCPT TO:<carol@example.net>", 250)
    msg = (b"From: <alice@local.test>\r\nFrom: <ceo@local.test>\r\n"
           b"Subject: two\r\n\r\nx\r\n")
    assert send_message(c, msg).raw == FROM_NOT_OWNED
    c.close()


@pytest.mark.parametrize("fh", [
    "Alice <alice@local.test>",
    "alice@local.test",
    "ALICE@local.test",
    "Sales Team <sales@local.test>",
    '"Doe, Alice" <alice@local.test>',
    "alice@local.test (Alice)",
    "<alice@local.test>, Sales <sales@local.test>",
])
def test_from_header_owned_accepted(sub_server, fh):
    c = sub_server.sub("587", auth=(ALICE, ALICE_PW))
    c.expect_cmd("MAIL FROM:<%s>" % ALICE, 250)
    c.expect_cmd("RCPT TO:<carol@example.net>", 250)
    r = send_message(c, message(from_header=fh))
    assert r.code == 250, (fh, r)
    c.close()


def test_from_header_check_off_allows_spoofed_header(make_server):
    srv = make_server(submission=True, from_header_check="no")
    c = srv.sub("587", auth=(ALICE, ALICE_PW))
    c.expect_cmd("MAIL FROM:<%s>" % ALICE, 250)
    c.expect_cmd("RCPT TO:<carol@example.net>", 250)
    r = send_message(c, message(from_header="CEO <ceo@local.test>"))
    assert r.code == 250, r
    # the envelope sender is still bound to the login
    assert c.cmd("MAIL FROM:<ceo@local.test>").raw == SENDER_NOT_OWNED
    c.close()


# --- relay: local delivery and the outbound queue ------------------------


@pytest.mark.parametrize("kind", ALL_PORTS)
def test_relay_queued_with_envelope_and_local_delivered(sub_server, kind):
    """Issue item 6: remote recipients go to spool/queue/<id>.env and .msg
    (version 2, auth record), local ones to the Maildir, one commit."""
    before = set(sub_server.new_files("bob"))
    c = sub_server.sub(kind, auth=(ALICE, ALICE_PW))
    c.expect_cmd("MAIL FROM:<%s>" % ALICE, 250)
    for to in ("carol@example.net", BOB, "dave@example.org",
               "Carol@Example.NET"):
        assert c.cmd("RCPT TO:<%s>" % to).raw == RCPT_OK, to
    msg = message(subject="relay %s" % kind, body="line 1\r\n..dot\r\n")
    r = send_message(c, msg)
    assert r.code == 250 and r.enh == "2.0.0", r
    qid = r.queue_id
    env, data = sub_server.queue_entry(qid)
    assert env["version"] == 2 and env["id"] == qid, env
    assert env["sender"] == ALICE and env["auth"] == ALICE, env
    assert env["remote"][:2] == ["carol@example.net", "dave@example.org"], env
    assert env["rcpt"] == [], env
    assert int(env["size"]) == len(data)
    hdr, rest = split_received(data)
    assert rest == msg.replace(b"\r\n..dot", b"\r\n.dot")
    text = unfold(hdr)
    assert "with ESMTPSA id %s" % qid in text, text
    new = set(sub_server.new_files("bob")) - before
    assert len(new) == 1, new
    local = read_file(new.pop())
    assert split_received(local)[1] == rest
    c.close()


@pytest.mark.parametrize("kind,tls", [
    ("587", "TLSv1.3"), ("2525", "TLSv1.3"), ("465", "TLSv1.3"),
    ("587", "TLSv1.2"), ("465", "TLSv1.2")])
def test_received_header_esmtpsa_with_tls_version_and_cipher(
        sub_server, kind, tls):
    """Issue item 9 (RFC 3848): ESMTPSA, the TLS version and cipher."""
    import ssl
    ver = {"TLSv1.3": ssl.TLSVersion.TLSv1_3,
           "TLSv1.2": ssl.TLSVersion.TLSv1_2}[tls]
    ctx = sub_server.tls_ctx(minimum=ver, maximum=ver)
    c = sub_server.sub(kind, ctx=ctx, auth=(ALICE, ALICE_PW))
    cipher = c.sock.cipher()[0]
    assert c.sock.version() == tls
    c.expect_cmd("MAIL FROM:<%s>" % ALICE, 250)
    c.expect_cmd("RCPT TO:<carol@example.net>", 250)
    r = send_message(c, message())
    assert r.code == 250, r
    _, data = sub_server.queue_entry(r.queue_id)
    text = unfold(split_received(data)[0])
    assert "(using %s with cipher %s)" % (tls, cipher) in text, text
    assert "by %s with ESMTPSA id %s" % (HOSTNAME, r.queue_id) in text, text
    assert text.startswith("Received: from c.example ([127.0.0.1])"), text
    c.close()


# --- 587 and 2525 are the same door ---------------------------------------


def dialogue(srv, kind):
    """A scripted session; returns every byte the server sent, with the
    queue id masked."""
    out = []
    if kind == "465":
        c = srv.sub("465", ehlo=False)
        out.append(b"<TLS>\r\n")
    else:
        from helpers import RawClient
        c = RawClient(srv.sub_port(kind))
        out.append(c.reply().raw)
        # at most 9 errors in all: error-limit (10) would close
        for line in ("EHLO c.example", "AUTH PLAIN " + ALICE_PLAIN,
                     "MAIL FROM:<%s>" % ALICE, "RCPT TO:<x@example.net>",
                     "HELP", "NOOP", "RSET", "STARTTLS now"):
            out.append(c.cmd(line).raw)
        out.append(c.cmd("STARTTLS").raw)
        c.start_tls(srv.tls_ctx())
        time.sleep(STARTTLS_SETTLE)  # see RawClient.starttls
        out.append(b"<TLS>\r\n")
    for line in ("MAIL FROM:<%s>" % ALICE,
                 "EHLO c.example",
                 "STARTTLS",
                 "MAIL FROM:<%s>" % ALICE,
                 "AUTH NTLM",
                 "AUTH PLAIN " + plain_b64(ALICE, "wrong-1"),
                 "AUTH PLAIN " + plain_b64("nosuchuser@local.test", "x"),
                 "AUTH LOGIN", "*",
                 "AUTH LOGIN " + b64(ALICE), b64(ALICE_PW),
                 "MAIL FROM:<ceo@local.test>",
                 "MAIL FROM:<%s>" % ALICE,
                 "RCPT TO:<carol@example.net>",
                 "RCPT TO:<%s>" % BOB,
                 "RCPT TO:<nosuch@local.test>",
                 "DATA"):
        out.append(c.cmd(line).raw)
    c.send(message(from_header="<ceo@local.test>") + b".\r\n")
    out.append(c.reply().raw)
    c.expect_cmd("MAIL FROM:<%s>" % ALICE, 250)
    c.expect_cmd("RCPT TO:<carol@example.net>", 250)
    out.append(c.cmd("DATA").raw)
    c.send(message() + b".\r\n")
    out.append(c.reply().raw)
    out.append(c.cmd("QUIT").raw)
    c.close()
    return re.sub(rb"queued as \S+", b"queued as ID", b"".join(out))


def test_587_and_2525_byte_identical(sub_server):
    a = dialogue(sub_server, "587")
    b = dialogue(sub_server, "2525")
    assert a == b, "587:\n%s\n2525:\n%s" % (a.decode(), b.decode())
    # the replies the policy depends on are in there
    assert NEED_TLS in a and NEED_AUTH in a and AUTH_OK in a
    assert AUTH_FAILED in a and SENDER_NOT_OWNED in a
    assert FROM_NOT_OWNED in a and b"queued as ID" in a


def test_465_same_replies_as_587_after_tls(sub_server):
    a = dialogue(sub_server, "587")
    c = dialogue(sub_server, "465")
    after = a[a.index(b"<TLS>\r\n"):]
    assert c == after, "587 after TLS:\n%s\n465:\n%s" % (after.decode(),
                                                         c.decode())


# --- secrets never reach the log -------------------------------------------


def test_log_never_holds_password_or_auth_payload(make_server):
    srv = make_server(submission=True)
    secret = "Zq8-S3cr3t-Wr0ng-77"
    payloads = []
    c = srv.sub("587")
    for line in ("AUTH PLAIN " + plain_b64(BOB, secret),
                 "AUTH PLAIN " + plain_b64("nobody@local.test", secret)):
        payloads.append(line.split()[-1])
        assert c.cmd(line).code == 535
    c.close()
    c = srv.sub("465")
    c.expect_cmd("AUTH LOGIN", 334)
    c.expect_cmd(b64(BOB), 334)
    payloads.append(b64(BOB_PW))
    assert c.cmd(b64(BOB_PW)).raw == AUTH_OK
    c.close()
    c = srv.sub("2525")
    payloads.append(plain_b64(BOB, BOB_PW))
    c.expect_cmd("AUTH PLAIN", 334)
    assert c.cmd(plain_b64(BOB, BOB_PW)).raw == AUTH_OK
    c.close()
    with srv.smtp_sub("587", login=(ALICE, ALICE_PW)):
        pass
    payloads.append(ALICE_PLAIN)
    assert srv.wait_log(lambda t: t.count("guard auth-ok") >= 3, 5)
    srv.stop()
    text = srv.log() + srv.stdout()
    for s in [secret, BOB_PW, b64(secret)] + payloads:
        assert s not in text, s
    # the login names are there, as the fail2ban filter needs them
    assert 'guard auth-failure client=127.0.0.1 account="%s"' % BOB in text
    assert 'account="nobody@local.test"' in text
    # every line is whole (nothing from the client broke a line)
    for line in text.splitlines():
        if line.strip():
            assert LOG_PREFIX_RE.match(line) or line.startswith("postern:"),\
                line


# --- real clients: smtplib and swaks ----------------------------------------


@pytest.mark.parametrize("kind", ALL_PORTS)
def test_smtplib_login_and_send(sub_server, kind):
    with sub_server.smtp_sub(kind, login=(ALICE, ALICE_PW)) as s:
        code, resp = s.mail(ALICE)
        assert code == 250, resp
        code, resp = s.rcpt("carol@example.net")
        assert code == 250, resp
        code, resp = s.data(message(subject="smtplib %s" % kind))
        assert code == 250, resp
        qid = QUEUED_RE.search(resp.decode()).group(1)
    env, msg = sub_server.queue_entry(qid)
    assert env["remote"] == ["carol@example.net"]
    assert b"Subject: smtplib %s\r\n" % kind.encode() in msg


@pytest.mark.parametrize("kind", ALL_PORTS)
def test_smtplib_wrong_password(sub_server, kind):
    import smtplib
    with sub_server.smtp_sub(kind) as s:
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login(ALICE, "not-the-password")
        assert e.value.smtp_code == 535
        assert e.value.smtp_error == \
            b"5.7.8 Authentication credentials invalid"


def test_smtplib_login_refused_without_tls(sub_server):
    import smtplib
    s = smtplib.SMTP("127.0.0.1", sub_server.sub_port("587"),
                     local_hostname="client.example", timeout=15)
    s.ehlo()
    assert not s.has_extn("auth")
    with pytest.raises(smtplib.SMTPNotSupportedError):
        s.login(ALICE, ALICE_PW)
    code, resp = s.docmd("AUTH", "PLAIN " + ALICE_PLAIN)
    assert (code, resp) == (530, b"5.7.0 Must issue a STARTTLS command first")
    s.close()


def swaks(srv, kind, *args, timeout=60):
    exe = shutil.which("swaks")
    assert exe, "swaks is not installed"
    cmd = [exe, "--server", "127.0.0.1", "--port", str(srv.sub_port(kind)),
           "--helo", "c.example", "--timeout", "20"] + list(args)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


@pytest.mark.parametrize("kind,tls,mech", [
    ("587", "--tls", "PLAIN"), ("2525", "--tls", "LOGIN"),
    ("465", "--tlsc", "PLAIN"), ("465", "--tlsc", "LOGIN")])
def test_swaks_tls_auth_relay(sub_server, kind, tls, mech):
    rc, out = swaks(sub_server, kind, tls, "--auth", mech,
                    "--auth-user", ALICE, "--auth-password", ALICE_PW,
                    "--from", ALICE, "--to", "carol@example.net",
                    "--header", "Subject: swaks %s %s" % (kind, mech))
    assert rc == 0, out
    assert "235 2.7.0 Authentication successful" in out, out
    m = re.search(r"250 2\.0\.0 Ok: queued as (\S+)", out)
    assert m, out
    env, msg = sub_server.queue_entry(m.group(1))
    assert env["remote"] == ["carol@example.net"] and env["auth"] == ALICE
    assert b"Subject: swaks %s %s" % (kind.encode(), mech.encode()) in msg


@pytest.mark.parametrize("kind", PLAIN_PORTS)
def test_swaks_auth_without_tls_refused(sub_server, kind):
    before = sub_server.queue_ids()
    rc, out = swaks(sub_server, kind, "--auth", "PLAIN",
                    "--auth-user", ALICE, "--auth-password", ALICE_PW,
                    "--from", ALICE, "--to", "carol@example.net")
    assert rc != 0, out
    assert "235 " not in out and "queued as" not in out, out
    # without --auth, the MAIL gets 530 5.7.0
    rc, out = swaks(sub_server, kind, "--from", ALICE, "--to",
                    "carol@example.net")
    assert rc != 0, out
    assert "530 5.7.0 Must issue a STARTTLS command first" in out, out
    rc, out = swaks(sub_server, kind, "--tls", "--from", ALICE, "--to",
                    "carol@example.net")
    assert rc != 0, out
    assert "530 5.7.0 Authentication required" in out, out
    assert sub_server.queue_ids() == before


def test_swaks_wrong_password(sub_server):
    rc, out = swaks(sub_server, "587", "--tls", "--auth", "PLAIN",
                    "--auth-user", ALICE, "--auth-password", "wrong-pw",
                    "--from", ALICE, "--to", "carol@example.net")
    assert rc != 0, out
    assert "535 5.7.8 Authentication credentials invalid" in out, out
    assert "queued as" not in out


# --- IPv6 loopback -----------------------------------------------------------


def test_submission_over_ipv6(sub_server):
    c = sub_server.sub("587", host="::1", auth=(ALICE, ALICE_PW))
    c.expect_cmd("MAIL FROM:<%s>" % ALICE, 250)
    c.expect_cmd("RCPT TO:<carol@example.net>", 250)
    r = send_message(c, message())
    assert r.code == 250, r
    _, data = sub_server.queue_entry(r.queue_id)
    assert "([::1])" in unfold(split_received(data)[0]) or \
        "([IPv6:::1])" in unfold(split_received(data)[0])
    c.close()
