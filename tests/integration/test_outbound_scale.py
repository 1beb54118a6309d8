"""A large queue for a dead destination (issue 9, "Scale"; the timed
figures with 100,000 messages are bench/scale's, docs/performance.md):
2,000 entries written into queue/ in the documented format
(docs/queue-format.md) for a destination whose port refuses every
connection, and mail for a live destination beside them.

The queue process loads them all, defers them after a handful of
connection attempts (a destination no server of which answers has all
its waiting jobs deferred at once, as Postfix's qmgr does, instead of
one connection per message), and the live mail still leaves. Every wait
is bounded; nothing is timed.
"""

import os
import re
import subprocess
import time

from conftest import ALICE, ALICE_PW, postern_bin
from helpers import wait_for
from outbound_fixtures import Sink

COUNT = 2000
WAIT = 120.0  # ASan build, a loaded machine
DEAD = "127.0.0.1:1"  # nothing listens there: refused at once


def fill_queue(qdir, count):
    """count entries, each <id>.msg first, then <id>.env (as the spool
    writes them)."""
    body = (b"From: <alice@local.test>\r\nTo: <x@dead.test>\r\n"
            b"Subject: scale\r\n\r\nhello\r\n")
    os.makedirs(qdir, mode=0o700, exist_ok=True)
    now = int(time.time())  # well inside queue-lifetime
    for i in range(count):
        qid = "d%022d" % i
        with open(os.path.join(qdir, qid + ".msg"), "wb") as f:
            f.write(body)
        with open(os.path.join(qdir, qid + ".env"), "w") as f:
            f.write("postern-envelope 2\nid %s\ntime %d\nsize %d\n"
                    "sender alice@local.test\nauth alice@local.test\n"
                    "remote r%d@dead.test\nend\n"
                    % (qid, now, len(body), i))


def count_lines(srv, pattern):
    return len(re.findall(pattern, srv.log()))


def test_dead_destination_deferred_at_once_live_one_served(make_server):
    sink = Sink("127.0.0.2")
    try:
        srv = make_server(start=False, submission=True,
                          outbound_delivery="yes", retry_min="1h",
                          retry_max="1h", delay_warning="0")
        srv.extra_lines += ["transport dead.test [127.0.0.1]:1",
                            "transport live.test [127.0.0.2]:25"]
        srv.write_config()
        fill_queue(srv.queue_dir(), COUNT)
        srv.start()
        assert srv.wait_log(lambda t: "queue loaded messages=%d" % COUNT
                            in t, WAIT), srv.log()[-2000:]
        with srv.smtp_sub(login=(ALICE, ALICE_PW)) as s:
            s.sendmail(ALICE, ["bob@live.test"],
                       b"From: alice@local.test\r\nSubject: live\r\n\r\n"
                       b"hi\r\n")
        assert wait_for(lambda: len(sink.messages()) >= 1, WAIT), \
            srv.log()[-2000:]
        # Every dead entry deferred once, with the connection's error.
        assert wait_for(lambda: count_lines(
            srv, r"to=<r\d+@dead\.test> relay=\S+ delay=\S+ dsn=4\.\S+ "
            r"status=deferred") >= COUNT, WAIT), srv.log()[-2000:]
        # ... after a few connections, not one per message (the slow
        # start's window of 5 may be in flight when the first fails).
        connects = count_lines(srv, r"connect relay=\S*127\.0\.0\.1\]:1 ")
        assert 1 <= connects <= 20, connects
        assert "destination unreachable relay=" in srv.log()
        assert count_lines(srv, r"status=bounced") == 0
        # Each recipient deferred exactly once (retry-min 1h).
        assert count_lines(srv, r"to=<r0@dead\.test> .*status=deferred") \
            == 1
        out = subprocess.run([postern_bin(), "queue", "-c", srv.conf],
                             stdout=subprocess.PIPE, timeout=60)
        text = out.stdout.decode()
        assert out.returncode == 0, text
        assert text.startswith("messages=%d recipients=%d destinations=1 "
                               % (COUNT, COUNT)), text
        assert "dead.test recipients=%d" % COUNT in text, text
    finally:
        sink.stop()
