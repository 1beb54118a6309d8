"""BDAT / CHUNKING (RFC 3030, THREATS D-07): exact bytes, no dot handling,
strict syntax, and staying in sync after an error."""

import pytest

from conftest import Server, finish
from helpers import read_file, split_received, wait_for


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("bdat"), max_message_size="64K")
    srv.start()
    yield srv
    finish(srv)


def mail_rcpt(c, rcpt="alice@local.test"):
    c.ehlo()
    c.expect_cmd("MAIL FROM:<s@example.org>", 250)
    c.expect_cmd("RCPT TO:<%s>" % rcpt, 250)


def chunk(c, data, last=False):
    c.send(b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data)
    return c.reply()


def stored_since(server, before, user="alice"):
    new = wait_for(lambda: set(server.new_files(user)) - before, 2)
    assert len(new) == 1, new
    return split_received(read_file(new.pop()))


def test_bdat_last_exact_bytes(server):
    before = set(server.new_files("alice"))
    payload = b"Subject: bdat\r\n\r\n.leading\r\n.\r\n..\r\nend\r\n"
    with server.client() as c:
        mail_rcpt(c)
        r = chunk(c, payload, last=True)
        assert r.code == 250 and r.queue_id, r
        c.expect_cmd("NOOP", 250)
    hdr, rest = stored_since(server, before)
    assert r.queue_id in hdr.decode()
    assert rest == payload


def test_bdat_lonely_dot(server):
    """CVE-2017-16944: BDAT 3 LAST + '.\\r\\n' stores '.\\r\\n'."""
    before = set(server.new_files("alice"))
    with server.client() as c:
        mail_rcpt(c)
        c.send(b"BDAT 3 LAST\r\n.\r\n")
        c.expect(250)
        c.expect_cmd("NOOP", 250)
    _, rest = stored_since(server, before)
    assert rest == b".\r\n"


def test_bdat_several_chunks(server):
    before = set(server.new_files("alice"))
    parts = [b"Subject: chunks\r\n", b"\r\n", b"one\r\ntw", b"o\r\n.\r\n",
             b"three\r\n"]
    with server.client() as c:
        mail_rcpt(c)
        for p in parts[:-1]:
            r = chunk(c, p)
            assert r.is_(250, "2.0.0"), r
        r = chunk(c, parts[-1], last=True)
        assert r.code == 250 and r.queue_id, r
    _, rest = stored_since(server, before)
    assert rest == b"".join(parts)


def test_bdat_zero_last_ends_message(server):
    before = set(server.new_files("alice"))
    with server.client() as c:
        mail_rcpt(c)
        chunk(c, b"Subject: zero\r\n\r\nbody\r\n")
        r = chunk(c, b"", last=True)
        assert r.code == 250 and r.queue_id, r
    _, rest = stored_since(server, before)
    assert rest == b"Subject: zero\r\n\r\nbody\r\n"


def test_bdat_pipelined_with_envelope(server):
    """RFC 3030 section 4.2: BDAT may be pipelined."""
    before = set(server.new_files("alice"))
    payload = b"Subject: p\r\n\r\nx\r\n"
    with server.client() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<s@example.org>\r\nRCPT TO:<alice@local.test>\r\n"
               b"BDAT %d LAST\r\n" % len(payload) + payload)
        c.expect(250)
        c.expect(250)
        r = c.expect(250)
        assert r.queue_id, r
    _, rest = stored_since(server, before)
    assert rest == payload


def test_bdat_null_chunk(server):
    with server.client() as c:
        mail_rcpt(c)
        c.expect_cmd("BDAT 0", 551, "5.7.1")
        c.expect_cmd("NOOP", 250)


def test_data_after_bdat(server):
    before = server.snapshot()
    with server.client() as c:
        mail_rcpt(c)
        r = chunk(c, b"Subject: x\r\n\r\n")
        assert r.code == 250, r
        c.expect_cmd("DATA", 503, "5.5.1")
        c.expect_cmd("RSET", 250)
        c.expect_cmd("NOOP", 250)
    assert server.snapshot() == before


@pytest.mark.parametrize("line", [
    b"BDAT 18446744073709551617",
    b"BDAT 18446744073709551616 LAST",
    b"BDAT -1",
    b"BDAT x",
    b"BDAT 1 LAST extra",
    b"BDAT",
])
def test_bdat_bad_syntax_closes(server, line):
    with server.client() as c:
        mail_rcpt(c)
        c.send(line + b"\r\n")
        c.expect(521, "5.5.4")
        assert c.wait_closed(5)
        assert c.trailing == b""


def test_bdat_oversized_chunk(small_server):
    """The payload of an oversized chunk is skipped (never read as
    commands), then one 552 5.3.4, then in sync."""
    srv = small_server
    before = srv.snapshot()
    payload = (b"QUIT\r\nRSET\r\nMAIL FROM:<a@example.org>\r\n" +
               b"z" * 100) * 2000
    assert len(payload) > 64 * 1024
    with srv.client() as c:
        mail_rcpt(c)
        r = chunk(c, payload, last=True)
        assert r.is_(552, "5.3.4"), r
        assert c.pending(0.7) == b""
        c.expect_cmd("NOOP", 250)
        c.expect_cmd("RSET", 250)
        # a normal transaction works afterwards
        c.expect_cmd("MAIL FROM:<s@example.org>", 250)
        c.expect_cmd("RCPT TO:<alice@local.test>", 250)
        r = chunk(c, b"Subject: after\r\n\r\nok\r\n", last=True)
        assert r.code == 250 and r.queue_id, r
    new = srv.snapshot() - before
    assert len(new) == 1
    _, rest = split_received(read_file(new.pop()))
    assert rest == b"Subject: after\r\n\r\nok\r\n"


def test_bdat_oversized_total_then_skip(small_server):
    """Chunks that together pass the limit: 552 for the chunk that crosses
    it, later chunks of the same message are skipped, nothing stored."""
    srv = small_server
    before = srv.snapshot()
    with srv.client() as c:
        mail_rcpt(c)
        r = chunk(c, b"a" * 40000)
        assert r.code == 250, r
        r = chunk(c, b"b" * 40000)
        assert r.is_(552, "5.3.4"), r
        r = chunk(c, b"QUIT\r\n", last=True)
        assert r.code in (552, 503), r
        c.expect_cmd("NOOP", 250)
    assert srv.snapshot() == before


def test_bdat_without_mail(server):
    """BDAT before MAIL: 503, and its payload is not read as commands."""
    with server.client() as c:
        c.ehlo()
        c.send(b"BDAT 6 LAST\r\nQUIT\r\n")
        r = c.reply()
        assert (r.code, r.enh) in [(503, "5.5.1"), (521, "5.5.4")], r
        if r.code == 503:
            assert c.pending(0.5) == b""
            c.expect_cmd("NOOP", 250)
