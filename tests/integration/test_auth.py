"""SMTP AUTH on the submission ports (issue 3 items 3 and 4; THREATS.md
A-02 #1, A-03, A-04 to A-08): PLAIN and LOGIN per RFC 4954 and RFC 4616,
strict base64, cancel, state rules, unknown mechanisms, and an unknown user
that cannot be told from a wrong password. Replies are the texts of
src/smtp/reply.c, byte for byte.
"""

import statistics
import time

import pytest

from conftest import ALICE, ALICE_PW, BOB, BOB_PW
from helpers import LOG_PREFIX_RE, b64, plain_b64

AUTH_OK = b"235 2.7.0 Authentication successful\r\n"
AUTH_FAILED = b"535 5.7.8 Authentication credentials invalid\r\n"
AUTH_CANCELLED = b"501 5.0.0 Authentication cancelled\r\n"
BAD_BASE64 = b"501 5.5.2 Invalid base64 data\r\n"
AUTH_MECH = b"504 5.5.4 Unrecognized authentication mechanism\r\n"
AUTH_TOO_LONG = b"500 5.5.6 Authentication line too long\r\n"
AUTH_SYNTAX = b"501 5.5.4 Syntax: AUTH mechanism [response]\r\n"
AUTH_ALREADY = b"503 5.5.1 Already authenticated\r\n"
NEED_HELO = b"503 5.5.1 Send HELO/EHLO first\r\n"
AUTH_TOO_MANY = b"421 4.7.0 Too many authentication failures, closing\r\n"
NEED_AUTH = b"530 5.7.0 Authentication required\r\n"
USER_PROMPT = b"334 VXNlcm5hbWU6\r\n"  # "Username:"
PASS_PROMPT = b"334 UGFzc3dvcmQ6\r\n"  # "Password:"
EMPTY_CHALLENGE = b"334 \r\n"

# THREATS.md section 1
ALICE_PLAIN = "AGFsaWNlQGxvY2FsLnRlc3QAcGFzcw=="
ALICE_WRONG = "AGFsaWNlQGxvY2FsLnRlc3QAd3Jvbmc="
NOSUCH_WRONG = "AG5vc3VjaHVzZXJAbG9jYWwudGVzdAB3cm9uZw=="
BOB_AS_ALICE = "Ym9iQGxvY2FsLnRlc3QAYWxpY2VAbG9jYWwudGVzdABwYXNz"
ONE_NUL = "YWxpY2VAbG9jYWwudGVzdABwYXNz"
THREE_NULS = "AGFsaWNlQGxvY2FsLnRlc3QAcGFzcwBleHRyYQ=="
CRLF_USER = "AGFsaWNlDQpBVVRIIE9LIHVzZXI9cm9vdAB4"

PORTS = ["587", "2525", "465"]


# --- PLAIN and LOGIN that work -------------------------------------------


@pytest.mark.parametrize("kind", PORTS)
def test_plain_with_initial_response(sub_server, kind):
    c = sub_server.sub(kind)
    assert c.cmd("AUTH PLAIN " + ALICE_PLAIN).raw == AUTH_OK
    assert c.cmd("MAIL FROM:<%s>" % ALICE).code == 250
    c.close()


@pytest.mark.parametrize("kind", PORTS)
def test_plain_without_initial_response(sub_server, kind):
    c = sub_server.sub(kind)
    assert c.cmd("AUTH PLAIN").raw == EMPTY_CHALLENGE
    assert c.cmd(ALICE_PLAIN).raw == AUTH_OK
    c.close()


@pytest.mark.parametrize("kind", PORTS)
def test_login_mechanism(sub_server, kind):
    c = sub_server.sub(kind)
    assert c.cmd("AUTH LOGIN").raw == USER_PROMPT
    assert c.cmd(b64(BOB)).raw == PASS_PROMPT
    assert c.cmd(b64(BOB_PW)).raw == AUTH_OK
    assert c.cmd("MAIL FROM:<%s>" % BOB).code == 250
    c.close()


def test_mechanism_name_case_insensitive(sub_server):
    c = sub_server.sub("587")
    assert c.cmd("auth plain " + ALICE_PLAIN).raw == AUTH_OK
    c.close()


def test_authzid_equal_to_authcid_accepted(sub_server):
    c = sub_server.sub("587")
    r = c.cmd("AUTH PLAIN " + plain_b64(ALICE, ALICE_PW, authzid=ALICE))
    assert r.raw == AUTH_OK, r
    c.close()


# --- PLAIN and base64 parsing ---------------------------------------


@pytest.mark.parametrize("line,expect", [
    ("AUTH PLAIN QUFBQUF", BAD_BASE64),      # 4n+3 (CVE-2018-6789)
    ("AUTH PLAIN QUFBQQ", BAD_BASE64),       # 4n+2
    ("AUTH PLAIN QUFBQ", BAD_BASE64),        # 4n+1
    ("AUTH PLAIN QUJD=A==", BAD_BASE64),     # pad in the middle
    ("AUTH PLAIN QUI=====", BAD_BASE64),
    ("AUTH PLAIN QR==", BAD_BASE64),         # non-zero pad bits
    ("AUTH PLAIN QUJD\tRA==", AUTH_SYNTAX),  # whitespace inside
    ("AUTH PLAIN QUJ*RA==", BAD_BASE64),
    ("AUTH PLAIN " + ONE_NUL, AUTH_FAILED),
    ("AUTH PLAIN " + THREE_NULS, AUTH_FAILED),
    ("AUTH PLAIN AAA=", AUTH_FAILED),
    ("AUTH PLAIN =", AUTH_FAILED),
    ("AUTH PLAIN " + b64("\0%s\0%s" % (ALICE, "p" * 300)), AUTH_FAILED),
    ("AUTH PLAIN " + b64("\0%s@local.test\0pass" % ("a" * 300)), AUTH_FAILED),
    ("AUTH PLAIN " + b64("\0alice@local.test\0pa\0ss"), AUTH_FAILED),
])
def test_plain_parsing(sub_server, line, expect):
    c = sub_server.sub("587")
    r = c.cmd(line)
    if expect == AUTH_SYNTAX:
        assert r.code == 501 and r.enh in ("5.5.4", "5.5.2"), r
    else:
        assert r.raw == expect, (line, r)
    # the session goes on, unauthenticated
    assert c.cmd("MAIL FROM:<%s>" % ALICE).raw == NEED_AUTH
    assert c.cmd("AUTH PLAIN " + ALICE_PLAIN).raw == AUTH_OK
    c.close()


def test_authzid_other_user_refused(sub_server):
    """A-04 #3: authzid bob, authcid alice: 535, never bob."""
    c = sub_server.sub("587")
    assert c.cmd("AUTH PLAIN " + BOB_AS_ALICE).raw == AUTH_FAILED
    assert c.cmd("MAIL FROM:<%s>" % BOB).raw == NEED_AUTH
    assert c.cmd("AUTH PLAIN " + ALICE_PLAIN).raw == AUTH_OK
    r = c.cmd("MAIL FROM:<%s>" % BOB)
    assert r.raw == (b"553 5.7.1 Sender address rejected: not owned by "
                     b"user\r\n"), r
    c.close()


def test_continuation_bad_base64(sub_server):
    c = sub_server.sub("587")
    assert c.cmd("AUTH PLAIN").raw == EMPTY_CHALLENGE
    assert c.cmd("!!!!").raw == BAD_BASE64
    assert c.cmd("AUTH LOGIN").raw == USER_PROMPT
    assert c.cmd("YWxpY2VAbG9jYWwudGVzdA").raw == BAD_BASE64
    assert c.cmd("NOOP").code == 250
    c.close()


# --- multi-step state, cancel, length --------------------------------


def test_login_cancel_then_login_with_initial_response(sub_server):
    c = sub_server.sub("587")
    assert c.cmd("AUTH LOGIN").raw == USER_PROMPT
    assert c.cmd("*").raw == AUTH_CANCELLED
    assert c.cmd("AUTH LOGIN YWxpY2VAbG9jYWwudGVzdA==").raw == PASS_PROMPT
    assert c.cmd("cGFzcw==").raw == AUTH_OK
    c.close()


def test_cancel_at_password_prompt_and_in_plain(sub_server):
    c = sub_server.sub("587")
    assert c.cmd("AUTH LOGIN").raw == USER_PROMPT
    assert c.cmd(b64(ALICE)).raw == PASS_PROMPT
    assert c.cmd("*").raw == AUTH_CANCELLED
    assert c.cmd("AUTH PLAIN").raw == EMPTY_CHALLENGE
    assert c.cmd("*").raw == AUTH_CANCELLED
    # nothing of the cancelled exchanges survives (CVE-2011-1720)
    assert c.cmd("MAIL FROM:<%s>" % ALICE).raw == NEED_AUTH
    assert c.cmd("AUTH PLAIN " + ALICE_PLAIN).raw == AUTH_OK
    c.close()


def test_cve_2011_1720_probe_pipelined(sub_server):
    """A-05 #2: nmap's probe in one segment: 504 for each AUTH, 500 for
    each stray '*'."""
    c = sub_server.sub("587")
    c.send(b"AUTH CRAM-MD5\r\n*\r\nAUTH DIGEST-MD5\r\n*\r\n")
    got = [r.raw for r in c.replies(4)]
    unrec = b"500 5.5.2 Command not recognized\r\n"
    assert got == [AUTH_MECH, unrec, AUTH_MECH, unrec], got
    assert c.cmd("NOOP").code == 250
    c.close()


def test_continuation_too_long(sub_server):
    """A-05 #3: a 20000-octet continuation line gets 500 5.5.6 and the
    session stays in sync."""
    c = sub_server.sub("587")
    assert c.cmd("AUTH LOGIN").raw == USER_PROMPT
    assert c.cmd("A" * 20000).raw == AUTH_TOO_LONG
    assert c.cmd("NOOP").raw == b"250 2.0.0 Ok\r\n"
    assert c.cmd("AUTH PLAIN " + ALICE_PLAIN).raw == AUTH_OK
    c.close()


def test_auth_command_line_too_long(sub_server):
    c = sub_server.sub("587")
    r = c.cmd("AUTH PLAIN " + "A" * 13000)
    assert r.code == 500 and r.enh in ("5.5.2", "5.5.6"), r
    assert c.cmd("NOOP").code == 250
    c.close()


@pytest.mark.parametrize("line", ["AUTH", "AUTH PLAIN a b", "AUTH  PLAIN"])
def test_auth_syntax(sub_server, line):
    c = sub_server.sub("587")
    r = c.cmd(line)
    assert r.code == 501, r
    c.close()


# --- state rules -------------------------------------------------------


def test_auth_twice(sub_server):
    c = sub_server.sub("587", auth=(ALICE, ALICE_PW))
    assert c.cmd("AUTH PLAIN " + ALICE_PLAIN).raw == AUTH_ALREADY
    assert c.cmd("AUTH LOGIN").raw == AUTH_ALREADY
    c.close()


def test_auth_in_transaction(sub_server):
    c = sub_server.sub("465", auth=(ALICE, ALICE_PW))
    c.send(b"MAIL FROM:<alice@local.test>\r\nAUTH LOGIN\r\n")
    r1, r2 = c.replies(2)
    assert r1.code == 250, r1
    assert r2.code == 503 and r2.enh == "5.5.1", r2
    c.close()


@pytest.mark.parametrize("kind", ["587", "2525"])
def test_auth_after_starttls_needs_new_ehlo(sub_server, kind):
    """A-06 #3 and RFC 3207 4.2."""
    c = sub_server.sub(kind, ehlo=False)
    assert c.cmd("AUTH LOGIN").raw == NEED_HELO
    assert c.cmd("AUTH PLAIN " + ALICE_PLAIN).raw == NEED_HELO
    c.expect_cmd("EHLO c.example", 250)
    assert c.cmd("AUTH PLAIN " + ALICE_PLAIN).raw == AUTH_OK
    c.close()


def test_auth_before_ehlo_on_465(sub_server):
    c = sub_server.sub("465", ehlo=False)
    assert c.cmd("AUTH PLAIN " + ALICE_PLAIN).raw == NEED_HELO
    c.close()


# --- identity and log injection ---------------------------------------


def test_mail_auth_parameter(sub_server):
    c = sub_server.sub("587", auth=(ALICE, ALICE_PW))
    r = c.cmd("MAIL FROM:<alice@local.test> AUTH=Raven+0AReyes")
    assert r.raw == b"501 5.5.4 Invalid parameter\r\n", r
    for param in ("AUTH=<>", "AUTH=alice@local.test",
                  "AUTH=alice+40local.test"):
        r = c.cmd("MAIL FROM:<alice@local.test> " + param)
        assert r.code == 250, (param, r)
        assert c.cmd("RSET").code == 250
    r = c.cmd("MAIL FROM:<alice@local.test> AUTH=<> AUTH=<>")
    assert r.code in (501, 555), r
    # a message sent with AUTH= queues a clean envelope
    c.expect_cmd("MAIL FROM:<alice@local.test> AUTH=alice+40local.test", 250)
    c.expect_cmd("RCPT TO:<carol@example.net>", 250)
    c.expect_cmd("DATA", 354)
    c.send(b"From: <alice@local.test>\r\nSubject: a\r\n\r\nx\r\n.\r\n")
    r = c.reply()
    assert r.code == 250, r
    env, _ = sub_server.queue_entry(r.queue_id)
    assert set(env) == {"version", "id", "time", "size", "sender", "auth",
                        "rcpt", "remote"}, env
    assert env["auth"] == ALICE and env["remote"] == ["carol@example.net"]
    c.close()


def test_crlf_in_username_logged_escaped(make_server):
    """A-07 #2: 535, and the log has one line for the failure, with the CR
    and LF escaped (issue item 8: one log line per failure)."""
    srv = make_server(submission=True)
    c = srv.sub("587")
    assert c.cmd("AUTH PLAIN " + CRLF_USER).raw == AUTH_FAILED
    c.close()
    # escaped (issue 6 item 1): CR, LF, the spaces and the '='
    escaped = "alice\\x0d\\x0aAUTH\\x20OK\\x20user\\x3droot"
    srv.wait_log(lambda t: escaped in t, 3)
    text = srv.log()
    assert "\r" not in text
    assert "AUTH OK user=root" not in text
    for line in text.splitlines():
        if line.strip():
            assert LOG_PREFIX_RE.match(line), line
            assert not LOG_PREFIX_RE.sub("", line).startswith("AUTH"), line
    hits = [line for line in text.splitlines() if escaped in line]
    assert len(hits) == 1, text


# --- mechanisms we do not have ----------------------------------------


@pytest.mark.parametrize("line", [
    "AUTH NTLM TlRMTVNTUAABAAAAB4IIAAAAAAAAAAAAAAAAAAAAAAA=",
    "AUTH NTLM",
    "AUTH EXTERNAL =",
    "AUTH GSSAPI",
    "AUTH CRAM-MD5",
    "AUTH DIGEST-MD5",
    "AUTH SCRAM-SHA-256",
    "AUTH XOAUTH2 dXNlcj1h",
    "AUTH ANONYMOUS",
])
def test_unknown_mechanisms(sub_server, line):
    c = sub_server.sub("587")
    r = c.cmd(line)
    assert r.raw == AUTH_MECH, (line, r)
    assert c.cmd("NOOP").code == 250  # no 334 challenge pending
    c.close()


# --- bad credentials; unknown user = wrong password (A-03) -------------------


@pytest.mark.parametrize("kind", PORTS)
def test_wrong_password_535(sub_server, kind):
    c = sub_server.sub(kind)
    assert c.cmd("AUTH PLAIN " + ALICE_WRONG).raw == AUTH_FAILED
    assert c.cmd("MAIL FROM:<%s>" % ALICE).raw == NEED_AUTH
    c.close()


def auth_replies(srv, kind, user, password, mech):
    """Every byte of the server's answers to one AUTH exchange."""
    c = srv.sub(kind)
    if mech == "PLAIN":
        out = c.cmd("AUTH PLAIN " + plain_b64(user, password)).raw
    else:
        out = c.cmd("AUTH LOGIN").raw
        out += c.cmd(b64(user)).raw
        out += c.cmd(b64(password)).raw
    out += c.cmd("MAIL FROM:<%s>" % user).raw
    c.close()
    return out


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("kind", PORTS)
def test_unknown_user_byte_identical_to_wrong_password(
        sub_server, kind, mech):
    known = auth_replies(sub_server, kind, ALICE, "wrong", mech)
    unknown = auth_replies(sub_server, kind, "nosuchuser@local.test",
                           "wrong", mech)
    foreign = auth_replies(sub_server, kind, "alice@example.org", "wrong",
                           mech)
    alias = auth_replies(sub_server, kind, "sales@local.test", ALICE_PW,
                         mech)
    assert known == unknown == foreign, (known, unknown, foreign)
    assert AUTH_FAILED in known
    # an alias is an address to send as, not a login name
    assert alias.replace(b"sales@local.test", b"X") == \
        known.replace(ALICE.encode(), b"X"), (alias, known)


def test_unknown_user_costs_a_hash(sub_server):
    """A-03: an unknown user costs a full verification (the dummy hash),
    so it is not answered much faster than a known one. Loose bound: an
    answer without hashing would be some 50 times faster."""
    known, unknown = [], []
    for i in range(4):
        for user, times in ((ALICE, known), ("nosuch%d@local.test" % i,
                                             unknown)):
            c = sub_server.sub("587")
            t = time.monotonic()
            r = c.cmd("AUTH PLAIN " + plain_b64(user, "wrong-%d" % i))
            times.append(time.monotonic() - t)
            assert r.raw == AUTH_FAILED
            c.close()
    k, u = statistics.median(known), statistics.median(unknown)
    print("MEASUREMENT auth failure median known=%.1fms unknown=%.1fms"
          % (k * 1000, u * 1000))
    assert u >= 0.4 * k, (known, unknown)


def test_three_failures_close_the_session(sub_server):
    """A-02 #1: per-connection cap of 3 failures, then 421 4.7.0."""
    c = sub_server.sub("587")
    assert c.cmd("AUTH PLAIN " + ALICE_WRONG).raw == AUTH_FAILED
    assert c.cmd("AUTH PLAIN " + NOSUCH_WRONG).raw == AUTH_FAILED
    c.send(b"AUTH PLAIN " + ONE_NUL.encode() + b"\r\n")
    assert c.reply().raw == AUTH_FAILED
    assert c.reply().raw == AUTH_TOO_MANY
    assert c.wait_closed(5)
    c.close()


def test_fifty_pipelined_failures_evaluate_only_the_cap(make_server):
    """A-02 #3: one segment with 50 wrong AUTH lines: three answers and
    421; the guard sees at most three."""
    srv = make_server(submission=True)
    c = srv.sub("587")
    c.send(("AUTH PLAIN " + ALICE_WRONG + "\r\n") * 50)
    got = c.replies(4)
    assert [r.raw for r in got] == [AUTH_FAILED] * 3 + [AUTH_TOO_MANY], got
    assert c.wait_closed(5)
    assert c.trailing == b"", c.trailing
    c.close()
    time.sleep(0.3)
    assert srv.log().count("guard auth-failure") <= 3


def test_failure_delay_default_one_second(make_server):
    """auth-failure-delay defaults to 1 s (+0-500 ms); success is not
    delayed (docs/lockout.md Timing)."""
    srv = make_server(submission=True, auth_failure_delay=None)
    assert "auth-failure-delay" not in open(srv.conf).read()
    c = srv.sub("587")
    t = time.monotonic()
    assert c.cmd("AUTH PLAIN " + ALICE_WRONG).raw == AUTH_FAILED
    failed = time.monotonic() - t
    t = time.monotonic()
    assert c.cmd("AUTH PLAIN " + ALICE_PLAIN).raw == AUTH_OK
    ok = time.monotonic() - t
    c.close()
    c = srv.sub("465")
    t = time.monotonic()
    assert c.cmd("AUTH PLAIN " + NOSUCH_WRONG).raw == AUTH_FAILED
    unknown = time.monotonic() - t
    c.close()
    print("MEASUREMENT failure=%.3fs unknown=%.3fs success=%.3fs"
          % (failed, unknown, ok))
    assert 1.0 <= failed < 5.0, failed
    assert 1.0 <= unknown < 5.0, unknown
    assert ok < 1.0, ok
