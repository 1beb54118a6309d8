"""Outbound delivery end to end (issue 9, docs/outbound.md): mail
submitted on 587 by an authenticated user to another domain leaves
through the queue process, routed by MX records that NSD serves
(outbound_fixtures.py), to Postfix's smtp-sink on 127.0.0.2, .3, ...
port 25. Retry times are shortened with retry-min and retry-max.

Every wait is bounded; nothing is timed.
"""

import email
import email.policy
import os
import re

import pytest

from conftest import ALICE, ALICE_PW
from helpers import list_dir, read_file, wait_for
from outbound_fixtures import DELIVERY_ZONES, DnsServer, SilentServer, Sink

WAIT = 30.0  # seconds a delivery may take (ASan build, first DNS answer)


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    server = DnsServer(tmp_path_factory.mktemp("dns"),
                       zones=DELIVERY_ZONES, signed=()).start()
    yield server
    server.stop()


@pytest.fixture
def outbound(make_server, dns):
    """A server with submission, the test DNS, and quick retries (the
    first attempt still comes from the worker's wake-up: retry-min does
    not apply to it)."""
    opts = dict(dns.directives())
    opts.update({"retry-min": "1s", "retry-max": "2s"})
    return make_server(submission=True, outbound_delivery="yes", **opts)


@pytest.fixture
def sinks():
    started = []

    def start(addr, *args):
        s = Sink(addr, args)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


def submit(srv, rcpts, body=b"Subject: outbound test\r\n\r\nhello\r\n"):
    with srv.smtp_sub(login=(ALICE, ALICE_PW)) as s:
        s.sendmail(ALICE, rcpts, b"From: " + ALICE.encode() + b"\r\n" + body)


def log_lines(srv, status=None, to=None):
    out = []
    for line in srv.log().splitlines():
        if " to=" not in line:
            continue
        if status and "status=%s " % status not in line:
            continue
        if to and "to=<%s>" % to not in line:
            continue
        out.append(line)
    return out


def delivered(srv, sink, n=1):
    """n messages at the sink and as many `sent` lines: smtp-sink writes
    its file while the data comes, so a file is whole only once postern
    has its 250."""
    return wait_for(lambda: len(sink.messages()) >= n and
                    len(log_lines(srv, "sent")) >= n, WAIT)


def bounces(srv):
    """Notices in alice's Maildir, parsed."""
    out = []
    for p in sorted(list_dir(srv.new_dir())):
        msg = email.message_from_bytes(
            read_file(os.path.join(srv.new_dir(), p)),
            policy=email.policy.default)
        if msg.get_content_type() == "multipart/report":
            out.append(msg)
    return out


def report_fields(msg):
    """The per-recipient fields of the message/delivery-status part."""
    part = [p for p in msg.iter_parts()
            if p.get_content_type() == "message/delivery-status"][0]
    fields = {}
    for block in part.get_payload():  # per-message, then per-recipient
        for k, v in block.items():
            fields[k] = " ".join(str(v).split())
    return fields


LINE_RE = re.compile(
    r"to=<(?P<to>[^>]+)> relay=(?P<relay>\S+) delay=(?P<delay>[\d.]+) "
    r"dsn=(?P<dsn>\d\.\d+\.\d+) status=(?P<status>sent|deferred|bounced) "
    r"\((?P<reply>.*)\)$")


def test_delivered(outbound, sinks):
    sink = sinks("127.0.0.2")
    submit(outbound, ["bob@ok.example"])
    assert delivered(outbound, sink), outbound.log()[-3000:]
    msg = sink.messages()[0]
    assert b"X-Mail-Args: <alice@local.test>" in msg
    assert b"X-Rcpt-Args: <bob@ok.example>" in msg
    assert b"\nSubject: outbound test\n" in msg.replace(b"\r\n", b"\n")
    assert wait_for(lambda: log_lines(outbound, "sent"), 10)
    m = LINE_RE.search(log_lines(outbound, "sent")[0])
    assert m, log_lines(outbound, "sent")
    assert m["to"] == "bob@ok.example"
    assert m["relay"] == "mx.ok.example[127.0.0.2]:25"
    assert m["dsn"] == "2.0.0" and m["reply"].startswith("250 2.0.0")
    # The entry is gone once delivered.
    assert wait_for(lambda: not outbound.queue_ids(), 10), \
        outbound.queue_ids()
    assert not bounces(outbound)


def test_dot_lines_arrive_intact(outbound, sinks):
    sink = sinks("127.0.0.2")
    body = (b"Subject: dots\r\n\r\n.hidden\r\n..two\r\n.\r\nx.\r\n"
            b". space\r\nlast\r\n")
    submit(outbound, ["bob@ok.example"], body)
    assert delivered(outbound, sink), outbound.log()[-3000:]
    got = sink.messages()[0].replace(b"\r\n", b"\n")
    assert (b"\nSubject: dots\n\n.hidden\n..two\n.\nx.\n. space\nlast\n"
            in got), got


def test_permanent_failure_bounces_to_sender(outbound, sinks):
    sinks("127.0.0.4", "-f", "rcpt")
    submit(outbound, ["nobody@perm.example"])
    assert wait_for(lambda: bounces(outbound), WAIT), outbound.log()[-3000:]
    notice = bounces(outbound)[0]
    assert notice["To"].addresses[0].addr_spec == ALICE
    assert notice["Subject"] == "Undelivered Mail Returned to Sender"
    assert notice["Auto-Submitted"] == "auto-replied"
    f = report_fields(notice)
    assert f["Final-Recipient"] == "rfc822; nobody@perm.example"
    assert f["Action"] == "failed"
    assert f["Status"].startswith("5.")
    assert f["Remote-MTA"] == "dns; mx.perm.example"
    assert f["Diagnostic-Code"].startswith("smtp; 5")
    # RFC 3464 2.2.5 and 2.3.7: RFC 5322 dates, arrival <= last attempt
    # <= now (the first try's 5xx is an attempt too).
    from email.utils import parsedate_to_datetime
    import datetime
    arrival = parsedate_to_datetime(f["Arrival-Date"])
    last = parsedate_to_datetime(f["Last-Attempt-Date"])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert arrival <= last <= now, (arrival, last, now)
    assert now - arrival < datetime.timedelta(minutes=10), (arrival, now)
    headers = [p for p in notice.iter_parts()
               if p.get_content_type() == "text/rfc822-headers"][0]
    assert "Subject: outbound test" in headers.get_content()
    line = log_lines(outbound, "bounced", "nobody@perm.example")
    assert line and LINE_RE.search(line[0]), line
    assert wait_for(lambda: not outbound.queue_ids(), 10)


def test_temporary_failure_then_delivered(outbound, sinks, tmp_path):
    grey = sinks("127.0.0.3", "-r", "rcpt")
    submit(outbound, ["carol@tmp.example"])
    assert wait_for(lambda: log_lines(outbound, "deferred",
                                      "carol@tmp.example"), WAIT), \
        outbound.log()[-3000:]
    m = LINE_RE.search(log_lines(outbound, "deferred")[0])
    assert m["dsn"].startswith("4.") and m["reply"].startswith("4")
    assert not grey.messages()
    grey.proc.terminate()
    grey.proc.wait(10)
    ok = sinks("127.0.0.3")
    assert delivered(outbound, ok), outbound.log()[-3000:]
    assert b"X-Rcpt-Args: <carol@tmp.example>" in ok.messages()[0]
    assert wait_for(lambda: log_lines(outbound, "sent", "carol@tmp.example"),
                    10)
    assert not bounces(outbound)


def test_bounce_after_deferrals_dates_the_last_attempt(make_server, dns,
                                                       sinks):
    """A 4xx, then a 5xx: the bounce's Last-Attempt-Date is the 5xx's
    attempt, not the earlier deferral's (RFC 3464 2.3.7). Retries every
    3 s: the 5xx attempt comes at least 3 s after the last deferral."""
    from email.utils import parsedate_to_datetime
    import datetime
    srv = make_server(submission=True, outbound_delivery="yes",
                      retry_min="3s", retry_max="3s", **dns.directives())
    grey = sinks("127.0.0.3", "-r", "rcpt")
    submit(srv, ["erin@tmp.example"])
    assert wait_for(lambda: log_lines(srv, "deferred", "erin@tmp.example"),
                    WAIT), srv.log()[-3000:]
    grey.proc.terminate()
    grey.proc.wait(10)
    sinks("127.0.0.3", "-f", "rcpt")
    assert wait_for(lambda: bounces(srv), WAIT), srv.log()[-3000:]
    last = parsedate_to_datetime(report_fields(bounces(srv)[0])
                                 ["Last-Attempt-Date"])
    stamp = log_lines(srv, "deferred", "erin@tmp.example")[-1].split(" ")[0]
    deferred = datetime.datetime.strptime(
        stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    assert last >= deferred + datetime.timedelta(seconds=2), (last, stamp)


def test_first_mx_down_second_takes_it(outbound, sinks):
    """127.0.0.5:25 refuses connections: the MX of preference 20 gets
    the mail."""
    second = sinks("127.0.0.6")
    submit(outbound, ["dave@backup.example"])
    assert wait_for(lambda: second.messages(), WAIT), outbound.log()[-3000:]
    # (the sink writes the message before its 250 reaches us)
    assert wait_for(lambda: log_lines(outbound, "sent",
                                      "dave@backup.example"), 10)
    sent = log_lines(outbound, "sent", "dave@backup.example")
    assert sent and "relay=mxb.backup.example[127.0.0.6]:25" in sent[0]
    assert "relay=mxa.backup.example[127.0.0.5]:25" in outbound.log()


def test_ipv6_only_mx(outbound, sinks):
    """An MX host with only an AAAA record: the mail goes over IPv6."""
    sink = sinks("::1")
    submit(outbound, ["fay@v6.example"])
    assert delivered(outbound, sink), outbound.log()[-3000:]
    sent = log_lines(outbound, "sent", "fay@v6.example")
    assert sent and "relay=mx.v6.example[::1]:25" in sent[0], sent


@pytest.mark.parametrize("domain,live,dead,dead_tried", [
    ("dual4.example", "127.0.0.40", "[::1]", True),
    ("dual6.example", "::1", "[127.0.0.41]", False)])
def test_one_family_down_other_takes_it(outbound, sinks, domain, live,
                                        dead, dead_tried):
    """An MX host with an IPv6 and an IPv4 address where only one
    answers: the mail arrives through the other, in one attempt. IPv6 is
    tried first (docs/outbound.md), so a dead IPv4 address is never
    tried when the IPv6 one answers."""
    sink = sinks(live)
    submit(outbound, ["gus@" + domain])
    assert delivered(outbound, sink), outbound.log()[-3000:]
    sent = log_lines(outbound, "sent", "gus@" + domain)
    want = "[%s]:25" % live
    assert sent and ("relay=mx.%s%s" % (domain, want)) in sent[0], sent
    assert not log_lines(outbound, "deferred", "gus@" + domain), \
        outbound.log()[-3000:]
    tried = "relay=mx.%s%s:25" % (domain, dead) in outbound.log()
    assert tried == dead_tried, outbound.log()[-3000:]
    assert not bounces(outbound)


def test_null_mx_bounces_at_once(outbound):
    submit(outbound, ["erin@nullmx.example"])
    assert wait_for(lambda: bounces(outbound), WAIT), outbound.log()[-3000:]
    f = report_fields(bounces(outbound)[0])
    assert f["Final-Recipient"] == "rfc822; erin@nullmx.example"
    assert f["Status"] == "5.1.10"
    assert "null MX" in f["Diagnostic-Code"]
    line = log_lines(outbound, "bounced", "erin@nullmx.example")
    assert line and "relay=none" in line[0] and "dsn=5.1.10" in line[0]


def test_one_transaction_for_many_recipients(outbound, sinks):
    """Recipients of one domain share a transaction (up to 50)."""
    sink = sinks("127.0.0.2")
    rcpts = ["r%d@ok.example" % i for i in range(7)]
    submit(outbound, rcpts)
    assert wait_for(lambda: len(log_lines(outbound, "sent")) == 7, WAIT), \
        outbound.log()[-3000:]
    assert len(sink.messages()) == 1
    assert sink.messages()[0].count(b"X-Rcpt-Args:") == 7


def test_delay_warning_once_then_expiry_bounce(make_server, dns, sinks):
    """A server that keeps answering 4xx: after delay-warning the sender
    gets one "delayed" notice; after queue-lifetime the recipient bounces
    with 5.4.7 and the last error."""
    sinks("127.0.0.3", "-r", "rcpt")
    opts = dict(dns.directives())
    opts.update({"retry-min": "1s", "retry-max": "1s",
                 "delay-warning": "2s", "queue-lifetime": "5s"})
    srv = make_server(submission=True, outbound_delivery="yes", **opts)
    submit(srv, ["carol@tmp.example"])
    assert wait_for(lambda: len(bounces(srv)) == 2, WAIT), srv.log()[-3000:]
    warn, bounce = sorted(bounces(srv), key=lambda m: m["Date"].datetime)
    assert warn["Subject"] == "Delayed Mail (still being retried)"
    f = report_fields(warn)
    assert f["Action"] == "delayed" and f["Status"].startswith("4.")
    assert "Will-Retry-Until" in f
    assert bounce["Subject"] == "Undelivered Mail Returned to Sender"
    f = report_fields(bounce)
    assert f["Action"] == "failed" and f["Status"] == "5.4.7"
    assert "delivery time expired, last error: 4" in f["Diagnostic-Code"]
    assert srv.log().count("delay-warning sent") == 1
    line = log_lines(srv, "bounced", "carol@tmp.example")
    assert line and "dsn=5.4.7" in line[0]
    assert wait_for(lambda: not srv.queue_ids(), 10)


def test_null_sender_gets_no_notice(outbound):
    """RFC 3464: a message from <> never causes a notice."""
    with outbound.smtp_sub(login=(ALICE, ALICE_PW)) as s:
        s.sendmail("<>", ["erin@nullmx.example"],
                   b"From: alice@local.test\r\nSubject: n\r\n\r\nx\r\n")
    assert wait_for(lambda: log_lines(outbound, "bounced"), WAIT), \
        outbound.log()[-2000:]
    assert wait_for(lambda: not outbound.queue_ids(), 10)
    assert not bounces(outbound)
    assert "notice" not in outbound.log()


def test_dead_destination_does_not_block_others(make_server, dns, sinks):
    """A destination whose server hangs before its greeting holds only
    its slow-start window (5 sessions, not outbound-sessions-per-
    destination), so with outbound-sessions 6 mail to others still
    leaves."""
    silent = SilentServer("127.0.0.13")
    try:
        sink = sinks("127.0.0.2")
        opts = dict(dns.directives())
        opts.update({"outbound-sessions": "6",
                     "outbound-sessions-per-destination": "20"})
        srv = make_server(submission=True, outbound_delivery="yes", **opts)
        with srv.smtp_sub(login=(ALICE, ALICE_PW)) as s:
            for i in range(12):
                s.sendmail(ALICE, ["h%d@silent.example" % i],
                           b"From: alice@local.test\r\nSubject: s\r\n"
                           b"\r\nx\r\n")
        assert wait_for(lambda: len(silent.conns) >= 5, WAIT)
        submit(srv, ["bob@ok.example"])
        assert delivered(srv, sink), srv.log()[-3000:]
        assert len(silent.conns) == 5, len(silent.conns)
    finally:
        silent.stop()
