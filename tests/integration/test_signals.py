"""Signals and crash safety: SIGHUP reload (good and bad file), SIGTERM
during a load, kill -9 of one worker and of the whole process group
(THREATS Q-02: nothing acknowledged is ever lost, nothing partial is
delivered, the spool is recovered)."""

import os
import re
from collections import Counter
import signal
import subprocess
import time

from helpers import (LoadClients, check_load_delivery, children, list_dir,
                     spool_leftovers, wait_for)


def rcpt_code(srv, addr, client=None):
    """A fresh session's RCPT reply code, or the code of the first reply
    that was not the expected 220/250 (e.g. 421 during a reload)."""
    with client or srv.client() as c:
        r = c.reply()
        if r.code != 220:
            return r.code
        for line in ("EHLO c.example", "MAIL FROM:<s@example.org>"):
            r = c.cmd(line)
            if r.code != 250:
                return r.code
        return c.cmd("RCPT TO:<%s>" % addr).code


def reload_and_wait(srv, addr, want=250, timeout=10):
    """Poll fresh sessions until RCPT <addr> gets `want`; returns the list
    of codes seen. A reload must not turn clients away (no 421)."""
    codes = []
    start = time.monotonic()

    def probe():
        # several connections at once, as real clients arrive
        clients = [srv.client() for _ in range(6)]
        codes.extend(rcpt_code(srv, addr, c) for c in clients)
        # keep probing for 1.5 s: a reload's window is short
        return codes[-1] == want and time.monotonic() - start > 1.5

    wait_for(probe, timeout, step=0.01)
    return codes


def test_sighup_good_config(make_server):
    srv = make_server()
    assert rcpt_code(srv, "carol@local.test") == 550
    srv.mailboxes.append("carol@local.test")
    srv.write_config()
    srv.signal(signal.SIGHUP)
    codes = reload_and_wait(srv, "carol@local.test")
    assert codes[-1] == 250, "carol unknown after reload: %s" % codes
    assert 421 not in codes, "fresh sessions turned away during the " \
        "reload: %s" % sorted(Counter(codes).items())
    assert srv.running()
    # the reload reached every worker, and nobody is turned away after it
    codes = [rcpt_code(srv, "carol@local.test") for _ in range(10)]
    codes += [rcpt_code(srv, "alice@local.test") for _ in range(4)]
    assert set(codes) == {250}, codes


def test_sighup_bad_config_keeps_old(make_server):
    srv = make_server()
    good = srv.config_text()
    start = len(srv.log())
    bad_line = "bogus-directive 42"
    srv.write_config(good + "mailbox carol@local.test\n" + bad_line + "\n")
    bad_lineno = (good + "mailbox carol@local.test\n").count("\n") + 1
    srv.signal(signal.SIGHUP)
    said = srv.wait_log(
        lambda t: "bogus-directive" in t or
        ("postern.conf:%d" % bad_lineno) in t, 5, start)
    assert said, "no log line about the refused file:\n%s" % \
        srv.log()[start:]
    time.sleep(0.5)
    assert srv.running()
    # the old configuration is still in force, in every worker
    for _ in range(6):
        assert rcpt_code(srv, "alice@local.test") == 250
        assert rcpt_code(srv, "carol@local.test") == 550
    # and a later good reload still works
    srv.mailboxes.append("carol@local.test")
    srv.write_config()
    srv.signal(signal.SIGHUP)
    codes = reload_and_wait(srv, "carol@local.test")
    assert codes[-1] == 250, codes
    assert 421 not in codes, sorted(Counter(codes).items())


def test_sigterm_during_load(make_server):
    srv = make_server(timeout_shutdown="3s")
    idle = srv.client()
    idle.greeting()
    load = LoadClients(srv.port, threads=4, per_thread=2000,
                       seconds=40).start()
    try:
        assert load.wait_count(40, 30), "load did not get going: %s" % \
            load.errors[:3]
        t = time.monotonic()
        srv.signal(signal.SIGTERM)
        try:
            rc = srv.proc.wait(srv.timeout_shutdown + 5)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t
    finally:
        load.stop()
    assert rc == 0, "exit status %s after SIGTERM" % rc
    assert took <= srv.timeout_shutdown + 5, took
    assert wait_for(lambda: not srv.group_pids(), 5), srv.group_pids()
    # the idle session was told, or at least closed
    assert idle.wait_closed(2)
    assert idle.trailing in (b"",) or idle.trailing.startswith(b"421 "), \
        idle.trailing
    idle.close()
    check_load_delivery(srv.new_dir("alice"), load)
    assert not spool_leftovers(srv.spool), spool_leftovers(srv.spool)[:10]


def test_kill_one_worker_during_smtp_source(make_server):
    srv = make_server()
    workers = wait_for(lambda: len(srv.workers()) >= 2 and srv.workers(), 5)
    assert workers and len(workers) >= 2, workers
    src = subprocess.Popen(
        ["/usr/sbin/smtp-source", "-s", "10", "-m", "6000", "-l", "1024",
         "-f", "s@example.org", "-t", "bob@local.test",
         "127.0.0.1:%d" % srv.port],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    load = LoadClients(srv.port, threads=3, per_thread=1500,
                       seconds=40).start()
    try:
        assert load.wait_count(30, 30), load.errors[:3]
        assert wait_for(lambda: len(list_dir(srv.new_dir("bob"))) > 50, 20)
        assert src.poll() is None, "smtp-source finished before the kill"
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        replaced = wait_for(
            lambda: (victim not in srv.workers()
                     and len(srv.workers()) >= len(workers)), 10)
        assert replaced, "worker not restarted: %s" % srv.workers()
        n = load.count()
        assert load.wait_count(n + 30, 30), load.errors[-3:]
    finally:
        load.stop()
        try:
            src.wait(60)
        except subprocess.TimeoutExpired:
            src.kill()
            src.wait(10)
    src_out = src.stdout.read().decode("utf-8", "replace")
    src.stdout.close()
    print("smtp-source exit %s: %s" % (src.returncode, src_out[-500:]))
    assert srv.running()
    # the server still delivers
    code, text = srv.send("alice@local.test",
                          b"Subject: after kill\r\n\r\nok\r\n")
    assert code == 250, text
    # the dead worker's spool area is recovered: nothing acknowledged lost
    assert wait_for(lambda: not spool_leftovers(srv.spool), 10), \
        spool_leftovers(srv.spool)[:10]
    check_load_delivery(srv.new_dir("alice"), _add_after_kill(load, srv))
    # bob's files (smtp-source) are whole and unique too
    from helpers import maildir_messages
    got = maildir_messages(srv.new_dir("bob"))
    assert all(len(v) == 1 for v in got.values())
    for qid, [(path, rest)] in got.items():
        assert rest.startswith(b"From: <s@example.org>\r\n"), path
        assert rest.endswith(b"\r\n"), path


def _add_after_kill(load, srv):
    """The after-kill message sent with srv.send() is in alice's new/ too;
    add it to the load's books so check_load_delivery() knows it."""
    from helpers import maildir_messages
    msg = b"Subject: after kill\r\n\r\nok\r\n"
    for qid, v in maildir_messages(srv.new_dir("alice")).items():
        if v[0][1] == msg:
            load.attempted["after-kill"] = msg
            load.accepted[qid] = "after-kill"
    return load


def test_kill_process_group_and_recover(make_server):
    srv = make_server()
    load = LoadClients(srv.port, threads=6, per_thread=2000,
                       seconds=40).start()
    try:
        assert load.wait_count(60, 30), load.errors[:3]
        time.sleep(0.3)
        srv.kill_group()
        assert not srv.group_pids()
    finally:
        assert load.stop(), "load threads did not stop"
    n_acked = len(load.accepted)
    assert n_acked >= 60
    # restart on the same spool and Maildirs
    srv.start()
    assert wait_for(lambda: not spool_leftovers(srv.spool), 10), \
        "spool not empty after recovery: %s" % \
        spool_leftovers(srv.spool)[:10]
    got = check_load_delivery(srv.new_dir("alice"), load)
    assert len(got) >= n_acked
    # the restarted server works
    code, text = srv.send("bob@local.test", b"Subject: again\r\n\r\nok\r\n")
    assert code == 250, text
    assert len(children(srv.pid)) >= 1


# --- issue 6 item 10: workers that fail at start ---------------------------


WORKER_DIED_RE = re.compile(
    r" worker died pid=\d+ worker=(\d+) (status=\d+|signal=\S+)"
    r"(?: core=yes)? lived=[\d.]+s restart-in=(\d+)s$", re.M)


def test_signals_act_while_workers_fail_at_start(make_server):
    """A spool the workers cannot open (its queue/ is a file): each worker
    dies at start. The master restarts them with a delay that doubles,
    says why each died, reloads on SIGHUP and, on SIGTERM, is gone within
    timeout-shutdown."""
    srv = make_server(start=False, timeout_shutdown="10s")
    with open(os.path.join(srv.spool, "queue"), "w") as f:
        f.write("not a directory\n")
    srv.start()
    # three deaths of worker 0: at start, 1 s later, 2 s after that
    assert srv.wait_log(lambda t: [w for w, _, _ in WORKER_DIED_RE.findall(t)
                                   ].count("0") >= 3, 30), srv.log()[-3000:]
    deaths = [(why, int(d)) for w, why, d in WORKER_DIED_RE.findall(srv.log())
              if w == "0"]
    assert all(why == "status=2" for why, _ in deaths), deaths
    assert [d for _, d in deaths[:3]] == [1, 2, 4], deaths
    # the worker said why it could not start
    assert re.search(r"spool dir=\S+ error=", srv.log()), srv.log()[-3000:]
    # SIGHUP is acted on in this state
    start = len(srv.log())
    srv.signal(signal.SIGHUP)
    assert srv.wait_log(lambda t: "reloaded file=" in t, 20, start), \
        srv.log()[start:]
    # and so is SIGTERM
    srv.signal(signal.SIGTERM)
    try:
        rc = srv.proc.wait(srv.timeout_shutdown)
    except subprocess.TimeoutExpired:
        rc = None
    assert rc == 0, ("not gone within timeout-shutdown", rc,
                     srv.log()[-2000:])
    assert wait_for(lambda: not srv.group_pids(), 5), srv.group_pids()
    assert "stopped" in srv.log()[start:]


def test_guard_killed_comes_back(make_server):
    """The guard killed: the master says so (signal, how long it lived,
    when it comes back), starts a new one after its back-off, and logins
    work again through new workers."""
    from conftest import ALICE, ALICE_PW
    from helpers import plain_b64
    srv = make_server(submission=True)
    assert srv.wait_log(lambda t: "guard started pid=" in t, 10)
    old = int(re.search(r"guard started pid=(\d+)", srv.log()).group(1))
    start = len(srv.log())
    os.kill(old, signal.SIGKILL)
    died = re.compile(r" guard died pid=%d signal=KILL lived=[\d.]+s "
                      r"restart-in=(\d+)s$" % old, re.M)
    assert srv.wait_log(lambda t: died.search(t), 10, start), \
        srv.log()[start:]
    assert srv.wait_log(lambda t: "guard started pid=" in t, 20, start), \
        srv.log()[start:]
    new = int(re.search(r"guard started pid=(\d+)",
                        srv.log()[start:]).group(1))
    assert new != old

    def login_ok():
        try:
            c = srv.sub("587")
            r = c.cmd("AUTH PLAIN " + plain_b64(ALICE, ALICE_PW))
            c.close()
            return r.code == 235
        except Exception:
            return False
    assert wait_for(login_ok, 20), srv.log()[start:]
