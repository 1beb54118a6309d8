"""SMTP smuggling, dot transparency and pipelining (THREATS D-01, D-03,
D-04, P-06): only CRLF.CRLF ends DATA, nothing inside DATA is ever a
command, and pipelining is accepted only where RFC 2920 allows it."""

import re

import pytest

from helpers import read_file, split_received, wait_for

# D-01: end-of-data sequences that must NOT end DATA (hannob/smtpsmug,
# SMTP-Smuggling-Tools).
EODS = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r", b"\n.\r",
        b"\r.\n", b"\r.\r", b"\r\n\x00.\r\n"]

SMUGGLED = (b"MAIL FROM:<admin@local.test>\r\nRCPT TO:<alice@local.test>\r\n"
            b"DATA\r\nFrom: admin@local.test\r\nSubject: smuggled\r\n\r\n"
            b"x\r\n.\r\n")


def tx(c, rcpts=("alice@local.test",)):
    c.ehlo()
    c.expect_cmd("MAIL FROM:<s@example.org>", 250)
    for r in rcpts:
        c.expect_cmd("RCPT TO:<%s>" % r, 250)
    c.expect_cmd("DATA", 354)


def all_mail(server):
    return {f: read_file(f) for f in server.snapshot() if "/new/" in f}


@pytest.mark.parametrize("eod", EODS, ids=[repr(e)[2:-1] for e in EODS])
def test_smuggling_eod(server, eod):
    before = server.snapshot()
    with server.client() as c:
        tx(c)
        c.send(b"From: a@example.org\r\nSubject: one\r\n\r\nbody" + eod +
               SMUGGLED)
        r = c.reply()
        expected = [(550, "5.5.2")]
        if b"\x00" in eod:
            # NUL in content: the reply table's 550 5.6.0 is also right
            expected.append((550, "5.6.0"))
        assert (r.code, r.enh) in expected, r
        # exactly one final reply: none for the smuggled MAIL/RCPT/DATA
        extra = c.pending(1.0)
        assert extra == b"", "reply to smuggled commands: %r" % extra
        c.expect_cmd("NOOP", 250)
        c.expect_cmd("RCPT TO:<alice@local.test>", 503, "5.5.1")
        c.expect_cmd("QUIT", 221)
    after = server.snapshot()
    assert after == before, "delivered: %s" % (after - before)


@pytest.mark.parametrize("eod", EODS, ids=[repr(e)[2:-1] for e in EODS])
def test_smuggling_eod_split(server, eod):
    """The same with the sequence in its own segments."""
    before = server.snapshot()
    with server.client() as c:
        tx(c)
        c.send(b"From: a@example.org\r\nSubject: one\r\n\r\nbody", eod,
               SMUGGLED, gap=0.05)
        r = c.reply()
        assert r.code == 550, r
        assert c.pending(1.0) == b""
    assert server.snapshot() == before


def test_smuggled_subject_never_delivered(server):
    for f, data in all_mail(server).items():
        assert b"Subject: smuggled" not in data, f


def test_dot_unstuffing(server):
    """D-03, RFC 5321 section 4.5.2: one leading dot is removed from every
    line that has more than the dot ('. ' becomes ' ')."""
    before = set(server.new_files("alice"))
    with server.client() as c:
        tx(c)
        c.send(b"Subject: d\r\n\r\n..leading\r\n. \r\n.x\r\n...\r\n"
               b"..\r\nend.\r\n.\r\n")
        r = c.expect(250)
    new = wait_for(lambda: set(server.new_files("alice")) - before, 2)
    assert len(new) == 1
    hdr, rest = split_received(read_file(new.pop()))
    assert r.queue_id in hdr.decode()
    assert rest == (b"Subject: d\r\n\r\n.leading\r\n \r\nx\r\n..\r\n"
                    b".\r\nend.\r\n")


def test_empty_message(server):
    before = set(server.new_files("alice"))
    with server.client() as c:
        tx(c)
        c.send(b".\r\n")
        r = c.reply()
        assert r.code in (250, 554), r
    if r.code == 250:
        new = wait_for(lambda: set(server.new_files("alice")) - before, 2)
        assert len(new) == 1
        _, rest = split_received(read_file(new.pop()))
        assert rest == b""


def test_pipelining_after_end_of_data(server):
    """D-04: mail 2 sent straight after mail 1's terminator, in one
    segment. The end of data starts a new group (RFC 2920 section 3.1),
    so MAIL and RCPT are answered; DATA ends that group, and mail 2's
    content, sent before the 354, gets 554 5.5.0 and the session ends."""
    before = server.snapshot()
    with server.client() as c:
        tx(c)
        c.send(b"Subject: 1\r\n\r\nmail 1\r\n.\r\n"
               b"MAIL FROM:<b@example.org>\r\nRCPT TO:<alice@local.test>\r\n"
               b"DATA\r\nSubject: 2\r\n\r\nmail 2\r\n.\r\n")
        r1 = c.reply()
        assert r1.code == 250 and r1.queue_id, r1
        c.expect(250)
        c.expect(250)
        c.expect(354)
        c.expect(554, "5.5.0")
        assert c.wait_closed(5)
        assert c.trailing == b""
    new = server.snapshot() - before
    assert len(new) <= 1
    for f in new:
        assert b"mail 2" not in read_file(f)


def test_content_dot_rset_noop_one_write(server):
    """Issue 7 item 1, RFC 2920 section 3.1: "the actual transfer of
    message content is explicitly allowed to be the first command in a
    group": content, the dot, RSET and NOOP in one write get three 250s
    (postern hung up on it before; Postfix answers so)."""
    before = set(server.new_files("alice"))
    with server.client() as c:
        tx(c)
        c.send(b"Subject: group\r\n\r\nbody\r\n.\r\nRSET\r\nNOOP\r\n")
        r = c.expect(250)
        assert r.queue_id, r
        c.expect(250, "2.0.0")
        c.expect(250, "2.0.0")
        assert c.pending(0.5) == b""
        c.expect_cmd("QUIT", 221)
    new = wait_for(lambda: set(server.new_files("alice")) - before, 2)
    assert len(new) == 1


def test_mail_rcpt_data_body_one_segment(server):
    """P-06.2: the body arrives before the 354: DATA is answered, then
    554 5.5.0 for what was sent behind it, and nothing is queued."""
    before = server.snapshot()
    with server.client() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@local.test>\r\n"
               b"DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n")
        c.expect(250)
        c.expect(250)
        c.expect(354)
        c.expect(554, "5.5.0")
        assert c.wait_closed(5)
        assert c.trailing == b""
    assert server.snapshot() == before


def test_ehlo_pipelined_with_mail(server):
    """EHLO ends a group (RFC 2920 section 3.1): MAIL written with it in
    one segment, before the reply came, gets 554 5.5.0 and the session
    ends; EHLO itself is answered (the unit tests cut the bytes at every
    offset)."""
    with server.client() as c:
        c.greeting()
        c.send(b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\n")
        r = c.reply()
        assert r.code == 250, r
        c.expect(554, "5.5.0")
        assert c.wait_closed(5)


PIPELINED = (b"MAIL FROM:<s@example.org>\r\nRCPT TO:<alice@local.test>\r\n"
             b"RCPT TO:<bob@local.test>\r\nDATA\r\n")


def pipelined_session(server, sender):
    """EHLO, then the PIPELINED group through `sender`, then the body
    after 354. Returns the replies' raw bytes and the final reply."""
    with server.client() as c:
        c.ehlo()
        sender(c, PIPELINED)
        rs = c.replies(4)
        assert [r.code for r in rs] == [250, 250, 250, 354], rs
        c.send(b"Subject: pipelined\r\n\r\nhello\r\n.\r\n")
        final = c.expect(250)
        c.expect_cmd("QUIT", 221)
        return [r.raw for r in rs], final


def test_legitimate_pipelining(server):
    before_a = set(server.new_files("alice"))
    before_b = set(server.new_files("bob"))
    raws, final = pipelined_session(server, lambda c, d: c.send(d))
    assert re.match(r"2\.0\.0 Ok: queued as \S+$", final.lines[0]), final
    new_a = wait_for(lambda: set(server.new_files("alice")) - before_a, 2)
    new_b = wait_for(lambda: set(server.new_files("bob")) - before_b, 2)
    assert len(new_a) == 1 and len(new_b) == 1
    _, rest = split_received(read_file(new_a.pop()))
    assert rest == b"Subject: pipelined\r\n\r\nhello\r\n"


def test_pipelining_any_split(server):
    """The same bytes whole, byte by byte, and cut at every command
    boundary give the same replies."""
    whole, _ = pipelined_session(server, lambda c, d: c.send(d))
    bytewise, _ = pipelined_session(server,
                                    lambda c, d: c.send_bytewise(d))
    assert bytewise == whole
    for cut in range(1, len(PIPELINED), 7):
        parts, _ = pipelined_session(
            server, lambda c, d: c.send(d[:cut], d[cut:], gap=0.02))
        assert parts == whole, cut


def test_body_split_bytewise(server):
    """The end-of-data sequence split byte by byte still ends DATA once;
    the body is stored exactly."""
    before = set(server.new_files("alice"))
    body = b"Subject: bytes\r\n\r\n.dot\r\nline\r\n"
    with server.client() as c:
        tx(c)
        c.send_bytewise(b"Subject: bytes\r\n\r\n..dot\r\nline\r\n.\r\n",
                        gap=0.001)
        c.expect(250)
        assert c.pending(0.5) == b""
    new = wait_for(lambda: set(server.new_files("alice")) - before, 2)
    assert len(new) == 1
    _, rest = split_received(read_file(new.pop()))
    assert rest == body
