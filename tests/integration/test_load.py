"""Load with Postfix's smtp-source: every message delivered exactly once."""

import os
import subprocess
import time

from helpers import (list_dir, maildir_messages, read_file, spool_leftovers,
                     split_received, wait_for)

SMTP_SOURCE = "/usr/sbin/smtp-source"


def smtp_source(server, *args, timeout=150):
    assert os.access(SMTP_SOURCE, os.X_OK), "smtp-source is not installed"
    cmd = [SMTP_SOURCE] + list(args) + [
        "-f", "s@example.org", "-t", "alice@local.test",
        "127.0.0.1:%d" % server.port]
    t = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), \
        time.monotonic() - t


def check_all_once(server, n):
    new_dir = server.new_dir("alice")
    assert wait_for(lambda: len(list_dir(new_dir)) >= n, 10)
    got = maildir_messages(new_dir)
    assert len(list_dir(new_dir)) == n
    assert len(got) == n, "%d unique queue ids for %d files" % (
        len(got), n)
    for qid, [(path, rest)] in got.items():
        assert rest.startswith(b"From: <s@example.org>\r\n"), path
        assert rest.endswith(b"\r\n"), path
        assert b"\r\n\r\n" in rest, path
    assert list_dir(os.path.join(server.maildir("alice"), "tmp")) == []
    return got


def test_smtp_source_5000(make_server):
    srv = make_server()
    rc, out, secs = smtp_source(srv, "-s", "20", "-m", "5000", "-l", "1024")
    assert rc == 0, out
    got = check_all_once(srv, 5000)
    # the body is what smtp-source sent: 1024 octets after the header
    sample = next(iter(got.values()))[0][1]
    body = sample.split(b"\r\n\r\n", 1)[1]
    assert 1000 <= len(body) <= 1100, len(body)
    assert wait_for(lambda: not spool_leftovers(srv.spool), 5), \
        spool_leftovers(srv.spool)[:10]
    print("smtp-source 5000 x 1 KiB, 20 sessions: %.1f s" % secs)


def test_smtp_source_disconnect_each(make_server):
    """-d: one connection per message."""
    srv = make_server()
    rc, out, secs = smtp_source(srv, "-d", "-s", "10", "-m", "500",
                                "-l", "2048")
    assert rc == 0, out
    check_all_once(srv, 500)
    print("smtp-source -d 500 x 2 KiB, 10 sessions: %.1f s" % secs)


def test_smtp_source_to_bob_only(make_server):
    """Mail for bob lands in bob's Maildir only, with his Received."""
    srv = make_server()
    assert os.access(SMTP_SOURCE, os.X_OK)
    p = subprocess.run(
        [SMTP_SOURCE, "-s", "5", "-m", "100", "-l", "512",
         "-f", "s@example.org", "-t", "bob@local.test",
         "127.0.0.1:%d" % srv.port],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode == 0, p.stdout
    files = srv.new_files("bob")
    assert len(files) == 100
    for f in files[:10]:
        hdr, _ = split_received(read_file(f))
        assert b"for <bob@local.test>" in hdr.replace(b"\r\n\t", b" ") \
            .replace(b"\r\n ", b" ")
    assert srv.new_files("alice") == []
