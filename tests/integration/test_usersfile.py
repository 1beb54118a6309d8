"""A missing or broken users file (issue 6 item 7, docs/users.md): `postern
check` reads and validates it (errors as file:line: message); `serve`
refuses to start on it; a SIGHUP with a broken file keeps the users the
guard had and logs why; a guard with no users answers AUTH with 454 4.7.0
and counts nothing toward lockout.

Before this, a broken file was silently empty: every login failed and
counted toward lockout, and mailboxes that exist only in the users file
got 550 5.1.1 on port 25.
"""

import os
import signal
import subprocess

import pytest

from conftest import ALICE, ALICE_PW, postern_bin
from helpers import plain_b64

CAROL = "carol@local.test"  # only in the users file, not a `mailbox`
CAROL_PW = "carol-secret-pw"
AUTH_TEMP = b"454 4.7.0 Temporary authentication failure, try later\r\n"
BROKEN_LINE = "broken@local.test\n"  # no password field


def rcpt_code(srv, addr):
    with srv.client() as c:
        c.greeting()
        c.expect_cmd("EHLO c.example", 250)
        c.expect_cmd("MAIL FROM:<s@example.org>", 250)
        return c.cmd("RCPT TO:<%s>" % addr).code


def auth_reply(srv, user, password, source=None):
    c = srv.sub("587", source=source)
    r = c.cmd("AUTH PLAIN " + plain_b64(user, password))
    c.close()
    return r.raw


def users_text(srv):
    with open(srv.users_path) as f:
        return f.read()


def serve_exit(srv, timeout=20):
    """Run `postern serve -c CONF -f`; it must exit by itself within
    `timeout` seconds. Returns (status, stderr)."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    p = subprocess.Popen([postern_bin(), "serve", "-c", srv.conf, "-f"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=srv.root, env=env,
                         start_new_session=True, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        pytest.fail("postern serve started on a bad users file")
    return p.returncode, err


def test_check_reads_the_users_file(make_server):
    srv = make_server(submission=True, start=False)
    good = users_text(srv)
    p = srv.cli("check")
    assert p.returncode == 0, p.stderr
    assert "2 users" in p.stdout, p.stdout

    # a broken line: file:line: message, exit status 1
    with open(srv.users_path, "w") as f:
        f.write(good + BROKEN_LINE)
    n = good.count("\n") + 1
    p = srv.cli("check")
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "%s:%d: missing password" % (srv.users_path, n) in p.stderr, \
        p.stderr

    # a missing file is an error too
    os.unlink(srv.users_path)
    p = srv.cli("check")
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "%s: No such file or directory" % srv.users_path in p.stderr, \
        p.stderr


@pytest.mark.parametrize("case", ["broken", "missing"])
def test_serve_refuses_a_bad_users_file(make_server, case):
    srv = make_server(submission=True, start=False)
    if case == "broken":
        with open(srv.users_path, "a") as f:
            f.write(BROKEN_LINE)
        want = "%s:3: missing password" % srv.users_path
    else:
        os.unlink(srv.users_path)
        want = "%s: No such file or directory" % srv.users_path
    rc, err = serve_exit(srv)
    assert rc == 1, (rc, err)
    assert want in err, err
    assert "not starting" in err, err
    assert "Sanitizer" not in err, err


def test_sighup_with_a_broken_users_file_keeps_the_users(make_server):
    srv = make_server(submission=True, start=False)
    srv.cli("user", "add", CAROL, "--stdin", stdin=CAROL_PW + "\n",
            check=True)
    good = users_text(srv)
    srv.start()
    assert rcpt_code(srv, CAROL) == 250
    assert auth_reply(srv, CAROL, CAROL_PW).startswith(b"235 ")

    for bad in ("broken", "missing"):
        start = len(srv.log())
        if bad == "broken":
            with open(srv.users_path, "w") as f:
                f.write(good + BROKEN_LINE)
        else:
            os.unlink(srv.users_path)
        srv.signal(signal.SIGHUP)
        assert srv.wait_log(lambda t: "users-kept" in t, 10, start), \
            srv.log()[start:]
        log = srv.log()[start:]
        why = "missing password" if bad == "broken" else "No such file"
        assert "users-error" in log and why in log, log
        # the users the guard had are still there: logins and mailboxes
        assert auth_reply(srv, CAROL, CAROL_PW).startswith(b"235 "), bad
        assert auth_reply(srv, ALICE, ALICE_PW).startswith(b"235 "), bad
        assert rcpt_code(srv, CAROL) == 250, bad
        assert srv.running()


def test_no_users_auth_454_and_nothing_counted(make_server):
    srv = make_server(submission=True, start=False,
                      auth_account_failures=2, auth_address_failures=2)
    good = users_text(srv)
    with open(srv.users_path, "w") as f:
        f.write("# no users yet\n")
    srv.start()
    start = len(srv.log())
    for i in range(6):
        assert auth_reply(srv, ALICE, "wrong-%d" % i) == AUTH_TEMP
        assert auth_reply(srv, "nobody@local.test", "x") == AUTH_TEMP
    log = srv.log()[start:]
    assert "auth-unavailable" in log and "reason=no-users" in log, log
    assert "auth-failure" not in log, log
    p = srv.cli("locks")
    assert p.returncode == 0 and p.stdout.startswith("0 locks"), p.stdout

    # a good file by SIGHUP: the right password works at once (nothing
    # was counted, though the thresholds are 2)
    with open(srv.users_path, "w") as f:
        f.write(good)
    start = len(srv.log())
    srv.signal(signal.SIGHUP)
    assert srv.wait_log(lambda t: "users-loaded count=2" in t, 10, start)
    assert auth_reply(srv, ALICE, ALICE_PW).startswith(b"235 ")
