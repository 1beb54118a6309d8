"""Two accounts (issue 12 item 1, docs/security.md): started as root, the
workers run as `user` (nobody here) and the guard as `guard-user` (daemon
here, an account every Debian system has); the users file is readable by
the guard's account and not by the workers'; the master warns, with the
fix, when the workers' account can read it. Started as another account,
everything keeps that one account and the log says so once.

Needs root (CI runs as root). The servers live under /var/tmp, not in
pytest's 0700 directory, so that nobody and daemon can reach them."""

import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import ALICE, ALICE_PW, Server, finish, postern_bin
from helpers import children, plain_b64, wait_for

WORKER = "nobody"
GUARD = "daemon"
AUTH_OK = b"235 2.7.0 Authentication successful\r\n"
AUTH_TEMP = b"454 4.7.0 Temporary authentication failure, try later\r\n"


def ids_of(pid):
    """(real, effective, saved, fs) uids from /proc/PID/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return tuple(int(x) for x in line.split()[1:5])
    return None


def runuser(user, *argv, **kw):
    return subprocess.run(["runuser", "-u", user, "--"] + list(argv),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=60, **kw)


@pytest.fixture
def var_root():
    if os.geteuid() != 0:
        pytest.fail("this test needs root (CI runs as root)")
    root = tempfile.mkdtemp(prefix="postern-accounts-", dir="/var/tmp")
    os.chmod(root, 0o755)
    made = []
    yield root, made
    for srv in made:
        finish(srv)
    shutil.rmtree(root, ignore_errors=True)


def make(var_root, users_mode=0o640, users_group=GUARD, start=True,
         **options):
    root, made = var_root
    opts = dict(user=WORKER, guard_user=GUARD)
    opts.update(options)
    srv = Server(root, submission=True, **opts)
    made.append(srv)
    os.rmdir(srv.spool)  # the master makes it, nobody's
    os.chown(srv.users_path, 0, grp.getgrnam(users_group).gr_gid)
    os.chmod(srv.users_path, users_mode)
    if start:
        srv.start()
    return srv


def test_workers_and_guard_run_as_two_accounts(var_root):
    srv = make(var_root)
    worker = pwd.getpwnam(WORKER).pw_uid
    guard = pwd.getpwnam(GUARD).pw_uid
    assert ids_of(srv.proc.pid)[0] == 0
    ids = {}

    def settled():
        # a worker drops right after fork: give it that moment
        ids.clear()
        ids.update({pid: ids_of(pid) for pid in children(srv.proc.pid)})
        # two workers and the queue process (it writes queue/ and
        # bounces into Maildirs: the workers' account), and the guard
        return len(ids) == 4 and sorted(ids.values()) == sorted(
            [(guard,) * 4] + [(worker,) * 4] * 3)

    assert wait_for(settled, 10), ids
    # The workers' account cannot read the users file; the guard's can.
    p = runuser(WORKER, "cat", srv.users_path)
    assert p.returncode != 0 and "Permission denied" in p.stderr, p
    p = runuser(GUARD, "cat", srv.users_path)
    assert p.returncode == 0 and ALICE in p.stdout, p
    log = srv.log()
    assert "users-file-readable" not in log, log
    assert re.search(r"accounts workers=nobody guard=daemon", log), log
    # AUTH and mail still work.
    c = srv.sub("587")
    assert c.cmd("AUTH PLAIN " + plain_b64(ALICE, ALICE_PW)).raw == AUTH_OK
    c.expect_cmd("MAIL FROM:<%s>" % ALICE, 250)
    c.expect_cmd("RCPT TO:<bob@local.test>", 250)
    c.expect_cmd("DATA", 354)
    c.send("From: %s\r\nSubject: accounts\r\n\r\nbody\r\n.\r\n" % ALICE)
    assert c.reply(30).code == 250
    c.close()
    new = srv.new_dir("bob")
    assert wait_for(lambda: len(os.listdir(new)) == 1, 10)
    st = os.stat(os.path.join(new, os.listdir(new)[0]))
    assert st.st_uid == worker, st


def test_users_file_readable_by_workers_is_warned_with_the_fix(var_root):
    srv = make(var_root, users_mode=0o644)
    log = srv.log()
    m = re.search(r"users-file-readable path=(\S+) account=nobody "
                  r"fix=\"chown root:daemon (\S+) && chmod 0640 (\S+)\"",
                  log)
    assert m, log
    assert m.group(1) == m.group(2) == m.group(3) == srv.users_path
    # a warning, not a refusal: AUTH works
    c = srv.sub("587")
    assert c.cmd("AUTH PLAIN " + plain_b64(ALICE, ALICE_PW)).raw == AUTH_OK
    c.close()


def test_users_file_the_guard_cannot_read_is_an_error(var_root):
    srv = make(var_root, users_mode=0o600, users_group="root")
    log = srv.log()
    assert re.search(r"users-file-unreadable path=%s account=daemon" %
                     re.escape(srv.users_path), log), log
    c = srv.sub("587")
    assert c.cmd("AUTH PLAIN " + plain_b64(ALICE, ALICE_PW)).raw == AUTH_TEMP
    c.close()


def test_one_account_for_both_is_warned(var_root):
    srv = make(var_root, guard_user=None, users_group="nogroup")
    assert re.search(r"accounts shared account=nobody reason=\"the guard "
                     r"runs as the workers' account: set guard-user",
                     srv.log()), srv.log()


def test_without_root_one_account_said_once(var_root):
    """The development case: started as nobody, every process is nobody,
    and the master says so once."""
    root, made = var_root
    srv = Server(root, submission=True, control_socket=os.path.join(
        root, "run", "control.sock"))
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(dirpath, name), 65534, 65534)
    os.chown(root, 65534, 65534)
    err = open(srv.stderr_path, "ab")
    proc = subprocess.Popen(
        ["runuser", "-u", WORKER, "--", postern_bin(), "serve", "-c",
         srv.conf, "-f"], stdin=subprocess.DEVNULL, stdout=err, stderr=err,
        cwd=root, start_new_session=True)
    srv.pgid = proc.pid
    try:
        assert wait_for(lambda: srv.log().count("listening") >= 4, 20), \
            srv.log()
        log = srv.log()
        assert log.count("accounts single account=nobody") == 1, log
        assert "users-file-readable" not in log
        # the one account may use the control socket
        p = runuser(WORKER, postern_bin(), "locks", "-c", srv.conf)
        assert p.returncode == 0 and "0 locks" in p.stdout, p
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        err.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and srv.group_pids():
        time.sleep(0.1)
    for mark in ("AddressSanitizer", "runtime error:"):
        assert mark not in srv.log()
