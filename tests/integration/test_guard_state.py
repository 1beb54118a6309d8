"""The guard's persistent state and the owner's networks (issue 10 items
2-4; docs/guard-state.md, docs/lockout.md "The owner's networks" and
"Alarms").

- an account lock spares the networks (IPv4 /24) where the account logged
  in successfully, not the others;
- a restart (SIGTERM, and a kill -9 of the guard alone) keeps the locks
  and the failure counts;
- a damaged store file at start is logged, moved aside and rebuilt empty,
  and the server starts;
- one account logging in from more than login-networks-hour networks in
  an hour raises one alarm line.

All clients are on 127.0.0.0/8, bound to a source address before they
connect; 127.0.N.x for different N are different /24s.
"""

import glob
import os
import re
import signal
import time

from conftest import ALICE, ALICE_PW, BOB, BOB_PW
from helpers import guard_control, plain_b64, wait_for

AUTH_OK = b"235 2.7.0 Authentication successful\r\n"
AUTH_FAILED = b"535 5.7.8 Authentication credentials invalid\r\n"
AUTH_TEMP = b"454 4.7.0 Temporary authentication failure, try later\r\n"


def auth(srv, user, password, source=None, kind="587"):
    """One session, one AUTH PLAIN; returns the reply bytes."""
    c = srv.sub(kind, source=source)
    r = c.cmd("AUTH PLAIN " + plain_b64(user, password))
    c.close()
    return r.raw


def fail(srv, user, n, source, tag):
    """n failed logins, one session each, different wrong passwords."""
    for i in range(n):
        assert auth(srv, user, "%s-%d" % (tag, i), source) == AUTH_FAILED


def locks(srv):
    p = srv.cli("locks")
    assert p.returncode == 0, p.stderr
    return p.stdout


def locks_soon(srv, text, timeout=15):
    """Wait until `postern locks` answers and names `text` (the guard
    may still be starting)."""
    def has():
        p = srv.cli("locks")
        return p.returncode == 0 and text in p.stdout
    return wait_for(has, timeout, step=0.2)


def guard_pids(srv):
    return re.findall(r"guard started pid=(\d+)", srv.log())


# --- the owner's networks ------------------------------------------------


def test_account_lock_spares_the_owners_network(make_server):
    srv = make_server(submission=True, auth_account_failures=5,
                      auth_address_failures=100)
    # alice logs in once from 127.0.0.2: 127.0.0.0/24 is hers now
    assert auth(srv, ALICE, ALICE_PW, "127.0.0.2") == AUTH_OK
    # five wrong passwords from elsewhere lock the account
    fail(srv, ALICE, 5, "127.0.3.3", "attack")
    assert srv.wait_log(lambda t: 'guard lock kind=account '
                        'key="alice@local.test"' in t, 5), srv.log()[-2000:]
    assert "alice@local.test" in locks(srv)
    # the owner still gets in from her network, any address in its /24
    assert auth(srv, ALICE, ALICE_PW, "127.0.0.2") == AUTH_OK
    assert auth(srv, ALICE, ALICE_PW, "127.0.0.9", kind="465") == AUTH_OK
    # ... nobody else does, not even with the right password
    assert auth(srv, ALICE, ALICE_PW, "127.0.1.4") == AUTH_TEMP
    assert auth(srv, ALICE, ALICE_PW, "127.0.3.3") == AUTH_TEMP
    # the address lockout still applies in the owner's network
    srv2 = make_server(submission=True, auth_account_failures=100,
                       auth_address_failures=3)
    assert auth(srv2, ALICE, ALICE_PW, "127.0.0.2") == AUTH_OK
    fail(srv2, "nobody@local.test", 3, "127.0.0.2", "addr")
    assert srv2.wait_log(lambda t: "guard lock kind=address "
                         "key=127.0.0.2/32" in t, 5)
    c = srv2.client(source="127.0.0.2")
    assert b"421 4.7.0" in c.pending(5.0)
    c.close()


def test_a_wrong_password_from_the_owners_network_still_counts(make_server):
    """Known networks spare the owner from the account lock; they do not
    stop counting: the lock still holds for everyone else."""
    srv = make_server(submission=True, auth_account_failures=3,
                      auth_address_failures=100)
    assert auth(srv, BOB, BOB_PW, "127.0.0.2") == AUTH_OK
    fail(srv, BOB, 3, "127.0.0.7", "typo")
    assert srv.wait_log(lambda t: 'key="bob@local.test"' in t, 5)
    assert auth(srv, BOB, BOB_PW, "127.0.5.5") == AUTH_TEMP
    assert auth(srv, BOB, BOB_PW, "127.0.0.2") == AUTH_OK


# --- restarts ------------------------------------------------------------


def set_up_state(srv):
    """An account lock (alice), an address lock (127.0.0.7) and two
    failures of bob's (threshold 3) that have locked nothing yet."""
    fail(srv, ALICE, 3, "127.0.0.5", "a")
    for i in range(4):
        assert auth(srv, "nosuch%d@local.test" % i, "x", "127.0.0.7") \
            == AUTH_FAILED
    fail(srv, BOB, 2, "127.0.2.6", "b")
    out = locks(srv)
    assert re.search(r'^account\s+"?alice@local\.test"?\s', out, re.M), out
    assert re.search(r"^address\s+127\.0\.0\.7/32\s", out, re.M), out
    assert "bob" not in out, out


def check_state_kept(srv, start):
    out = locks(srv)
    assert re.search(r'^account\s+"?alice@local\.test"?\s', out, re.M), out
    assert re.search(r"^address\s+127\.0\.0\.7/32\s", out, re.M), out
    assert auth(srv, ALICE, ALICE_PW, "127.0.4.4") == AUTH_TEMP
    # bob's two failures were kept: one more locks him
    assert auth(srv, BOB, "b-third", "127.0.2.6") == AUTH_FAILED
    assert srv.wait_log(lambda t: 'guard lock kind=account '
                        'key="bob@local.test"' in t, 5, start=start), \
        srv.log()[start:][-2000:]
    assert auth(srv, BOB, BOB_PW, "127.0.4.4") == AUTH_TEMP


def test_sigterm_restart_keeps_locks_and_failures(make_server):
    srv = make_server(submission=True, auth_account_failures=3,
                      auth_address_failures=4, auth_lock_time="1h",
                      auth_lock_max="1h")
    set_up_state(srv)
    assert srv.stop() == 0
    start = len(srv.log())
    srv.start()
    assert locks_soon(srv, "alice@local.test"), srv.log()[start:][-2000:]
    check_state_kept(srv, start)


def test_guard_kill9_keeps_what_is_older_than_a_second(make_server):
    srv = make_server(submission=True, auth_account_failures=3,
                      auth_address_failures=4, auth_lock_time="1h",
                      auth_lock_max="1h")
    assert srv.wait_log(lambda t: "guard started pid=" in t, 10)
    set_up_state(srv)
    old = guard_pids(srv)
    assert len(old) == 1, old
    time.sleep(2.5)  # the guard writes its state once a second
    start = len(srv.log())
    os.kill(int(old[0]), signal.SIGKILL)
    assert wait_for(lambda: len(guard_pids(srv)) == 2, 30), \
        srv.log()[-2000:]
    # the new guard answers the control socket once it is up
    assert locks_soon(srv, "alice@local.test"), srv.log()[-2000:]
    # and the workers reach it: bob still logs in from a clean address
    assert wait_for(lambda: auth(srv, BOB, BOB_PW, "127.0.8.8") == AUTH_OK,
                    15, step=0.5)
    check_state_kept(srv, start)


# --- a damaged store ----------------------------------------------------------


def test_corrupt_store_at_start_is_rebuilt_empty(make_server):
    srv = make_server(start=False, submission=True, auth_account_failures=3,
                      auth_address_failures=100, auth_lock_time="1h",
                      auth_lock_max="1h")
    state = os.path.join(srv.root, "var", "guard")
    os.makedirs(state, mode=0o700)
    with open(os.path.join(state, "guard.mdb"), "wb") as f:
        f.write(b"not an LMDB file, and longer than two pages " * 400)
    srv.start()
    assert srv.wait_log(lambda t: "gstore-corrupt" in t, 10), srv.log()
    line = [x for x in srv.log().splitlines() if "gstore-corrupt" in x][0]
    assert re.search(r'file="?[^ ]*var/guard/guard\.mdb"? reason="[^"]+" '
                     r'moved-to=guard\.mdb\.corrupt-\d+', line), line
    assert len(glob.glob(os.path.join(state, "guard.mdb.corrupt-*"))) == 1
    # the server works, and the new store keeps what it is given
    assert auth(srv, BOB, BOB_PW) == AUTH_OK
    fail(srv, ALICE, 3, "127.0.0.5", "c")
    assert "alice@local.test" in locks(srv)
    assert srv.stop() == 0
    srv.start()
    assert locks_soon(srv, "alice@local.test"), srv.log()[-2000:]
    assert srv.log().count("gstore-corrupt") == 1


def test_truncated_store_at_start_is_rebuilt_empty(make_server):
    srv = make_server(submission=True, auth_account_failures=3,
                      auth_address_failures=100, auth_lock_time="1h",
                      auth_lock_max="1h")
    fail(srv, ALICE, 3, "127.0.0.5", "t")
    assert srv.stop() == 0
    path = os.path.join(srv.root, "var", "guard", "guard.mdb")
    size = os.path.getsize(path)
    assert size > 3 * 4096, size
    os.truncate(path, size - 4096)
    srv.start()
    assert srv.wait_log(lambda t: 'gstore-corrupt' in t and
                        'reason="truncated"' in t, 10), srv.log()[-2000:]
    assert "alice" not in locks(srv)
    assert auth(srv, ALICE, ALICE_PW) == AUTH_OK


# --- the login-networks alarm ---------------------------------------------------


def test_login_networks_alarm(make_server):
    srv = make_server(submission=True)
    # bob from five networks: at the limit, no alarm
    for n in range(1, 6):
        assert auth(srv, BOB, BOB_PW, "127.0.%d.1" % n) == AUTH_OK
    # alice from six: one alarm
    for n in range(1, 7):
        assert auth(srv, ALICE, ALICE_PW, "127.0.%d.1" % (10 + n)) == AUTH_OK
    assert srv.wait_log(lambda t: "alarm kind=login-networks" in t, 5)
    # a seventh network in the same hour: no second line
    assert auth(srv, ALICE, ALICE_PW, "127.0.17.1") == AUTH_OK
    # logins from a network already counted do not add
    assert auth(srv, ALICE, ALICE_PW, "127.0.11.9") == AUTH_OK
    lines = [x for x in srv.log().splitlines() if "alarm kind=" in x]
    assert len(lines) == 1, lines
    assert re.search(r'guard alarm kind=login-networks '
                     r'account="alice@local\.test" count=6$', lines[0]), lines
    # the status screen's list has it (ALARMS on the control socket)
    out = guard_control(srv, "ALARMS")
    assert re.search(r"^OK 1 alarm\n\d+ login-networks alice@local\.test "
                     r"count=6,in-effect=no\n$", out), out
    # no hold: alice still sends
    s = srv.smtp_sub("587", source="127.0.11.1", login=(ALICE, ALICE_PW))
    s.sendmail(ALICE, [BOB], b"From: " + ALICE.encode() +
               b"\r\nSubject: t\r\n\r\nstill here\r\n")
    s.quit()


def test_login_networks_limit_is_a_directive(make_server):
    srv = make_server(submission=True, login_networks_hour=2)
    for n in range(1, 4):
        assert auth(srv, BOB, BOB_PW, "127.0.%d.1" % n) == AUTH_OK
    assert srv.wait_log(lambda t: 'guard alarm kind=login-networks '
                        'account="bob@local.test" count=3' in t, 5)
    srv2 = make_server(submission=True, login_networks_hour=0)
    for n in range(1, 8):
        assert auth(srv2, BOB, BOB_PW, "127.0.%d.1" % n) == AUTH_OK
    assert "alarm kind=" not in srv2.log()
