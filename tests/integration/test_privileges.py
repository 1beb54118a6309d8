"""Privileges (issue: "Started as root, workers drop to the configured
account after binding"): with `user nobody`, the master alone stays root;
workers and the guard run as nobody; the spool, the Maildirs and every
delivered file belong to nobody, and mail still flows."""

import grp
import os
import pwd
import shutil
import smtplib
import subprocess
import tempfile

import pytest

from conftest import Server, finish
from helpers import children, wait_for


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])  # real uid
    return None


def dropped_children(srv, uid, timeout=10.0):
    """The master's children once each has left root (the master says
    "listening" right after forking them, before they drop)."""
    def all_dropped():
        kids = children(srv.proc.pid)
        try:
            return len(kids) >= 3 and all(uid_of(p) == uid for p in kids)
        except OSError:  # one just exited
            return False

    wait_for(all_dropped, timeout)
    return children(srv.proc.pid)


@pytest.fixture
def nobody_server():
    if os.geteuid() != 0:
        pytest.fail("this test needs root (make test runs as root)")
    # /var/tmp, not pytest's 0700 tmp: nobody must reach its directories
    root = tempfile.mkdtemp(prefix="postern-priv-", dir="/var/tmp")
    os.chmod(root, 0o755)
    srv = Server(root, user="nobody")
    try:
        srv.start()
        yield srv
    finally:
        finish(srv)
        shutil.rmtree(root, ignore_errors=True)


def test_workers_drop_to_the_configured_account(nobody_server):
    srv = nobody_server
    nobody = pwd.getpwnam("nobody")
    assert uid_of(srv.proc.pid) == 0
    kids = dropped_children(srv, nobody.pw_uid)
    assert len(kids) >= 3, kids  # two workers and the guard
    for pid in kids:
        assert uid_of(pid) == nobody.pw_uid, (pid, uid_of(pid))
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("s@example.org", ["alice@local.test"],
                   b"Subject: privileges\r\n\r\nbody\r\n")
    new = srv.new_dir()
    wait_for(lambda: len(os.listdir(new)) == 1, 10)
    path = os.path.join(new, os.listdir(new)[0])
    st = os.stat(path)
    assert st.st_uid == nobody.pw_uid, st
    assert st.st_mode & 0o077 == 0, oct(st.st_mode)  # 0600
    assert os.stat(srv.spool).st_uid == nobody.pw_uid
    assert os.stat(srv.maildir()).st_uid == nobody.pw_uid


def groups_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Groups:"):
                return sorted(int(g) for g in line.split()[1:])
    return None


@pytest.fixture
def nobody_group():
    """A group of its own with nobody in it (removed afterwards): the
    setup docs/users.md recommends to share the users file with Dovecot."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root (make test runs as root)")
    name = "postern-t%d" % os.getpid()
    subprocess.run(["groupadd", name], check=True, timeout=60)
    try:
        subprocess.run(["gpasswd", "-a", "nobody", name], check=True,
                       timeout=60, stdout=subprocess.DEVNULL)
        yield grp.getgrnam(name).gr_gid
    finally:
        subprocess.run(["groupdel", name], timeout=60)


def test_workers_and_guard_keep_the_accounts_groups(nobody_group):
    """Issue 6 item 6: the workers and the guard carry the supplementary
    groups of the account (initgroups), not none."""
    nobody = pwd.getpwnam("nobody")
    want = sorted(set(os.getgrouplist("nobody", nobody.pw_gid)))
    assert nobody_group in want, want
    root = tempfile.mkdtemp(prefix="postern-priv-", dir="/var/tmp")
    os.chmod(root, 0o755)
    srv = Server(root, user="nobody")
    try:
        srv.start()
        kids = dropped_children(srv, nobody.pw_uid)
        assert len(kids) >= 3, kids  # two workers and the guard
        for pid in kids:
            assert uid_of(pid) == nobody.pw_uid, pid
            assert groups_of(pid) == want, (pid, groups_of(pid), want)
        # the master stays root with its own groups
        assert uid_of(srv.proc.pid) == 0
    finally:
        finish(srv)
        shutil.rmtree(root, ignore_errors=True)
