"""File names the store makes (issue 6 item 4): every one is under 255
octets whatever the configured hostname, and none carries a byte the
client sent (THREATS F-01)."""

import os
import re
import uuid

from helpers import read_file, split_received, wait_for

# The longest hostname the configuration takes: 253 octets in labels of
# 63 (RFC 1035 2.3.4).
LONG_HOST = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])


def all_names(root):
    """Every file and directory name under `root`."""
    out = []
    for dirpath, dirs, files in os.walk(root):
        out.extend(dirs)
        out.extend(files)
    return out


def message(marker):
    return ("From: <s@example.org>\r\nTo: <alice@local.test>\r\n"
            "Subject: %s\r\n\r\nbody %s\r\n" % (marker, marker)).encode()


def test_long_hostname_delivers(make_server):
    """With a 253-octet hostname a message used to be refused
    (commit-failed error=ENAMETOOLONG: the Maildir name carried the whole
    hostname)."""
    assert len(LONG_HOST) == 253
    srv = make_server(hostname=LONG_HOST)
    marker = uuid.uuid4().hex
    msg = message(marker)
    code, text = srv.send(["alice@local.test"], msg)
    assert code == 250, text
    qid = re.search(r"queued as (\S+)", text).group(1)
    new = wait_for(lambda: srv.new_files("alice"), 5)
    assert len(new) == 1, new
    name = os.path.basename(new[0])
    # <time>.<queue id>.<first 111 octets of the host>-<16 hex digits>
    m = re.match(r"^(\d+)\.%s\.(%s)-([0-9a-f]{16})$"
                 % (qid, LONG_HOST[:111].replace(".", r"\.")), name)
    assert m, name
    assert len(name.encode()) + len(":2,abcdefghijklmnopqrstuvwxyz") < 255
    assert read_file(new[0]).endswith(msg)
    assert "ENAMETOOLONG" not in srv.log()
    for n in all_names(srv.root):
        assert len(n.encode()) < 255, n


def test_no_client_bytes_in_names(server):
    """HELO name, sender, recipient case and message text chosen by the
    client: none of it becomes part of a file or directory name."""
    marker = "zq" + uuid.uuid4().hex[:12]
    before = set(server.new_files("alice"))
    with server.client() as c:
        c.greeting()
        c.expect_cmd("EHLO %s.example" % marker, 250)
        c.expect_cmd("MAIL FROM:<%s@example.org>" % marker, 250)
        c.expect_cmd("RCPT TO:<Alice@local.test>", 250)
        c.expect_cmd("DATA", 354)
        c.send(message(marker) + b".\r\n")
        c.reply(250)
        c.expect_cmd("QUIT", 221)
    new = wait_for(lambda: set(server.new_files("alice")) - before, 5)
    assert len(new) == 1, new
    _, rest = split_received(read_file(new.pop()))
    assert marker.encode() in rest
    names = all_names(server.root)
    assert names
    for n in names:
        assert marker not in n.lower(), n
        assert len(n.encode()) < 255, n
