"""The metrics move with what the test did (issue 10 item 5 and Tests,
docs/metrics.md): outbound deliveries by status and the delivery-time
histogram, the queue gauges (size, oldest age), the volume alarm and the
held-mail gauge, `postern queue release --account`, and the recipients
the send limits refused, by reason.

Each test scrapes the endpoint before and after and checks the exact
difference. Outbound mail goes out as in test_outbound.py (NSD serving
the test zones, smtp-sink receivers on 127.0.0.x:25); the burst as in
test_sendlimit.py (a `transport` to a sink on a free port). The queue
process refreshes its gauges about once a second: every wait for a
number is bounded; nothing is timed.
"""

import pytest

from conftest import ALICE, ALICE_PW, BOB, BOB_PW
from helpers import free_port, wait_for
from outbound_fixtures import DELIVERY_ZONES, DnsServer, Sink
from test_metrics import get, promtool_check, scrape

WAIT = 30.0  # a delivery on the ASan build, the first DNS answer
BODY = b"Subject: metrics\r\n\r\nhello\r\n"

SENT = 'postern_deliveries_total{status="sent"}'
DEFERRED = 'postern_deliveries_total{status="deferred"}'
BOUNCED = 'postern_deliveries_total{status="bounced"}'
DELIVERY_COUNT = "postern_delivery_seconds_count"
DELIVERY_INF = 'postern_delivery_seconds_bucket{le="+Inf"}'
QMSGS = "postern_queue_messages"
QRCPTS = "postern_queue_recipients"
OLDEST = "postern_queue_oldest_message_age_seconds"
HELD = "postern_held_messages"
BURST = 'postern_alarms_total{kind="send_burst"}'
NETWORKS = 'postern_alarms_total{kind="login_networks"}'


def rcpt_refused(reason):
    return 'postern_recipients_refused_total{reason="%s"}' % reason


REFUSED_REASONS = ("send_limit_hour", "send_limit_day", "new_recipients_day",
                   "send_burst")


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    server = DnsServer(tmp_path_factory.mktemp("dns"),
                       zones=DELIVERY_ZONES, signed=()).start()
    yield server
    server.stop()


@pytest.fixture
def sinks():
    started = []

    def start(addr, *args, port=25):
        s = Sink(addr, args, port=port)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


def with_metrics(make_server, start=True, **opts):
    port = free_port()
    srv = make_server(submission=True, start=start,
                      metrics_listen="127.0.0.1:%d" % port, **opts)
    srv.metrics_port = port
    return srv


def outbound(make_server, dns, retry_min="1s", retry_max="2s"):
    opts = dict(dns.directives())
    opts.update({"retry-min": retry_min, "retry-max": retry_max})
    return with_metrics(make_server, outbound_delivery="yes", **opts)


def submit(srv, rcpts, login=(ALICE, ALICE_PW)):
    """One message from `login` to `rcpts`: {rcpt: (code, text)} of the
    refused ones."""
    with srv.smtp_sub(login=login) as s:
        return s.sendmail(login[0], rcpts,
                          b"From: " + login[0].encode() + b"\r\n" + BODY)


def rcpt_codes(srv, rcpts, login=(ALICE, ALICE_PW)):
    """MAIL, RCPT for each, QUIT without DATA: the RCPT reply codes."""
    out = []
    with srv.smtp_sub(login=login) as s:
        assert s.mail(login[0])[0] == 250
        for r in rcpts:
            out.append(s.rcpt(r)[0])
    return out


def moved(srv, before, want, timeout=WAIT):
    """Wait until every key of `want` moved by at least its value from
    `before`; return the scrape then (the caller checks exactly)."""
    def check():
        a = scrape(srv)
        if all(a[k] - before[k] >= v for k, v in want.items()):
            return a
        return None
    after = wait_for(check, timeout, step=0.2)
    assert after, (want, {k: scrape(srv)[k] - before[k] for k in want},
                   srv.log()[-3000:])
    return after


def settled(srv, key, value, timeout=WAIT):
    """Wait until the gauge `key` reads `value` (the queue process
    refreshes it about once a second); return that scrape."""
    after = wait_for(lambda: (lambda a: a if a[key] == value else None)(
        scrape(srv)), timeout, step=0.2)
    assert after, (key, value, scrape(srv)[key], srv.log()[-3000:])
    return after


def deltas(before, after, keys):
    return {k: after[k] - before[k] for k in keys}


OUTCOMES = (SENT, DEFERRED, BOUNCED, DELIVERY_COUNT, DELIVERY_INF)


# --- deliveries by status, the delivery-time histogram ------------------


def test_one_delivery_sent(make_server, dns, sinks):
    srv = outbound(make_server, dns)
    sink = sinks("127.0.0.2")
    before = scrape(srv)
    assert before[QMSGS] == 0 and before[OLDEST] == 0
    submit(srv, ["bob@ok.example"])
    after = moved(srv, before, {SENT: 1})
    after = settled(srv, QMSGS, 0)
    assert len(sink.messages()) == 1
    assert deltas(before, after, OUTCOMES) == {
        SENT: 1, DEFERRED: 0, BOUNCED: 0, DELIVERY_COUNT: 1,
        DELIVERY_INF: 1}
    assert after[DELIVERY_COUNT] == after[DELIVERY_INF]
    assert after["postern_delivery_seconds_sum"] >= \
        before["postern_delivery_seconds_sum"]
    assert after['postern_messages_accepted_total{role="submission"}'] - \
        before['postern_messages_accepted_total{role="submission"}'] == 1
    assert after[QRCPTS] == 0 and after[OLDEST] == 0
    rc, out = promtool_check(get(srv)[1].decode())
    assert rc == 0, out


def test_one_recipient_bounced(make_server, dns, sinks):
    srv = outbound(make_server, dns)
    sinks("127.0.0.4", "-f", "rcpt")  # 5xx to RCPT
    before = scrape(srv)
    submit(srv, ["nobody@perm.example"])
    moved(srv, before, {BOUNCED: 1})
    after = settled(srv, QMSGS, 0)
    # the notice to alice is local: no delivery attempt of its own
    assert deltas(before, after, OUTCOMES) == {
        SENT: 0, DEFERRED: 0, BOUNCED: 1, DELIVERY_COUNT: 0,
        DELIVERY_INF: 0}


def test_deferred_waits_in_the_queue(make_server, dns, sinks):
    # The first attempt comes at once; the retry only after an hour, so
    # the message waits in the queue for the whole test.
    srv = outbound(make_server, dns, retry_min="1h", retry_max="2h")
    sinks("127.0.0.3", "-r", "rcpt")  # 4xx to RCPT
    before = scrape(srv)
    assert before[QMSGS] == 0 and before[OLDEST] == 0
    submit(srv, ["carol@tmp.example"])
    moved(srv, before, {DEFERRED: 1})
    after = settled(srv, QMSGS, 1)
    assert deltas(before, after, OUTCOMES) == {
        SENT: 0, DEFERRED: 1, BOUNCED: 0, DELIVERY_COUNT: 0,
        DELIVERY_INF: 0}
    assert after[QRCPTS] == 1
    assert "status=deferred" in srv.log()
    # The age of the oldest message is above 0 and grows while it waits.
    first = wait_for(lambda: scrape(srv)[OLDEST], WAIT, step=0.2)
    assert first > 0, srv.log()[-3000:]
    assert wait_for(lambda: scrape(srv)[OLDEST] > first, WAIT, step=0.2)
    again = scrape(srv)
    assert again[QMSGS] == 1 and again[QRCPTS] == 1
    assert again[DEFERRED] - before[DEFERRED] == 1


# --- the volume alarm, held mail, release -------------------------------


def burst_server(make_server, sink, action="hold"):
    """The defaults of docs/sendlimit.md (the shared fixture turns the
    limits off), the burst floor at 50, remote.test to `sink`."""
    srv = with_metrics(make_server, start=False, outbound_delivery="yes",
                       retry_min="1s", retry_max="2s",
                       send_limit_hour="200", send_limit_day="1000",
                       new_recipients_day="200", burst_floor="50",
                       burst_action=action)
    srv.extra_lines.append("transport remote.test [127.0.0.1]:%d"
                           % sink.port)
    srv.write_config()
    srv.start()
    return srv


def remote(n, first=0):
    return ["r%d@remote.test" % i for i in range(first, first + n)]


def held_in_queue(srv):
    return srv.cli("queue", "list").stdout.count(" held")


def test_burst_alarm_and_held_mail(make_server, sinks):
    sink = sinks("127.0.0.1", port=free_port())
    srv = burst_server(make_server, sink)
    before = scrape(srv)
    assert before[BURST] == 0 and before[HELD] == 0
    # 60 recipients in a minute from an account with no history.
    assert submit(srv, remote(60)) == {}
    assert srv.wait_log(lambda t: "alarm kind=send-burst" in t and
                        "action=hold" in t, WAIT), srv.log()[-3000:]
    after = settled(srv, HELD, 1)
    assert held_in_queue(srv) == 1
    assert after[BURST] - before[BURST] == 1
    assert after[NETWORKS] == before[NETWORKS]
    # the queue holds that one message and its 60 recipients (the
    # postmaster's notice is local); the queue process sets the held
    # gauge after these two
    assert after[QMSGS] == 1 and after[QRCPTS] == 60
    # Mail from then on is held too: the gauge follows.
    assert submit(srv, remote(1, 100)) == {}
    after = settled(srv, HELD, 2)
    assert held_in_queue(srv) == 2
    assert after[QMSGS] == 2 and after[QRCPTS] == 61
    assert after[BURST] - before[BURST] == 1  # one alarm, not two
    assert after[SENT] == before[SENT]  # nothing left
    # Released: nothing held, all 61 recipients delivered.
    p = srv.cli("queue", "release", "--account", ALICE)
    assert p.returncode == 0, p.stdout + p.stderr
    after = moved(srv, before, {SENT: 61})
    after = settled(srv, HELD, 0)
    after = settled(srv, QMSGS, 0)
    assert held_in_queue(srv) == 0
    assert deltas(before, after, OUTCOMES) == {
        SENT: 61, DEFERRED: 0, BOUNCED: 0, DELIVERY_COUNT: 61,
        DELIVERY_INF: 61}
    assert after[BURST] - before[BURST] == 1
    # the refusals family did not move: nothing was refused
    for reason in REFUSED_REASONS:
        assert after[rcpt_refused(reason)] == before[rcpt_refused(reason)]


# --- recipients refused by the send limits, by reason -------------------


def limits(**kw):
    out = {"send_limit_hour": "0", "send_limit_day": "0",
           "new_recipients_day": "0", "burst_floor": "1000000"}
    out.update(kw)
    return out


@pytest.mark.parametrize("opts,rcpts,codes,reason", [
    (limits(send_limit_hour="3"), 5, [250] * 3 + [451] * 2,
     "send_limit_hour"),
    (limits(send_limit_day="2"), 3, [250] * 2 + [451], "send_limit_day"),
    (limits(new_recipients_day="1"), 4, [250] + [451] * 3,
     "new_recipients_day"),
    (limits(burst_floor="50", burst_action="refuse"), 53,
     [250] * 50 + [451] * 3, "send_burst"),
], ids=REFUSED_REASONS)
def test_send_limit_refusals_counted(make_server, opts, rcpts, codes,
                                     reason):
    srv = with_metrics(make_server, **opts)
    before = scrape(srv)
    got = rcpt_codes(srv, remote(rcpts))
    assert got == codes, got
    refused = codes.count(451)
    after = moved(srv, before, {rcpt_refused(reason): refused}, 10)
    assert deltas(before, after, [rcpt_refused(r) for r in
                                  REFUSED_REASONS]) == {
        rcpt_refused(r): refused if r == reason else 0
        for r in REFUSED_REASONS}
    # not messages: nothing reached DATA
    for k in after:
        if k.startswith("postern_messages_refused_total"):
            assert after[k] == before[k], k
    # another account is not refused, and nothing more is counted
    assert rcpt_codes(srv, remote(1), login=(BOB, BOB_PW)) == [250]
    again = scrape(srv)
    assert again[rcpt_refused(reason)] == after[rcpt_refused(reason)]
    rc, out = promtool_check(get(srv)[1].decode())
    assert rc == 0, out
