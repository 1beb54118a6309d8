"""One set of content rules for DATA and BDAT (issue 6 item 3): bare CR,
bare LF and NUL refuse the message whichever way it came, in one chunk or
split anywhere; a From: hidden behind a bare CR does not pass the sender
check; a Return-Path the client sent is dropped (RFC 5321 section 4.4)."""

import pytest

from conftest import ALICE, ALICE_PW
from helpers import read_file, wait_for

EODS = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r", b"\n.\r",
        b"\r.\n", b"\r.\r", b"\r\n\x00.\r\n", b"\r\n.\r\r\n"]
HEAD = b"From: a@example.org\r\nSubject: one\r\n\r\nbody"
SMUGGLED = (b"MAIL FROM:<admin@local.test>\r\nRCPT TO:<alice@local.test>\r\n"
            b"DATA\r\nFrom: admin@local.test\r\nSubject: smuggled\r\n\r\n"
            b"x\r\n")


def mx_tx(c):
    c.ehlo()
    c.expect_cmd("MAIL FROM:<s@example.org>", 250)
    c.expect_cmd("RCPT TO:<alice@local.test>", 250)


def sub_tx(c):
    c.expect_cmd("MAIL FROM:<%s>" % ALICE, 250)
    c.expect_cmd("RCPT TO:<bob@local.test>", 250)


def by_data(c, content):
    """content ends in CRLF; the real end of data follows it."""
    c.expect_cmd("DATA", 354)
    c.send(content + b".\r\n")
    return c.reply()


def by_bdat(c, content, cuts=()):
    """content in chunks cut at the offsets in cuts; the last reply."""
    edges = [0] + list(cuts) + [len(content)]
    r = None
    for i in range(len(edges) - 1):
        part = content[edges[i]:edges[i + 1]]
        last = i == len(edges) - 2
        c.send(b"BDAT %d%s\r\n" % (len(part), b" LAST" if last else b"") +
               part)
        r = c.reply()
    return r


def cut_sets(content, start, length):
    """One chunk, and a cut at every offset in [start, start + length]."""
    return [()] + [(k,) for k in range(start, start + length + 1)
                   if 0 < k < len(content)]


@pytest.mark.parametrize("eod", EODS, ids=[repr(e)[2:-1] for e in EODS])
def test_smuggling_by_bdat_like_data(server, eod):
    """THREATS D-01's sequences by BDAT get DATA's answer, in one chunk
    and cut at every offset around the sequence; nothing is delivered."""
    content = HEAD + eod + SMUGGLED
    before = server.snapshot()
    with server.client() as c:
        mx_tx(c)
        want = by_data(c, content)
    assert want.code == 550, want
    for cuts in cut_sets(content, len(HEAD) - 1, len(eod) + 1):
        with server.client() as c:
            mx_tx(c)
            got = by_bdat(c, content, cuts)
            assert (got.code, got.enh) == (want.code, want.enh), (cuts, got)
            c.expect_cmd("NOOP", 250)
    assert server.snapshot() == before


HIDDEN_FROM = [
    b"From: alice@local.test\r\nSubject: x\rFrom: ceo@local.test\r\n\r\n"
    b"body\r\n",
    b"From: alice@local.test\r\nSubject: x\nFrom: ceo@local.test\r\n\r\n"
    b"body\r\n",
]


@pytest.mark.parametrize("content", HIDDEN_FROM, ids=["cr", "lf"])
def test_hidden_from_by_bdat(sub_server, content):
    """A From: behind a bare CR or LF: refused by DATA and by BDAT alike
    (before, BDAT delivered it past the From: check)."""
    srv = sub_server
    before = srv.snapshot()
    with srv.sub("465", auth=(ALICE, ALICE_PW)) as c:
        sub_tx(c)
        want = by_data(c, content)
    assert want.is_(550, "5.5.2"), want
    cut = content.index(b"From: ceo")
    for cuts in cut_sets(content, cut - 2, 3):
        with srv.sub("465", auth=(ALICE, ALICE_PW)) as c:
            sub_tx(c)
            got = by_bdat(c, content, cuts)
            assert got.is_(550, "5.5.2"), (cuts, got)
    assert srv.snapshot() == before


RP_CONTENT = (b"Return-Path: <ceo@local.test>\r\n\t(folded)\r\n"
              b"Subject: rp\r\nreturn-path : <again@local.test>\r\n\r\n"
              b"Return-Path: <in@the.body>\r\n")
RP_KEPT = b"Subject: rp\r\n\r\nReturn-Path: <in@the.body>\r\n"


@pytest.mark.parametrize("how", ["data", "bdat", "bdat-split"])
def test_client_return_path_dropped(server, how):
    """RFC 5321 section 4.4: the delivering MTA adds Return-Path; the
    client's is dropped with its folded lines, only in the header
    section, and the log says so."""
    before = set(server.new_files("alice"))
    log_start = len(server.log())
    with server.client() as c:
        mx_tx(c)
        if how == "data":
            r = by_data(c, RP_CONTENT)
        else:
            r = by_bdat(c, RP_CONTENT, (20,) if how == "bdat-split" else ())
        assert r.code == 250 and r.queue_id, r
    new = wait_for(lambda: set(server.new_files("alice")) - before, 2)
    assert len(new) == 1, new
    data = read_file(new.pop())
    assert data.endswith(RP_KEPT), data
    assert b"ceo@local.test" not in data and b"again@" not in data, data
    assert b"(folded)" not in data, data
    assert server.wait_log(
        lambda t: t.count("dropped header=return-path") >= 2,
        start=log_start), server.log()[log_start:]
