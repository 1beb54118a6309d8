"""The postmaster's notice of a send-burst alarm always arrives
(docs/sendlimit.md "The postmaster's notice"): the guard keeps it pending
in its store until a worker confirms its commit, and hands it again when
that worker is gone.

- the client sends the RCPT that raises the alarm and drops its
  connection at once: the postmaster still gets exactly one notice;
- the worker holding the notice is killed (kill -9) before it commits
  (the test hook $POSTERN_TEST_NOTICE_STALL makes it wait while a file
  exists): the notice arrives from the worker started in its place;
- the guard is killed (kill -9) while the notice is pending: the new
  guard loads it from its store and hands it to the new workers.

Every wait is bounded; nothing is timed.
"""

import os
import re
import signal
import socket
import struct

import pytest

from conftest import ALICE, ALICE_PW
from helpers import list_dir, read_file, wait_for

WAIT = 30.0
LIMITS = {"send_limit_hour": "200", "send_limit_day": "1000",
          "new_recipients_day": "200", "burst_floor": "50"}


def remote(n, first=0):
    return ["r%d@remote.test" % i for i in range(first, first + n)]


def notices(srv):
    d = srv.new_dir("postmaster")
    return [read_file(os.path.join(d, n)).decode() for n in list_dir(d)]


def trip_and_drop(srv):
    """50 recipients, then the 51st (the one that raises the alarm) and a
    reset of the connection right behind it, without reading a reply."""
    s = srv.smtp_sub(login=(ALICE, ALICE_PW))
    assert s.mail(ALICE)[0] == 250
    for r in remote(50):
        assert s.rcpt(r)[0] == 250
    sock = s.sock
    sock.sendall(b"RCPT TO:<r50@remote.test>\r\n")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()
    s.sock = None


def alarm_raised(srv):
    return srv.wait_log(lambda t: re.search(
        r'alarm kind=send-burst account="alice@local.test" count=51 ', t)
        is not None, WAIT)


def confirmed(srv, n=1):
    return srv.wait_log(lambda t: t.count("notice-confirmed kind=send-burst")
                        >= n, WAIT)


def check_the_notice(srv):
    got = notices(srv)
    assert len(got) == 1, got
    assert "Subject: send-burst alarm: alice@local.test" in got[0]
    assert "sent to 51 recipients in the last hour" in got[0]


def stalled_worker(srv):
    """The pid of the worker that logged it left the notice alone."""
    assert srv.wait_log(lambda t: "test-hook notice-stalled" in t, WAIT), \
        srv.log()[-3000:]
    m = re.search(r"postern\[(\d+)\]: - test-hook notice-stalled", srv.log())
    assert m, srv.log()[-3000:]
    return int(m.group(1))


def test_dropped_connection_still_notifies(make_server):
    srv = make_server(submission=True, **LIMITS)
    trip_and_drop(srv)
    assert alarm_raised(srv), srv.log()[-3000:]
    assert wait_for(lambda: len(notices(srv)) == 1, WAIT), srv.log()[-3000:]
    assert confirmed(srv), srv.log()[-3000:]
    check_the_notice(srv)
    assert "notice-handed kind=send-burst" in srv.log()
    assert srv.log().count("notice-handed") == 1


def test_worker_killed_before_commit(make_server, monkeypatch, tmp_path):
    stall = tmp_path / "stall"
    stall.write_text("")
    monkeypatch.setenv("POSTERN_TEST_NOTICE_STALL", str(stall))
    srv = make_server(submission=True, **LIMITS)
    trip_and_drop(srv)
    assert alarm_raised(srv), srv.log()[-3000:]
    victim = stalled_worker(srv)
    assert notices(srv) == []
    stall.unlink()
    os.kill(victim, signal.SIGKILL)
    # handed again (attempt 2), this time committed and confirmed
    assert wait_for(lambda: len(notices(srv)) == 1, WAIT), srv.log()[-3000:]
    assert confirmed(srv), srv.log()[-3000:]
    check_the_notice(srv)
    assert re.search(r"notice-handed kind=send-burst id=\d+ "
                     r'account="alice@local.test" attempt=2 of=5 ',
                     srv.log()), srv.log()[-3000:]


def test_guard_restart_keeps_a_pending_notice(make_server, monkeypatch,
                                              tmp_path):
    stall = tmp_path / "stall"
    stall.write_text("")
    monkeypatch.setenv("POSTERN_TEST_NOTICE_STALL", str(stall))
    srv = make_server(submission=True, **LIMITS)
    assert srv.wait_log(lambda t: "guard started pid=" in t, WAIT)
    trip_and_drop(srv)
    assert alarm_raised(srv), srv.log()[-3000:]
    # the guard committed the notice to its store before handing it
    stalled_worker(srv)
    assert notices(srv) == []
    guards = re.findall(r"guard started pid=(\d+)", srv.log())
    assert len(guards) == 1, guards
    stall.unlink()
    os.kill(int(guards[0]), signal.SIGKILL)
    assert srv.wait_log(lambda t: "notice-state-loaded pending=1 " in t,
                        WAIT), srv.log()[-3000:]
    assert wait_for(lambda: len(notices(srv)) == 1, WAIT), srv.log()[-3000:]
    assert confirmed(srv), srv.log()[-3000:]
    check_the_notice(srv)
