"""Send limits and the volume alarm (issue 10 items 1-2,
docs/sendlimit.md): an authenticated account past send-limit-hour,
send-limit-day or new-recipients-day gets 451 4.7.1 naming the limit,
another account does not; per-user limits from the users file; RSET gives
the count back; a burst from a quiet account raises the alarm, its mail is
held in the queue (not delivered to the sink), the postmaster gets the
notice, `postern queue release --account` lets it go; burst-action refuse
and log; `postern user limits`, TOP and ALARMS on the control socket.

Remote mail goes to Postfix's smtp-sink through a `transport` on
127.0.0.1 (a free port), no DNS. Every wait is bounded; nothing is timed.
The shared fixture turns limits and alarm off (conftest.py): each test
here sets the values it needs, the defaults where it relies on them.
"""

DEFAULTS = {"send_limit_hour": "200", "send_limit_day": "1000",
            "new_recipients_day": "200", "burst_floor": "50"}


def limits(**kw):
    """The default limits (docs/sendlimit.md), with `kw` over them."""
    out = dict(DEFAULTS)
    out.update(kw)
    return out

import os
import re

import pytest

from conftest import ALICE, ALICE_PW, BOB, BOB_PW
from helpers import free_port, guard_control, list_dir, read_file, wait_for
from outbound_fixtures import Sink

WAIT = 30.0
BODY = b"Subject: limits\r\n\r\nhello\r\n"


def rcpts_codes(srv, login, rcpts, rset_after=False):
    """One transaction: MAIL, then RCPT for each; returns [(code, text)].
    It ends without DATA (QUIT, or RSET first): nothing is sent, so the
    guard gives the counts back (send() sends a message)."""
    out = []
    with srv.smtp_sub(login=login) as s:
        code, _ = s.mail(login[0])
        assert code == 250
        for r in rcpts:
            code, text = s.rcpt(r)
            out.append((code, text.decode()))
        if rset_after:
            s.rset()
    return out


def send(srv, login, rcpts, body=BODY):
    """A whole message to `rcpts`; returns {rcpt: (code, text)} of the
    refused ones (smtplib's sendmail) or raises when all are refused."""
    with srv.smtp_sub(login=login) as s:
        return s.sendmail(login[0], rcpts,
                          b"From: " + login[0].encode() + b"\r\n" + body)


def remote(n, first=0, domain="remote.test"):
    return ["r%d@%s" % (i, domain) for i in range(first, first + n)]


# --- the three limits --------------------------------------------------


def test_hour_limit_then_other_account(make_server):
    srv = make_server(submission=True,
                      **limits(send_limit_hour="3", burst_floor="1000"))
    got = rcpts_codes(srv, (ALICE, ALICE_PW),
                      ["bob@local.test"] + remote(3))
    assert [c for c, _ in got] == [250, 250, 250, 451], got
    assert got[3][1].startswith("4.7.1 Hourly recipient limit"), got
    # Another account is not touched.
    got = rcpts_codes(srv, (BOB, BOB_PW), remote(3))
    assert [c for c, _ in got] == [250, 250, 250], got
    assert srv.wait_log(lambda t: 'send-refused account="alice@local.test" '
                        "limit=send-limit-hour count=3" in t), \
        srv.log()[-2000:]
    # The RCPTs above were never sent: QUIT gave them back.
    got = rcpts_codes(srv, (ALICE, ALICE_PW), remote(3))
    assert [c for c, _ in got] == [250, 250, 250], got


def test_day_limit(make_server):
    srv = make_server(submission=True,
                      **limits(send_limit_hour="0", send_limit_day="4",
                               burst_floor="1000"))
    assert send(srv, (ALICE, ALICE_PW), remote(2)) == {}
    assert send(srv, (ALICE, ALICE_PW), ["bob@local.test", "r9@x.test"]) \
        == {}
    got = rcpts_codes(srv, (ALICE, ALICE_PW), remote(1, 20))
    assert got[0][0] == 451 and "Daily recipient limit" in got[0][1], got
    assert send(srv, (BOB, BOB_PW), remote(4)) == {}


def test_new_recipients_limit(make_server):
    srv = make_server(submission=True,
                      **limits(new_recipients_day="2", burst_floor="1000"))
    assert send(srv, (ALICE, ALICE_PW), ["A@remote.test", "b@remote.test"]) \
        == {}
    # A third new one is refused; known ones (any case) still go.
    got = rcpts_codes(srv, (ALICE, ALICE_PW),
                      ["c@remote.test", "a@REMOTE.test", "b@remote.test"])
    assert [c for c, _ in got] == [451, 250, 250], got
    assert "new recipients" in got[0][1], got
    assert send(srv, (BOB, BOB_PW), ["c@remote.test", "d@remote.test"]) == {}


def test_sessions_without_auth_pay_nothing(make_server):
    """mx mail is never counted: an account's own address receives more
    than its limit."""
    srv = make_server(submission=True,
                      **limits(send_limit_hour="1", burst_floor="1000"))
    for _ in range(3):
        srv.send(["alice@local.test", "bob@local.test"], b"Subject: x\r\n"
                 b"\r\nhi\r\n")
    assert "send-refused" not in srv.log()
    got = rcpts_codes(srv, (ALICE, ALICE_PW), remote(2))
    assert [c for c, _ in got] == [250, 451], got


def test_pipelined_rcpts_cannot_pass_the_limit(make_server):
    """All RCPTs in one write: each waits for the guard in turn."""
    srv = make_server(submission=True,
                      **limits(send_limit_hour="2", burst_floor="1000"))
    c = srv.sub(auth=(ALICE, ALICE_PW))
    c.send(b"MAIL FROM:<alice@local.test>\r\n" +
           b"".join(b"RCPT TO:<%s>\r\n" % r.encode() for r in remote(4)))
    codes = [c.reply().code for _ in range(5)]
    assert codes == [250, 250, 250, 451, 451], codes
    c.close()


# --- per-user limits from the users file -------------------------------


def test_per_user_limit_and_check(make_server):
    srv = make_server(submission=True, start=False,
                      **limits(burst_floor="1000"))
    text = read_file(srv.users_path).decode()
    lines = []
    for line in text.splitlines():
        if line.startswith(BOB + ":"):
            f = line.split(":")
            while len(f) < 8:
                f.append("")
            f[7] = "userdb_postern_send_limit_hour=2"
            line = ":".join(f)
        lines.append(line)
    bad = "\n".join(lines).replace("send_limit_hour=2",
                                   "send_limit_hour=2x") + "\n"
    with open(srv.users_path, "w") as f:
        f.write(bad)
    p = srv.cli("check")
    assert p.returncode != 0
    bob_line = [i for i, l in enumerate(lines) if l.startswith(BOB)][0] + 1
    assert re.search(r"users:%d: invalid userdb_postern_send_limit_hour "
                     r"value '2x'" % bob_line, p.stderr + p.stdout), \
        p.stderr + p.stdout
    with open(srv.users_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    assert srv.cli("check").returncode == 0
    srv.start()
    got = rcpts_codes(srv, (BOB, BOB_PW), remote(3))
    assert [c for c, _ in got] == [250, 250, 451], got
    got = rcpts_codes(srv, (ALICE, ALICE_PW), remote(3))
    assert [c for c, _ in got] == [250, 250, 250], got
    p = srv.cli("user", "limits", BOB)
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"recipients-hour +0 of 2\n", p.stdout), p.stdout
    assert re.search(r"recipients-day +0 of 1000\n", p.stdout), p.stdout
    p = srv.cli("user", "limits", "nobody@local.test")
    assert p.returncode == 1 and "no such account" in p.stdout


# --- the volume alarm --------------------------------------------------


@pytest.fixture
def sink():
    started = []

    def start():
        s = Sink("127.0.0.1", port=free_port())
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


def burst_server(make_server, sink, action=None):
    sk = sink()
    opts = limits(outbound_delivery="yes", retry_min="1s", retry_max="2s")
    if action:
        opts["burst_action"] = action
    srv = make_server(submission=True, start=False, **opts)
    srv.extra_lines.append("transport remote.test [127.0.0.1]:%d" % sk.port)
    srv.write_config()
    srv.start()
    return srv, sk


def postmaster_notices(srv):
    d = srv.new_dir("postmaster")
    return [read_file(os.path.join(d, n)).decode() for n in list_dir(d)]


def sent_to(srv):
    """Recipients the queue delivered (to the sink: it answered 250)."""
    return set(re.findall(r" to=<([^>]+)> relay=127\.0\.0\.1\S* .*"
                          r"status=sent ", srv.log()))


def test_burst_holds_notifies_and_release_delivers(make_server, sink):
    srv, sk = burst_server(make_server, sink)
    # A quiet account: one message to 3 recipients goes out.
    assert send(srv, (ALICE, ALICE_PW), remote(3)) == {}
    assert wait_for(lambda: sent_to(srv) == set(remote(3)), WAIT), \
        srv.log()[-3000:]
    # Then 60 recipients in a minute (bob, local, among them).
    assert send(srv, (ALICE, ALICE_PW),
                remote(59, 100) + ["bob@local.test"]) == {}
    assert srv.wait_log(lambda t: re.search(
        r'alarm kind=send-burst account="alice@local.test" count=51 '
        r"baseline=0\.00 action=hold", t) is not None), srv.log()[-3000:]
    assert srv.log().count("alarm kind=send-burst") == 1
    # The postmaster's notice: account, count, baseline, action, command.
    assert wait_for(lambda: len(postmaster_notices(srv)) == 1, WAIT)
    notice = postmaster_notices(srv)[0]
    assert "Subject: send-burst alarm: alice@local.test" in notice
    assert "sent to 51 recipients in the last hour" in notice
    assert "baseline is 0.00 recipients an hour" in notice
    assert "Action: hold" in notice
    assert "postern queue release --account alice@local.test" in notice
    # Held: in the queue, never tried; bob (local) has it at once.
    held = [i for i in srv.queue_ids()
            if srv.queue_entry(i)[0].get("hold") == "send-burst"]
    assert len(held) == 1, srv.queue_ids()
    assert len([n for n in srv.new_files("bob")]) == 1
    # Mail from then on is held too; bob's own mail is not.
    assert send(srv, (ALICE, ALICE_PW), remote(1, 500)) == {}
    assert send(srv, (BOB, BOB_PW), remote(1, 600)) == {}
    assert wait_for(lambda: "r600@remote.test" in sent_to(srv), WAIT)
    p = srv.cli("queue", "list")
    assert p.stdout.count(" held") == 2, p.stdout
    # alice's held ones did not leave
    assert sent_to(srv) == set(remote(3) + ["r600@remote.test"])
    assert len(sk.messages()) == 2
    p = srv.cli("user", "limits", ALICE)
    assert re.search(r"alarm +send-burst since \S+ count=51 baseline=0\.00 "
                     r"action=hold", p.stdout), p.stdout
    # ALARMS and TOP for the status screen.
    out = guard_control(srv, "ALARMS")
    assert re.search(r"^OK 1 alarm\n\d+ send-burst alice@local\.test "
                     r"count=51,baseline=0\.00,action=hold,in-effect=yes\n$",
                     out), out
    out = guard_control(srv, "TOP")
    assert re.search(r"^OK 2 senders\nalice@local\.test 64 0\.00 1\n"
                     r"bob@local\.test 1 0\.00 0\n$", out), out
    # Release: the alarm clears, both held messages leave.
    p = srv.cli("queue", "release", "--account", ALICE)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "released \"alice@local.test\"" in p.stdout
    assert "released messages=2" in p.stdout
    want = set(remote(3) + remote(59, 100) + remote(1, 500) + remote(1, 600))
    assert wait_for(lambda: sent_to(srv) == want, WAIT), srv.log()[-3000:]
    # Mail flows again, not held.
    assert send(srv, (ALICE, ALICE_PW), remote(1, 700)) == {}
    assert wait_for(lambda: "r700@remote.test" in sent_to(srv), WAIT)
    assert " held" not in srv.cli("queue", "list").stdout
    assert "in-effect=no" in guard_control(srv, "ALARMS")


def queue_id_of(srv, rcpt):
    """The queue entry whose recipients include `rcpt`, once the queue
    process has it (it picks new entries up on its own)."""
    ids = []

    def found():
        ids[:] = [i for i in srv.queue_ids()
                  if rcpt in srv.cli("queue", "show", i).stdout]
        return len(ids) == 1
    assert wait_for(found, WAIT), (rcpt, ids)
    return ids[0]


def held_marks(srv):
    """{queue id: "held=alarm" | "held=admin" | ""} from `queue list`."""
    out = srv.cli("queue", "list").stdout.splitlines()[:-1]
    return {l.split()[0]: (l.split()[-1] if "held=" in l else "")
            for l in out}


def test_account_release_and_delete_only_the_alarms(make_server, sink):
    """Issue 10 review 2-3: a message an admin held by hand (`queue hold
    ID`) is neither released nor deleted by `--account`; the alarm's
    held ones are, and the count printed matches."""
    srv, sk = burst_server(make_server, sink)
    # alice's message to a destination that cannot be reached (the
    # test resolver): it waits;
    # the admin holds it by hand.
    assert send(srv, (ALICE, ALICE_PW), ["x@a.example"]) == {}
    assert srv.wait_log(lambda t: "to=<x@a.example> relay=none" in t,
                        WAIT), srv.log()[-3000:]
    admin = queue_id_of(srv, "x@a.example")
    assert srv.cli("queue", "hold", admin).returncode == 0
    # Then a burst: the alarm holds it and the next one.
    assert send(srv, (ALICE, ALICE_PW), remote(60, 100)) == {}
    assert srv.wait_log(lambda t: "alarm kind=send-burst" in t, WAIT)
    assert send(srv, (ALICE, ALICE_PW), remote(1, 500)) == {}
    alarm = {queue_id_of(srv, "r100@remote.test"),
             queue_id_of(srv, "r500@remote.test")}
    assert held_marks(srv) == {admin: "held=admin",
                               **{i: "held=alarm" for i in alarm}}, \
        srv.cli("queue", "list").stdout
    show = srv.cli("queue", "show", admin).stdout
    assert "\nheld admin\n" in show, show
    assert re.search(r"\narrival \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n", show), \
        show
    assert "\nheld alarm\n" in srv.cli("queue", "show", min(alarm)).stdout
    # delete --account: the alarm's two, not the admin's one.
    p = srv.cli("queue", "delete", "--account", ALICE.upper())
    assert p.returncode == 0, p.stdout + p.stderr
    assert "deleted messages=2\n" in p.stdout, p.stdout
    assert 'discarded "ALICE@LOCAL.TEST"' in p.stdout, p.stdout
    assert srv.wait_log(lambda t: "alarm-discarded kind=send-burst "
                        "account=\"ALICE@LOCAL.TEST\"" in t)
    assert wait_for(lambda: srv.queue_ids() == [admin], WAIT), \
        srv.queue_ids()
    assert srv.wait_log(lambda t: "queue delete-account "
                        "account=\"ALICE@LOCAL.TEST\" messages=2" in t)
    assert held_marks(srv) == {admin: "held=admin"}
    # The alarm is still in effect: new mail is held; release --account
    # lets that one go and leaves the admin's.
    assert send(srv, (ALICE, ALICE_PW), remote(1, 700)) == {}
    assert held_marks(srv)[queue_id_of(srv, "r700@remote.test")] == \
        "held=alarm"
    p = srv.cli("queue", "release", "--account", ALICE)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "released messages=1\n" in p.stdout, p.stdout
    assert wait_for(lambda: sent_to(srv) == {"r700@remote.test"}, WAIT), \
        srv.log()[-3000:]
    assert held_marks(srv) == {admin: "held=admin"}
    # None of the deleted spam ever left.
    assert len(sk.messages()) == 1


def test_burst_refuse(make_server, sink):
    srv, sk = burst_server(make_server, sink, "refuse")
    got = rcpts_codes(srv, (ALICE, ALICE_PW), remote(55))
    codes = [c for c, _ in got]
    assert codes == [250] * 50 + [451] * 5, codes
    assert got[50][1].startswith("4.7.1 Unusual sending volume"), got[50]
    assert srv.wait_log(lambda t: "alarm kind=send-burst" in t and
                        "action=refuse" in t)
    assert wait_for(lambda: len(postmaster_notices(srv)) == 1, WAIT)
    assert "Action: refuse" in postmaster_notices(srv)[0]
    # Still refused in a new session; bob is not.
    assert rcpts_codes(srv, (ALICE, ALICE_PW), remote(1))[0][0] == 451
    assert send(srv, (BOB, BOB_PW), remote(2)) == {}
    # Released: it may send again.
    p = srv.cli("queue", "release", "--account", ALICE)
    assert p.returncode == 0 and "released messages=0" in p.stdout
    assert rcpts_codes(srv, (ALICE, ALICE_PW), remote(1))[0][0] == 250


def test_burst_log_only(make_server, sink):
    srv, sk = burst_server(make_server, sink, "log")
    assert send(srv, (ALICE, ALICE_PW), remote(60)) == {}
    assert srv.wait_log(lambda t: "alarm kind=send-burst" in t and
                        "action=log" in t)
    assert wait_for(lambda: sent_to(srv) == set(remote(60)), WAIT), \
        srv.log()[-3000:]
    assert " held" not in srv.cli("queue", "list").stdout
    assert wait_for(lambda: len(postmaster_notices(srv)) == 1, WAIT)
    assert "Action: log" in postmaster_notices(srv)[0]


# --- across restarts (the guard's store, docs/guard-state.md) -----------


def test_restart_keeps_counts_and_alarm(make_server):
    srv = make_server(submission=True,
                      **limits(send_limit_hour="60", burst_action="refuse"))
    assert send(srv, (ALICE, ALICE_PW), remote(2)) == {}
    got = rcpts_codes(srv, (BOB, BOB_PW), remote(51))
    assert [c for c, _ in got] == [250] * 50 + [451], got  # alarm
    srv.stop()
    srv.proc = None
    srv.start()
    assert srv.wait_log(lambda t: "send-state-loaded accounts=2 " in t)
    p = srv.cli("user", "limits", ALICE)
    assert re.search(r"recipients-hour +2 of 60\n", p.stdout), p.stdout
    p = srv.cli("user", "limits", BOB)
    assert re.search(r"alarm +send-burst since \S+ count=51 ", p.stdout), \
        p.stdout
    # bob is still refused, alice's count goes on from 2 (and her two
    # recipients are known: not new).
    assert rcpts_codes(srv, (BOB, BOB_PW), remote(1))[0][0] == 451
    got = rcpts_codes(srv, (ALICE, ALICE_PW), remote(1) + remote(58, 10))
    assert [c for c, _ in got] == [250] * 48 + [451] * 11, \
        [c for c, _ in got]
