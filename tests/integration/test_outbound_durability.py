"""Durable delivery state (issue 9 item 7, docs/queue-format.md): kill -9
of the queue process, and of the whole server, several times while it
delivers to a slow receiving server (smtp-sink -w 1: a second before each
DATA reply). Every recipient must arrive; duplicates are counted and
must be no more than the sessions in flight at each kill.

Kills happen when the receiver has seen so many messages, not after a
time; every wait is bounded.
"""

import re
import signal
import os

from conftest import ALICE, ALICE_PW
from helpers import wait_for
from outbound_fixtures import DELIVERY_ZONES, DnsServer, Sink

import pytest

N = 24          # messages, one recipient each
SESSIONS = 2    # outbound-sessions-per-destination: duplicates per kill
WAIT = 120.0

SUBJECT_RE = re.compile(rb"\nSubject: durable (\d+)\r?\n")
WHOLE_RE = re.compile(rb"\r?\n\r?\nbody\r?\n")
QUEUE_PID_RE = re.compile(r"postern\[(\d+)\]: - queue started")


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    server = DnsServer(tmp_path_factory.mktemp("dns"),
                       zones=DELIVERY_ZONES, signed=()).start()
    yield server
    server.stop()


def received(sink):
    """Subject numbers of the messages the sink took whole (a transaction
    cut by a kill may leave a partial file), with repeats."""
    out = []
    for m in sink.messages():
        g = SUBJECT_RE.search(m)
        if g and WHOLE_RE.search(m):
            out.append(int(g.group(1)))
    return out


def submit_all(srv):
    with srv.smtp_sub(login=(ALICE, ALICE_PW)) as s:
        for i in range(N):
            s.sendmail(ALICE, ["u%d@ok.example" % i],
                       b"From: alice@local.test\r\nSubject: durable %d\r\n"
                       b"\r\nbody\r\n" % i)


def queue_pid(srv):
    pids = QUEUE_PID_RE.findall(srv.log())
    return int(pids[-1]) if pids else None


def check_all_arrived(sink, kills):
    got = received(sink)
    assert sorted(set(got)) == list(range(N)), sorted(set(got))
    dups = len(got) - N
    assert 0 <= dups <= kills * SESSIONS, (dups, kills, sorted(got))
    return dups


@pytest.fixture
def slow_sink():
    sink = Sink("127.0.0.2", ["-w", "1"])
    yield sink
    sink.stop()


def test_kill_queue_process(make_server, dns, slow_sink):
    srv = make_server(submission=True, outbound_delivery="yes", outbound_sessions_per_destination=
                      str(SESSIONS), **dns.directives())
    submit_all(srv)
    kills = 0
    for at in (4, 10, 16):
        assert wait_for(lambda: len(set(received(slow_sink))) >= at, WAIT), \
            srv.log()[-2000:]
        pid = queue_pid(srv)
        os.kill(pid, signal.SIGKILL)
        kills += 1
        # The master starts a new one, which loads the queue again.
        assert wait_for(lambda: queue_pid(srv) not in (None, pid), 20), \
            srv.log()[-2000:]
    assert wait_for(lambda: len(set(received(slow_sink))) == N, WAIT), \
        srv.log()[-3000:]
    assert wait_for(lambda: not srv.queue_ids(), 20), srv.queue_ids()
    check_all_arrived(slow_sink, kills)
    assert srv.log().count("queue died") == kills


def test_kill_whole_server(make_server, dns, slow_sink):
    srv = make_server(submission=True, outbound_delivery="yes", outbound_sessions_per_destination=
                      str(SESSIONS), **dns.directives())
    submit_all(srv)
    kills = 0
    for at in (5, 14):
        assert wait_for(lambda: len(set(received(slow_sink))) >= at, WAIT), \
            srv.log()[-2000:]
        srv.kill_group()  # SIGKILL to every process of the server
        kills += 1
        srv.start()
    assert wait_for(lambda: len(set(received(slow_sink))) == N, WAIT), \
        srv.log()[-3000:]
    assert wait_for(lambda: not srv.queue_ids(), 20), srv.queue_ids()
    check_all_arrived(slow_sink, kills)


def test_journal_keeps_delivered_recipients(make_server, dns):
    """Each message has one recipient that is delivered at once and one
    whose server keeps answering 4xx. After each kill -9 the new queue
    process loads every message again, but sends only to the recipients
    the journal does not call sent."""
    ok = Sink("127.0.0.2")
    grey = Sink("127.0.0.3", ["-r", "rcpt"])
    try:
        srv = make_server(submission=True, outbound_delivery="yes", retry_min="1s", retry_max="2s",
                          **dns.directives())
        n = 8
        with srv.smtp_sub(login=(ALICE, ALICE_PW)) as s:
            for i in range(n):
                s.sendmail(ALICE, ["u%d@ok.example" % i,
                                   "v%d@tmp.example" % i],
                           b"From: alice@local.test\r\nSubject: durable "
                           b"%d\r\n\r\nbody\r\n" % i)
        assert wait_for(lambda: len(received(ok)) == n, WAIT), \
            srv.log()[-2000:]
        loaded = "queue loaded messages=%d" % n
        for _ in range(2):
            pid = queue_pid(srv)
            loads = srv.log().count(loaded)
            before = srv.log().count("status=deferred")
            assert wait_for(lambda: srv.log().count("status=deferred")
                            >= before + n, WAIT)
            os.kill(pid, signal.SIGKILL)
            assert wait_for(lambda: queue_pid(srv) not in (None, pid), 20)
            after = len(srv.log())
            # The new process tried every message again (the grey ones).
            assert wait_for(lambda: srv.log()[after:].count(
                "status=deferred") >= n, WAIT), srv.log()[-2000:]
            assert srv.log().count(loaded) == loads + 1, srv.log()[-2000:]
            assert sorted(received(ok)) == list(range(n))
        grey.proc.terminate()
        grey.proc.wait(10)
        good = Sink("127.0.0.3")
        try:
            assert wait_for(lambda: len(received(good)) == n, WAIT), \
                srv.log()[-2000:]
            assert wait_for(lambda: not srv.queue_ids(), 20)
        finally:
            good.stop()
        assert sorted(received(ok)) == list(range(n))
    finally:
        ok.stop()
        grey.stop()
