"""Trace fields at delivery (issue 6 item 8): each Maildir copy starts
with "Return-Path: <sender>" (RFC 5321 4.4) and "Delivered-To: <its
recipient>", then our Received header, then the message exactly as sent."""

import os
import re
import uuid

from helpers import (check_received, read_file, split_received, split_trace,
                     wait_for)


def message(subject, body):
    return ("From: <s@example.org>\r\nTo: <alice@local.test>\r\n"
            "Subject: %s\r\nMessage-Id: <%s@example.org>\r\n\r\n"
            % (subject, uuid.uuid4().hex)).encode() + body


def send_raw(server, sender, rcpts, msg):
    """One transaction by hand (no client-side rewriting); returns the
    queue id."""
    with server.client() as c:
        c.greeting()
        c.expect_cmd("EHLO client.example", 250)
        c.expect_cmd("MAIL FROM:<%s>" % sender, 250)
        for r in rcpts:
            c.expect_cmd("RCPT TO:<%s>" % r, 250)
        c.expect_cmd("DATA", 354)
        c.send(msg + b".\r\n")
        r = c.reply()
        assert r.code == 250, r
        c.expect_cmd("QUIT", 221)
    m = re.search(r"queued as (\S+)", r.text)
    assert m, r
    return m.group(1)


def delivered(server, user, before):
    new = wait_for(lambda: set(server.new_files(user)) - before, 5)
    assert len(new) == 1, new
    return new.pop()


def test_trace_fields_first(server):
    body = (b"caf\xc3\xa9\r\n..dots\r\n\r\nReturn-Path: <not@header>\r\n"
            b"\tend \r\n")
    msg = message("trace", body)
    before = set(server.new_files("alice"))
    qid = send_raw(server, "s@example.org", ["alice@local.test"], msg)
    path = delivered(server, "alice", before)
    data = read_file(path)
    assert data.startswith(b"Return-Path: <s@example.org>\r\n"
                           b"Delivered-To: alice@local.test\r\n"
                           b"Received: from "), data[:300]
    rp, dt, rest = split_trace(data)
    assert (rp, dt) == ("s@example.org", "alice@local.test")
    hdr, body_out = split_received(rest)
    check_received(hdr, queue_id=qid, rcpt="alice@local.test")
    # the body byte for byte (dots unstuffed by the server as sent)
    assert body_out == msg.replace(b"\r\n..dots", b"\r\n.dots")


def test_null_sender(server):
    before = set(server.new_files("alice"))
    send_raw(server, "", ["alice@local.test"], message("bounce", b"x\r\n"))
    data = read_file(delivered(server, "alice", before))
    assert data.startswith(b"Return-Path: <>\r\n"
                           b"Delivered-To: alice@local.test\r\n"), data[:200]


def test_two_recipients_own_delivered_to(server):
    msg = message("two", b"same body\r\n")
    before_a = set(server.new_files("alice"))
    before_b = set(server.new_files("bob"))
    qid = send_raw(server, "s@example.org",
                   ["alice@local.test", "bob@local.test"], msg)
    fa = delivered(server, "alice", before_a)
    fb = delivered(server, "bob", before_b)
    assert os.stat(fa).st_ino != os.stat(fb).st_ino
    for path, rcpt in ((fa, "alice@local.test"), (fb, "bob@local.test")):
        rp, dt, rest = split_trace(read_file(path))
        assert (rp, dt) == ("s@example.org", rcpt)
        hdr, body = split_received(rest)
        check_received(hdr, queue_id=qid)
        assert body == msg
