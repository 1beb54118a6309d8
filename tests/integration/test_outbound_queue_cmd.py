"""`postern queue` (issue 9 item 8, docs/outbound.md): the queue
process's control socket. Remote mail waits in the queue (the test's
resolver answers nothing: every attempt is deferred); the commands show
it, flush it, hold and release it (held survives a restart), delete it.
"""

import re
import time

from conftest import ALICE, ALICE_PW
from helpers import wait_for

WAIT = 30.0


def submit(srv, rcpt):
    with srv.smtp_sub(login=(ALICE, ALICE_PW)) as s:
        s.sendmail(ALICE, [rcpt], b"From: alice@local.test\r\n"
                   b"Subject: queue cmd\r\n\r\nhello\r\n")


def queue(srv, *args):
    p = srv.cli("queue", *args)
    return p.returncode, p.stdout


def deferrals(srv, rcpt):
    return srv.log().count("to=<%s> relay=none" % rcpt)


def test_queue_commands(make_server):
    srv = make_server(submission=True, outbound_delivery="yes", retry_min="1h", retry_max="1h")
    submit(srv, "x@a.example")
    submit(srv, "y@b.example")
    assert wait_for(lambda: deferrals(srv, "x@a.example") == 1 and
                    deferrals(srv, "y@b.example") == 1, WAIT), \
        srv.log()[-2000:]
    rc, out = queue(srv)
    assert rc == 0, out
    lines = out.splitlines()
    assert re.match(r"messages=2 recipients=2 destinations=2 oldest=\d+s$",
                    lines[0]), out
    assert any(re.match(r"a\.example recipients=1 oldest=\d+s$", l)
               for l in lines), out
    assert lines[-1] == "ok"
    rc, out = queue(srv, "list")
    assert rc == 0
    ids = {l.split()[0]: l for l in out.splitlines()[:-1]}
    assert set(ids) == set(srv.queue_ids()), (ids, srv.queue_ids())
    for l in ids.values():
        assert "sender=<alice@local.test> recipients=1/1" in l, l
    xid = [i for i in ids if "x@a.example" in queue(srv, "show", i)[1]][0]
    rc, out = queue(srv, "show", xid)
    assert rc == 0
    assert "id %s\n" % xid in out and "auth alice@local.test\n" in out
    # The arrival as an ISO 8601 UTC date, that of the envelope.
    env_time = int(srv.queue_entry(xid)[0]["time"])
    assert "\narrival %s\n" % time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(env_time)) in out, out
    assert re.search(r"rcpt <x@a\.example> state=waiting attempts=1 "
                     r"next=\d+s last=\d+s dsn=4\.\d+\.\d+ relay=none \(",
                     out), out
    # hold: flush does nothing; release tries again at once.
    assert queue(srv, "hold", xid)[0] == 0
    assert "\nheld admin\n" in queue(srv, "show", xid)[1]
    assert " held=admin\n" in queue(srv, "list")[1]
    rc, out = queue(srv, "flush", xid)
    assert rc == 0 and out.startswith("flushed recipients=0"), out
    assert queue(srv, "release", xid)[0] == 0
    assert wait_for(lambda: deferrals(srv, "x@a.example") == 2, WAIT)
    # flush by destination.
    rc, out = queue(srv, "flush", "b.example")
    assert rc == 0 and out.startswith("flushed recipients=1"), out
    assert wait_for(lambda: deferrals(srv, "y@b.example") == 2, WAIT)
    # delete.
    yid = [i for i in ids if i != xid][0]
    assert queue(srv, "delete", yid)[0] == 0
    assert wait_for(lambda: yid not in srv.queue_ids(), 10)
    rc, out = queue(srv, "delete", yid)
    assert rc == 1 and out == "error no such message\n", out
    rc, out = queue(srv, "frobnicate")
    assert rc == 1 and out == "error unknown command\n"
    # held survives a restart (the journal's `held` record).
    assert queue(srv, "hold", xid)[0] == 0
    srv.stop()
    srv.start()
    assert wait_for(lambda: queue(srv, "show", xid)[0] == 0, 10)
    assert "\nheld admin\n" in queue(srv, "show", xid)[1]
    rc, out = queue(srv)
    assert out.startswith("messages=1 recipients=1 destinations=1"), out


def test_queue_command_without_server(make_server):
    srv = make_server(start=False)
    rc, out = queue(srv)
    assert rc == 2
