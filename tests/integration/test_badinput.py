"""Bad input (THREATS sections 2, 3, 6, 7 and 8): framing, long lines, NUL,
non-SMTP clients, state errors, parameters, envelope injection, error and
size limits, timeouts, and recipients that try to leave the Maildir."""

import os
import socket
import time
import uuid

import pytest

from conftest import Server, finish
from helpers import (Closed, read_file, split_received, tree_rss_kib,
                     wait_for)

LIMIT = 1024 * 1024  # max-message-size of limits_server
HEADER_LIMIT = 8192  # header-size-limit of limits_server


@pytest.fixture(scope="module")
def limits_server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("limits"),
                 max_message_size="1M", header_size_limit="8K",
                 max_recipients=5, error_limit=30,
                 mailbox=" ".join(["alice@local.test", "bob@local.test"] +
                                  ["u%d@local.test" % i for i in range(6)]))
    srv.start()
    yield srv
    finish(srv)


def tx(c, rcpt="alice@local.test", sender="s@example.org"):
    """EHLO, MAIL, RCPT, DATA -> 354 ([TX25] in THREATS)."""
    c.ehlo()
    c.expect_cmd("MAIL FROM:<%s>" % sender, 250)
    c.expect_cmd("RCPT TO:<%s>" % rcpt, 250)
    c.expect_cmd("DATA", 354)


def no_more_replies(c, wait=0.7):
    extra = c.pending(wait)
    assert extra == b"", "unexpected extra reply: %r" % extra[:300]


# -- P-01: line framing --------------------------------------------------


@pytest.mark.parametrize("data", [
    b"HELO a\nMAIL FROM:<x@example.net>\r\n",
    b"EHLO a\rRCPT TO:<x@example.net>\r\n",
    b"NOOP\n\r\n",
    b"NOOP\r\r\n",
])
def test_bare_cr_lf_in_command(server, data):
    with server.client() as c:
        c.greeting()
        c.send(data)
        c.expect(500, "5.5.2")
        rest = c.pending(0.7)
        assert b"250" not in rest, rest
        assert rest == b"" or c.eof, "more than one reply: %r" % rest
        if not c.eof:
            c.expect_cmd("NOOP", 250)


def test_bare_lf_never_splits_commands(server):
    """The MAIL after a bare LF is not acted on: a RCPT after it still
    needs MAIL."""
    with server.client() as c:
        c.ehlo()
        c.send(b"NOOP\nMAIL FROM:<x@example.org>\r\n")
        c.expect(500, "5.5.2")
        if not c.wait_closed(0.5):
            c.expect_cmd("RCPT TO:<alice@local.test>", 503, "5.5.1")


# -- P-02: long lines ----------------------------------------------------


def test_command_line_512_ok(server):
    with server.client() as c:
        c.ehlo()
        line = b"NOOP " + b"a" * (512 - 7)
        assert len(line) + 2 == 512
        c.send(line + b"\r\n")
        c.expect(250)


@pytest.mark.parametrize("total", [513, 600, 5000])
def test_command_line_too_long(server, total):
    with server.client() as c:
        c.ehlo()
        line = b"NOOP " + b"a" * (total - 7)
        c.send(line + b"\r\n")
        c.expect(500, "5.5.2")


MAIL_ALLOWANCE = [
    # (parameters, the longest line with CRLF they allow; issue 7 item 5)
    (b"", 512),                                   # RFC 5321 4.5.3.1.4
    (b" SIZE=1000", 512 + 26),                    # RFC 1870
    (b" BODY=8BITMIME", 512 + 16),                # RFC 6152
    (b" SMTPUTF8", 512 + 10),                     # RFC 6531
    (b" AUTH=<>", 512 + 500),                     # RFC 4954
    (b" SIZE=1 BODY=7BIT SMTPUTF8 AUTH=<>", 1064),
]


@pytest.mark.parametrize("params,limit", MAIL_ALLOWANCE,
                         ids=[p.decode().strip() or "none"
                              for p, _ in MAIL_ALLOWANCE])
def test_mail_line_allowance(server, params, limit):
    """MAIL may be longer than 512 octets only by what the extension
    parameters it carries allow (padding with the spaces the grammar
    tolerates between parameters); one octet more gets 500 5.5.2 and the
    session stays in sync."""
    head = b"MAIL FROM:<a@example.org>"
    for total, code in ((limit, 250), (limit + 1, 500)):
        with server.client() as c:
            c.ehlo()
            line = head + b" " * (total - 2 - len(head) - len(params)) + \
                params
            assert len(line) + 2 == total
            c.send(line + b"\r\n")
            r = c.reply()
            assert r.code == code, (total, r)
            if code == 500:
                assert r.enh == "5.5.2", r
            c.expect_cmd("RSET", 250)


@pytest.mark.parametrize("total,code", [(512, 250), (513, 500), (1024, 500)])
def test_rcpt_line_512(server, total, code):
    """RCPT carries no extension parameter here: 512 octets with CRLF
    (it was 1024 before)."""
    head = b"RCPT TO:<alice@local.test>"
    with server.client() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<>", 250)
        c.send(head + b" " * (total - 2 - len(head)) + b"\r\n")
        r = c.reply()
        assert r.code == code, r
        c.expect_cmd("NOOP", 250)


def test_huge_ehlo(server):
    with server.client() as c:
        c.greeting()
        try:
            c.send(b"EHLO " + b"a" * 100000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.reply()
        assert r.is_(500, "5.5.2") or r.code == 421, r
        assert b"aaaa" not in r.raw


def test_long_line_memory_flat(make_server):
    """30 MB without a line end on one connection: the server keeps a
    bounded buffer (500 5.5.2 and/or close) and its memory stays flat.
    (ASan's quarantine keeps freed memory resident: it is made small here
    so that only memory still in use is measured.)"""
    server = make_server(asan_extra="quarantine_size_mb=4")
    # Let every child finish starting (the queue process loads its DNS
    # context after "listening"): the tree's RSS holds still for 0.5 s.
    with server.client() as c:
        c.greeting()
    last = [tree_rss_kib(server.pid)]

    def settled():
        time.sleep(0.5)
        now = tree_rss_kib(server.pid)
        still = abs(now - last[0]) < 512
        last[0] = now
        return still
    wait_for(settled, 15)
    before = tree_rss_kib(server.pid)
    chunk = b"a" * 65536
    with server.client() as c:
        c.greeting()
        c.send(b"EHLO ")
        deadline = time.monotonic() + 20
        sent = 0
        try:
            while sent < 30 * 1024 * 1024 and time.monotonic() < deadline:
                c.sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        during = tree_rss_kib(server.pid)
    assert during - before < 16 * 1024, (before, during, sent)


def test_unterminated_line_then_fin(server):
    with server.client() as c:
        c.greeting()
        c.send(b"A" * 70000)
        c.sock.shutdown(socket.SHUT_WR)
        assert c.wait_closed(5), "session not ended after FIN"
    with server.client() as c:
        c.greeting()


# -- P-03: NUL, high bit -------------------------------------------------


@pytest.mark.parametrize("data", [
    b"HELO a\x00b\r\n",
    b"\x00\r\n",
    b"NOOP\x00\r\n",
])
def test_nul_in_command(server, data):
    with server.client() as c:
        c.greeting()
        c.send(data)
        c.expect(500, "5.5.2")


def test_nul_in_mail_from(server):
    with server.client() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<a\x00b@example.org>\r\n")
        c.expect(500, "5.5.2")
        c.expect_cmd("RCPT TO:<alice@local.test>", 503, "5.5.1")


def test_high_bit_sender_without_smtputf8(server):
    with server.client() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<\xff\xfe@example.net>\r\n")
        r = c.reply()
        assert (r.code, r.enh) in [(553, "5.6.7"), (501, "5.1.7"),
                                   (500, "5.5.2")], r


def test_overlong_utf8_sender(server):
    with server.client() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<\xc0\xaf@example.net> SMTPUTF8\r\n")
        c.expect(500, "5.5.2")


# -- P-04: state machine -------------------------------------------------


def test_rcpt_before_mail(server):
    with server.client() as c:
        c.ehlo()
        c.expect_cmd("RCPT TO:<alice@local.test>", 503, "5.5.1")
        c.expect_cmd("DATA", 503, "5.5.1")


def test_nested_mail(server):
    with server.client() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<a@example.org>", 250)
        c.expect_cmd("MAIL FROM:<a@example.org>", 503, "5.5.1")


def test_mail_before_helo(server):
    with server.client() as c:
        c.greeting()
        c.expect_cmd("MAIL FROM:<a@example.org>", 503, "5.5.1")


def test_17_bad_rcpts_then_data(limits_server):
    """CVE-2020-28023 shape (error-limit raised to 30 for this)."""
    with limits_server.client() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<>", 250)
        for _ in range(17):
            c.expect_cmd("RCPT TO:nonexistent", 501, "5.1.3")
        r = c.cmd("DATA")
        assert (r.code, r.enh) in [(554, "5.5.1"), (503, "5.5.1")], r
        assert all(32 <= b < 127 for b in r.raw[:-2]), r


# -- P-05: non-SMTP clients ----------------------------------------------


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nHost: mx\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 20\r\n\r\n<script>x</script>",
    b"CONNECT example.net:25 HTTP/1.1\r\n\r\n",
])
def test_http_request_closed(server, data):
    with server.client() as c:
        c.greeting()
        c.send(data)
        r = c.expect(221, "2.7.0")
        assert c.wait_closed(5)
        assert c.trailing == b"", c.trailing
        assert b"script" not in r.raw and b"HTTP" not in r.raw


def test_script_not_echoed(server):
    with server.client() as c:
        c.ehlo()
        r = c.cmd("<script>alert(1)</script>")
        assert r.is_(500, "5.5.2"), r
        assert b"<script>" not in r.raw and b"alert" not in r.raw


def test_unknown_command_not_echoed(server):
    with server.client() as c:
        c.ehlo()
        r = c.cmd("FROBNICATE secret-token-1234")
        assert r.is_(500, "5.5.2") or r.is_(502, "5.5.1"), r
        assert b"FROBNICATE" not in r.raw.upper()
        assert b"secret-token" not in r.raw


def test_error_limit(server):
    """error-limit 10 (default): 10 errors answered, the 11th gets 421."""
    replies = []
    with server.client() as c:
        c.ehlo()
        for _ in range(11):
            try:
                r = c.cmd("XYZZY")
            except Closed:
                break
            replies.append(r)
            if r.code == 421:
                break
        codes = [(r.code, r.enh) for r in replies]
        assert codes == [(500, "5.5.2")] * 10 + [(421, "4.7.0")], codes
        assert c.wait_closed(5)
        assert c.trailing == b""


@pytest.mark.parametrize("verb", [
    "DEBUG", "WIZ", "KILL", "VERB", "TURN", "ATRN", "ETRN local.test",
    "XCLIENT ADDR=1.2.3.4", "XFORWARD ADDR=1.2.3.4", "XEXCH50 1 2",
    "AUTH LOGIN", "ETRN 'or'1'='1",
])
def test_legacy_and_vendor_commands(server, verb):
    with server.client() as c:
        c.ehlo()
        r = c.cmd(verb)
        assert (r.code, r.enh) in [(502, "5.5.1"), (500, "5.5.2"),
                                   (503, "5.5.1")], r
        c.expect_cmd("MAIL FROM:<a@example.org>", 250)
        c.expect_cmd("RCPT TO:<victim@example.net>", 554, "5.7.1")


def test_proxy_line_not_trusted(server):
    with server.client() as c:
        c.greeting()
        r = c.cmd("PROXY TCP4 127.0.0.1 192.0.2.10 1234 25")
        assert r.is_(500, "5.5.2") or r.code == 421, r


# -- P-06: talking before the greeting -----------------------------------


def test_pregreet(make_server):
    srv = make_server(greet_delay="2s")
    with srv.client() as c:
        c.send(b"EHLO x\r\n")
        r = c.reply(timeout=6)
        assert r.is_(554, "5.5.0"), r
        assert c.wait_closed(5)
        assert c.trailing == b""
    # a patient client gets the greeting after the delay
    with srv.client() as c:
        t = time.monotonic()
        r = c.reply(timeout=6)
        assert r.raw == b"220 mx.local.test ESMTP\r\n"
        assert time.monotonic() - t >= 1.5
        c.expect_cmd("EHLO c.example", 250)
    assert "pregreet" in srv.log().lower() or "greet" in srv.log().lower()


# -- P-07: ESMTP parameters ----------------------------------------------


def test_mail_from_bare_quote(server):
    with server.client() as c:
        c.ehlo()
        c.expect_cmd('MAIL FROM:x"', 501, "5.1.7")
        c.expect_cmd("MAIL FROM:<>", 250)
        c.expect_cmd('RCPT TO:x"', 501, "5.1.3")


@pytest.mark.parametrize("param,expected", [
    ("SIZE=184467440737095516160", [(501, "5.5.4"), (552, "5.3.4")]),
    ("SIZE=18446744073709551616", [(501, "5.5.4"), (552, "5.3.4")]),
    ("SIZE=18446744073709551615", [(552, "5.3.4")]),
    ("SIZE=-1", [(501, "5.5.4")]),
    ("SIZE=", [(501, "5.5.4")]),
    ("SIZE=12x", [(501, "5.5.4")]),
    ("SIZE=999999999999", [(552, "5.3.4")]),
    ("BODY=8BITMIME BODY=7BIT FOO=bar", [(555, "5.5.4")]),
    ("FOO=bar", [(555, "5.5.4")]),
    ("SIZE=100 SIZE=100", [(555, "5.5.4")]),
    ("BODY=8BITMIME", [(250, "2.1.0")]),
    ("SIZE=1000 BODY=7BIT", [(250, "2.1.0")]),
])
def test_mail_parameters(server, param, expected):
    with server.client() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<s@example.org> " + param)
        assert (r.code, r.enh) in expected, "%s: %r" % (param, r)


# -- P-08: envelope reaching a shell or a format string --------------------


def test_shell_sender_rejected_fast(server):
    with server.client() as c:
        c.ehlo()
        t = time.monotonic()
        r = c.cmd("MAIL FROM:<;sleep 10;>", timeout=3)
        assert time.monotonic() - t < 1.0
        assert (r.code, r.enh) in [(501, "5.1.7"), (553, "5.1.7")], r


def test_exim_wizard_recipient(server):
    pwn = "/tmp/pwn"
    existed = os.path.exists(pwn)
    with server.client() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<>", 250)
        r = c.cmd(b"RCPT TO:<${run{\\x2Fbin\\x2Fsh\\t-c\\t\\x22id\\x3E"
                  b"\\x2Ftmp\\x2Fpwn\\x22}}@local.test>")
        assert (r.code, r.enh) in [(550, "5.1.1"), (501, "5.1.3")], r
    time.sleep(0.3)
    assert existed or not os.path.exists(pwn)


def test_format_string_sender(server):
    with server.client() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<%s%s%s%n@example.org>")
        assert r.code in (250, 501), r
        c.expect_cmd("NOOP", 250)
    if r.code == 250:
        assert server.wait_log(lambda t: "%s%s%s%n" in t, 3), \
            "the log does not show the literal sender"


# -- timeouts --------------------------------------------------------


@pytest.fixture(scope="module")
def timeout_server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("timeouts"),
                 timeout_command="2s", timeout_data="2s")
    srv.start()
    yield srv
    finish(srv)


def test_idle_timeout(timeout_server):
    with timeout_server.client() as c:
        c.greeting()
        t = time.monotonic()
        r = c.reply(timeout=8)
        assert r.is_(421, "4.4.2"), r
        assert 1.5 <= time.monotonic() - t <= 6
        assert c.wait_closed(3)


def test_idle_timeout_in_data(timeout_server):
    before = timeout_server.snapshot()
    with timeout_server.client() as c:
        tx(c)
        c.send(b"Subject: slow\r\n\r\npartial")
        r = c.reply(timeout=8)
        assert r.is_(421, "4.4.2"), r
        assert c.wait_closed(3)
    assert timeout_server.snapshot() == before


def test_trickle_hits_command_deadline(timeout_server):
    """One byte every 0.4 s: the deadline is per command, not per read."""
    with timeout_server.client() as c:
        c.ehlo()
        line = b"MAIL FROM:<a@example.org>\r\n"
        t = time.monotonic()
        got = b""
        for i in range(len(line)):
            try:
                c.sock.sendall(line[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            got += c.pending(0.4)
            if got or c.eof:
                break
        assert got.startswith(b"421 4.4.2"), got
        assert time.monotonic() - t < 6


# -- X-02 and limits -------------------------------------------------------


def test_too_many_recipients(limits_server):
    srv = limits_server
    users = ["u%d" % i for i in range(6)]
    before = srv.snapshot()
    with srv.client() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.org>", 250)
        for u in users[:5]:
            c.expect_cmd("RCPT TO:<%s@local.test>" % u, 250)
        c.expect_cmd("RCPT TO:<%s@local.test>" % users[5], 452, "4.5.3")
        c.expect_cmd("DATA", 354)
        c.send(b"Subject: five\r\n\r\nx\r\n.\r\n")
        c.expect(250)
    new = srv.snapshot() - before
    assert sorted(os.path.basename(os.path.dirname(os.path.dirname(
        os.path.dirname(f)))) for f in new) == users[:5]


def test_size_param_over_limit(limits_server):
    with limits_server.client() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.org> SIZE=%d" % (LIMIT + 1),
                     552, "5.3.4")
        c.expect_cmd("MAIL FROM:<s@example.org> SIZE=%d" % (LIMIT // 2), 250)


def test_oversized_data_stays_in_sync(limits_server):
    """D-06: limit + 1 MiB with QUIT and RSET lines inside: one 552, then
    still in sync."""
    srv = limits_server
    before = srv.snapshot()
    filler = (b"x" * 78 + b"\r\n") * 100
    body = b"Subject: big\r\n\r\n"
    for _ in range(10000):
        if len(body) > LIMIT + 1024 * 1024:
            break
        body += b"QUIT\r\nRSET\r\nMAIL FROM:<a@example.org>\r\n" + filler
    with srv.client() as c:
        tx(c)
        c.send(body + b".\r\n")
        c.expect(552, "5.3.4", timeout=20)
        no_more_replies(c)
        c.expect_cmd("NOOP", 250)
        c.expect_cmd("RCPT TO:<alice@local.test>", 503, "5.5.1")
        c.expect_cmd("QUIT", 221)
    assert srv.snapshot() == before


def test_exim_4344_shape(limits_server):
    """D-06.3: 8 KiB of 1000-octet X-Filler headers, then over the size
    limit."""
    srv = limits_server
    hdrs = b"".join(b"X-Filler: " + b"f" * 988 + b"\r\n" for _ in range(8))
    body = hdrs + b"\r\n" + (b"y" * 998 + b"\r\n") * 1200
    with srv.client() as c:
        tx(c)
        c.send(body + b".\r\n")
        r = c.reply(timeout=20)
        assert r.is_(552, "5.3.4"), r
        c.expect_cmd("NOOP", 250)


def test_header_section_too_big(limits_server):
    srv = limits_server
    before = srv.snapshot()
    hdrs = b"".join(b"X-H%d: " % i + b"h" * 500 + b"\r\n" for i in range(20))
    assert len(hdrs) > HEADER_LIMIT
    with srv.client() as c:
        tx(c)
        c.send(hdrs + b"\r\nbody\r\nQUIT\r\n.\r\n")
        c.expect(552, "5.3.4")
        no_more_replies(c)
        c.expect_cmd("NOOP", 250)
    assert srv.snapshot() == before


def test_continuation_only_header(limits_server):
    """D-05.1 (CVE-2020-28020 shape), scaled to the 8 KiB header limit."""
    srv = limits_server
    with srv.client() as c:
        tx(c)
        c.send(b"X: a\r\n" + b" b\r\n" * 100000 + b"\r\nbody\r\n.\r\n")
        r = c.reply(timeout=20)
        assert (r.code, r.enh) in [(552, "5.3.4"), (554, "5.6.0")], r
        c.expect_cmd("NOOP", 250)


def test_header_under_limit_ok(limits_server):
    srv = limits_server
    hdrs = b"".join(b"X-H%d: " % i + b"h" * 500 + b"\r\n" for i in range(10))
    with srv.client() as c:
        tx(c)
        c.send(hdrs + b"\r\nbody\r\n.\r\n")
        c.expect(250)


def test_special_header_names(server):
    with server.client() as c:
        tx(c)
        c.send(b"__proto__: x\r\nconstructor: y\r\n\r\nb\r\n.\r\n")
        c.expect(250)


def received_lines(n):
    return b"".join(b"Received: from x by y; Thu, 1 Jan 2026 00:00:00 "
                    b"+0000\r\n" for _ in range(n))


def test_mail_loop_rejected(server):
    before = server.snapshot()
    with server.client() as c:
        tx(c)
        c.send(received_lines(51) + b"\r\nb\r\n.\r\n")
        c.expect(554, "5.4.6")
        c.expect_cmd("NOOP", 250)
    assert server.snapshot() == before


def test_hops_under_limit_ok(server):
    with server.client() as c:
        tx(c)
        c.send(received_lines(40) + b"\r\nb\r\n.\r\n")
        c.expect(250)


def test_million_octet_subject_stored(make_server):
    """X-04.2: a 1,000,000-octet Subject line is accepted and stored byte
    for byte (our documented choice: lines over 998 octets are kept)."""
    srv = make_server(max_message_size="4M", header_size_limit="2M")
    subject = b"Subject: " + b"s" * (1000000 - 9)
    msg = subject + b"\r\n\r\nb\r\n"
    with srv.client() as c:
        tx(c)
        c.send(msg + b".\r\n")
        r = c.expect(250, timeout=20)
    files = srv.new_files("alice")
    assert len(files) == 1
    hdr, rest = split_received(read_file(files[0]))
    assert rest == msg
    assert r.queue_id and r.queue_id in hdr.decode()


# -- F-01 / F-02: recipients leaving the Maildir -----------------------------


@pytest.mark.parametrize("to,expected", [
    (b"../../etc/passwd@local.test", [(550, "5.1.1"), (501, "5.1.3")]),
    (b'"alice/../bob"@local.test', [(550, "5.1.1"), (501, "5.1.3")]),
    (b'"|/bin/sh -c id"@local.test', [(550, "5.1.1"), (501, "5.1.3")]),
    (b"/tmp/owned", [(501, "5.1.3")]),
    (b"|id@local.test", [(550, "5.1.1"), (501, "5.1.3")]),
    (b"alice/../../x@local.test", [(550, "5.1.1"), (501, "5.1.3")]),
    (b".alice@local.test", [(550, "5.1.1"), (501, "5.1.3")]),
    (b"alice@../local.test", [(501, "5.1.3"), (554, "5.7.1")]),
])
def test_path_traversal_recipients(server, to, expected):
    before = server.snapshot()
    with server.client() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.org>", 250)
        r = c.cmd(b"RCPT TO:<" + to + b">")
        assert (r.code, r.enh) in expected, "%r: %r" % (to, r)
        r = c.cmd("DATA")
        assert (r.code, r.enh) in [(554, "5.5.1"), (503, "5.5.1")], r
    assert server.snapshot() == before


def test_extension_traversal_stays_inside(server):
    name = "postern-itest-" + uuid.uuid4().hex
    target = "/tmp/" + name
    root = server.root
    files_before = {os.path.join(d, f) for d, _, fs in os.walk(root)
                    for f in fs}
    with server.client() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.org>", 250)
        r = c.cmd("RCPT TO:<alice+../../../tmp/%s@local.test>" % name)
        assert r.code in (250, 550, 501), r
        if r.code == 250:
            c.expect_cmd("DATA", 354)
            c.send(b"Subject: ext\r\n\r\nx\r\n.\r\n")
            c.expect(250)
    assert not os.path.exists(target)
    assert not os.path.exists(os.path.join(server.mailroot, "tmp", name))
    files_after = {os.path.join(d, f) for d, _, fs in os.walk(root)
                   for f in fs}
    for f in files_after - files_before:
        rel = os.path.relpath(f, root)
        assert (rel.startswith("mail/local.test/alice/Maildir/")
                or rel.startswith("spool/") or rel.startswith("server.")), f


# -- F-03: nothing injected into the Received header ---------------------


@pytest.mark.parametrize("helo", [
    b'a)(b\\c"d;e@f<g>',
    b"=?utf-8?q?a=0D=0AX-Injected:_1?=",
    b"evil(comment",
])
def test_received_header_not_injectable(server, helo):
    before = set(server.new_files("alice"))
    with server.client() as c:
        c.greeting()
        r = c.cmd(b"EHLO " + helo)
        if r.code != 250:
            assert r.is_(501, "5.5.2") or r.is_(501, "5.5.4"), r
            return
        c.expect_cmd("MAIL FROM:<=?utf-8?q?a=0D=0AX-Injected:_1?="
                     "@example.org>", 250)
        c.expect_cmd("RCPT TO:<alice@local.test>", 250)
        c.expect_cmd("DATA", 354)
        c.send(b"Subject: f03\r\n\r\nx\r\n.\r\n")
        c.expect(250)
    new = set(server.new_files("alice")) - before
    assert len(new) == 1
    hdr, rest = split_received(read_file(new.pop()))
    assert rest == b"Subject: f03\r\n\r\nx\r\n"
    text = hdr.decode("latin-1")
    # one field: no line of the header starts a new field
    for line in text.split("\r\n")[1:-1]:
        assert line[:1] in (" ", "\t"), text
    assert "X-Injected" not in text.replace("X-Injected:_1", "")
    # comments stay balanced
    assert text.count("(") == text.count(")"), text


# -- concurrency limit --------------------------------------------


def check_max_sessions(srv, n):
    held = []
    try:
        for i in range(n):
            c = srv.client()
            held.append(c)
            r = c.reply()
            assert r.code == 220, "session %d of %d refused: %r" % (
                i + 1, n, r)
        with srv.client() as c:
            c.expect(421, "4.7.0")
            assert c.wait_closed(5)
        held.pop().close()
        # the slot is given back
        assert wait_for(lambda: _greets(srv), 5, step=0.1), \
            "no 220 after a session ended"
    finally:
        for c in held:
            c.close()


def test_max_sessions(make_server):
    check_max_sessions(make_server(max_sessions=4, workers=1), 4)


def test_max_sessions_shared_among_workers(make_server):
    """max-sessions counts for the whole server (config.h), however the
    kernel spreads connections over the workers."""
    check_max_sessions(make_server(max_sessions=40, workers=2), 40)


def _greets(srv):
    with srv.client() as c:
        return c.reply().code == 220
