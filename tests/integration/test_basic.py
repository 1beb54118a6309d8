"""Basic dialogue and delivery: greeting, EHLO keywords, the small
commands, delivery with smtplib and swaks, the Received header, a copy per
recipient, and what the log says about one delivery."""

import os
import re
import subprocess
import uuid

from helpers import (LOG_PREFIX_RE, check_received, log_events, read_file,
                     split_received, wait_for)

EXPECTED_KEYWORDS = {"PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES",
                     "SMTPUTF8", "CHUNKING"}


def message(subject="hello", body=b"Hello Alice.\r\nSecond line.\r\n"):
    if isinstance(body, str):
        body = body.encode()
    return ("From: <s@example.org>\r\nTo: <alice@local.test>\r\n"
            "Subject: %s\r\nMessage-Id: <%s@example.org>\r\n\r\n"
            % (subject, uuid.uuid4().hex)).encode() + body


def test_greeting_exact(server):
    with server.client() as c:
        r = c.reply()
        assert r.raw == b"220 mx.local.test ESMTP\r\n"


def test_greeting_ipv6(server):
    with server.client("::1") as c:
        r = c.reply()
        assert r.raw == b"220 mx.local.test ESMTP\r\n"
        c.expect_cmd("QUIT", 221)


def test_ehlo_keywords_exact(server):
    with server.client() as c:
        r = c.ehlo()
        assert r.lines[0].split()[0] == "mx.local.test", r
        keywords = {line.split()[0].upper() for line in r.lines[1:]}
        assert keywords == EXPECTED_KEYWORDS, r
        size = [line for line in r.lines[1:] if line.startswith("SIZE")]
        assert size == ["SIZE 10485760"], r
        for forbidden in ("AUTH", "STARTTLS", "VRFY", "ETRN", "XCLIENT",
                          "XFORWARD", "DSN"):
            assert forbidden not in keywords
        # no software name or version anywhere in the reply
        assert "postern" not in r.text.lower()


def test_helo(server):
    with server.client() as c:
        c.greeting()
        r = c.expect_cmd("HELO c.example", 250)
        assert len(r.lines) == 1
        c.expect_cmd("MAIL FROM:<s@example.org>", 250)
        c.expect_cmd("RCPT TO:<alice@local.test>", 250)
        c.expect_cmd("QUIT", 221)


def test_help_lists_commands_only(server):
    with server.client() as c:
        c.ehlo()
        r = c.expect_cmd("HELP", 214, "2.0.0")
        text = r.text.lower()
        assert "postern" not in text
        # no version number: strip the enhanced status code first
        rest = re.sub(r"^2\.0\.0 ", "", r.lines[0]) + " ".join(r.lines[1:])
        assert not re.search(r"\d+\.\d+", rest), r


def test_vrfy_identical_for_all(server):
    with server.client() as c:
        c.ehlo()
        a = c.expect_cmd("VRFY alice", 252, "2.0.0")
        b = c.expect_cmd("VRFY nosuchuser", 252, "2.0.0")
        d = c.expect_cmd("VRFY alice@local.test", 252, "2.0.0")
        e = c.expect_cmd("VRFY root", 252, "2.0.0")
        assert a.raw == b.raw == d.raw == e.raw


def test_expn_refused(server):
    with server.client() as c:
        c.ehlo()
        r = c.expect_cmd("EXPN staff", 502, "5.5.1")
        assert "staff" not in r.text


def test_noop_rset_quit(server):
    with server.client() as c:
        c.ehlo()
        c.expect_cmd("NOOP", 250)
        c.expect_cmd("MAIL FROM:<s@example.org>", 250)
        c.expect_cmd("RSET", 250)
        # RSET ended the transaction: RCPT needs a new MAIL
        c.expect_cmd("RCPT TO:<alice@local.test>", 503, "5.5.1")
        c.expect_cmd("QUIT", 221)
        assert c.wait_closed(5)


def deliver_one(server, rcpt="alice", host="127.0.0.1"):
    before = set(server.new_files(rcpt))
    msg = message(body="unique %s\r\n" % uuid.uuid4().hex)
    code, text = server.send(["%s@local.test" % rcpt], msg, host=host)
    assert code == 250, text
    m = re.match(r"^2\.0\.0 Ok: queued as (\S+)$", text)
    assert m, text
    new = wait_for(lambda: set(server.new_files(rcpt)) - before, 2)
    return m.group(1), msg, sorted(new)


def test_delivery_exact_content(server):
    qid, msg, new = deliver_one(server)
    assert len(new) == 1, new
    data = read_file(new[0])
    hdr, rest = split_received(data)
    check_received(hdr, queue_id=qid, rcpt="alice@local.test")
    assert rest == msg
    # delivered exactly once: no other file carries this message
    others = [f for f in server.new_files("alice") if f != new[0]]
    assert all(read_file(f).find(msg) < 0 for f in others)
    # nothing left in tmp/
    assert os.listdir(os.path.join(server.maildir("alice"), "tmp")) == []


def test_delivery_ipv6(server):
    qid, msg, new = deliver_one(server, "bob", host="::1")
    assert len(new) == 1
    hdr, rest = split_received(read_file(new[0]))
    check_received(hdr, queue_id=qid, rcpt="bob@local.test")
    assert rest == msg


def test_delivery_preserves_bytes(server):
    """8-bit text, long lines, leading dots and empty lines arrive as sent
    (smtplib dot-stuffs, the server unstuffs)."""
    body = (b"caf\xc3\xa9 na\xc3\xafve\r\n.leading dot\r\n..two dots\r\n"
            b"\r\n\r\n" + b"x" * 990 + b"\r\n\x7f\x01\tend \r\n")
    msg = message(body=body)
    before = set(server.new_files("alice"))
    code, text = server.send(["alice@local.test"], msg)
    assert code == 250, text
    new = wait_for(lambda: set(server.new_files("alice")) - before, 2)
    assert len(new) == 1
    _, rest = split_received(read_file(new.pop()))
    assert rest == msg


def test_two_recipients_own_copies(server):
    """Each recipient gets a file of its own (its own Delivered-To), with
    the same name and the same message after the trace fields."""
    msg = message(subject="two")
    before_a = set(server.new_files("alice"))
    before_b = set(server.new_files("bob"))
    code, text = server.send(["alice@local.test", "bob@local.test"], msg)
    assert code == 250, text
    qid = re.search(r"queued as (\S+)", text).group(1)
    new_a = wait_for(lambda: set(server.new_files("alice")) - before_a, 2)
    new_b = wait_for(lambda: set(server.new_files("bob")) - before_b, 2)
    assert len(new_a) == 1 and len(new_b) == 1
    fa, fb = new_a.pop(), new_b.pop()
    sa, sb = os.stat(fa), os.stat(fb)
    assert (sa.st_dev, sa.st_ino) != (sb.st_dev, sb.st_ino)
    assert sa.st_nlink == 1 and sb.st_nlink == 1
    assert os.path.basename(fa) == os.path.basename(fb)
    for f in (fa, fb):
        hdr, rest = split_received(read_file(f))
        check_received(hdr, queue_id=qid)
        assert rest == msg


def test_same_recipient_twice_delivers_once(server):
    msg = message(subject="dup")
    before = set(server.new_files("alice"))
    with server.smtp() as s:
        s.ehlo("client.example")
        assert s.mail("s@example.org")[0] == 250
        assert s.rcpt("alice@local.test")[0] == 250
        code, _ = s.rcpt("ALICE@local.test")
        assert code in (250, 452, 503), code
        code, resp = s.data(msg)
        assert code == 250, resp
    new = wait_for(lambda: set(server.new_files("alice")) - before, 2)
    assert len(new) == 1, new


def test_swaks(server):
    before = set(server.new_files("alice"))
    marker = uuid.uuid4().hex
    p = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(server.port),
         "--to", "alice@local.test", "--from", "x@example.org",
         "--header", "Subject: swaks " + marker, "--timeout", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out
    assert re.search(r"<-\s+250 2\.0\.0 Ok: queued as \S+", out), out
    new = wait_for(lambda: set(server.new_files("alice")) - before, 2)
    assert len(new) == 1
    data = read_file(new.pop())
    hdr, rest = split_received(data)
    check_received(hdr, rcpt="alice@local.test")
    assert marker.encode() in rest


def test_log_events_for_one_delivery(server):
    qid, _, _ = deliver_one(server)

    def lines_for_sid():
        events = log_events(server.log())
        acc = [sid for sid, ev, rest in events
               if ev == "accepted" and qid in rest]
        if not acc:
            return None
        sid = acc[0]
        seen = {ev for s, ev, _ in events if s == sid}
        if {"connect", "mail", "rcpt", "accepted", "disconnect"} <= seen:
            return sid, seen
        return None

    got = wait_for(lines_for_sid, 5)
    assert got, "no connect/mail/rcpt/accepted/disconnect lines with one " \
        "session id for %s in:\n%s" % (qid, server.log()[-3000:])
    assert got[0] != "-"


def test_log_lines_well_formed(server):
    deliver_one(server)
    log = server.log()
    assert "\r" not in log and "\x00" not in log
    for line in log.splitlines():
        if not line:
            continue
        # "[<time> postern[pid]: ]<sid> <event> key=value ..."
        rest = LOG_PREFIX_RE.sub("", line, count=1)
        assert re.match(r"^\S+ [A-Za-z][\w.-]*( |$)", rest), line
        if rest.startswith("- "):
            continue  # process-level notices may be free text
        # session events are logfmt: key=value or key="escaped"
        for field in re.sub(r'"(\\.|[^"\\])*"', '""', rest).split()[2:]:
            assert "=" in field, (field, line)


def test_log_never_holds_body_text(server):
    marker = "BODYMARKER" + uuid.uuid4().hex
    subject_marker = "SUBJMARKER" + uuid.uuid4().hex
    msg = message(subject=subject_marker,
                  body="secret %s\r\n" % marker)
    code, text = server.send(["alice@local.test"], msg)
    assert code == 250, text
    # let the session end and its lines be written
    qid = re.search(r"queued as (\S+)", text).group(1)
    server.wait_log(lambda t: qid in t, 3)
    log = server.log()
    assert marker not in log
    assert subject_marker not in log


# -- the command line ----------------------------------------------------


def run_cli(*args):
    from conftest import postern_bin
    return subprocess.run([postern_bin()] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30)


def test_cli_version():
    p = run_cli("version")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() or p.stderr.strip()


def test_cli_check_good(server):
    p = run_cli("check", "-c", server.conf)
    assert p.returncode == 0, p.stderr


def test_cli_check_bad(server, tmp_path):
    bad = tmp_path / "bad.conf"
    text = server.config_text()
    n = text.count("\n")
    bad.write_text(text + "bogus-directive 1\nworkers lots\n")
    p = run_cli("check", "-c", str(bad))
    assert p.returncode == 1, (p.returncode, p.stderr)
    err = p.stderr.decode("utf-8", "replace")
    # every error, each as file:line: message
    assert re.search(r"^%s:%d: \S" % (re.escape(str(bad)), n + 1), err,
                     re.M), err
    assert re.search(r"^%s:%d: \S" % (re.escape(str(bad)), n + 2), err,
                     re.M), err


def test_cli_check_missing_file(tmp_path):
    p = run_cli("check", "-c", str(tmp_path / "nonexistent.conf"))
    assert p.returncode != 0
    assert p.stderr.strip()


def test_starttls_not_offered_yet(server):
    with server.client() as c:
        c.ehlo()
        r = c.cmd("STARTTLS")
        assert (r.code, r.enh) in [(502, "5.5.1"), (454, "4.7.0")], r
        c.expect_cmd("MAIL FROM:<s@example.org>", 250)
        c.expect_cmd("RCPT TO:<alice@local.test>", 250)


def test_ehlo_without_name(server):
    with server.client() as c:
        c.greeting()
        r = c.cmd("EHLO")
        assert r.code == 501, r
        c.expect_cmd("EHLO c.example", 250)


def test_ehlo_address_literal(server):
    with server.client() as c:
        c.greeting()
        c.expect_cmd("EHLO [127.0.0.1]", 250)
        c.expect_cmd("EHLO [IPv6:::1]", 250)


def test_longest_hostname(make_server):
    """Issue 6 item 4: with a 253-octet hostname (the most the
    configuration allows) the greeting, EHLO and HELO replies are exact:
    they were sent from a 128-octet buffer with snprintf's would-be
    length, stack bytes to every client (ASan aborts the worker)."""
    host = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61]).encode()
    assert len(host) == 253
    srv = make_server(hostname=host.decode())
    with srv.client() as c:
        r = c.reply()
        assert r.raw == b"220 " + host + b" ESMTP\r\n", r
        r = c.expect_cmd("EHLO c.example", 250)
        assert r.raw.startswith(b"250-" + host + b"\r\n250-PIPELINING\r\n")
        assert all(0x20 <= b < 0x7f or b in b"\r\n" for b in r.raw), r
        keywords = {line.split()[0].upper() for line in r.lines[1:]}
        assert keywords == EXPECTED_KEYWORDS, r
        r = c.expect_cmd("HELO c.example", 250)
        assert r.raw == b"250 " + host + b"\r\n", r
        c.expect_cmd("QUIT", 221)
