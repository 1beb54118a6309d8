"""Privileges (issue: "Started as root, workers drop to the configured
account after binding"): with `user nobody`, the master alone stays root;
workers and the guard run as nobody; the spool, the Maildirs and every
delivered file belong to nobody, and mail still flows."""

import os
import pwd
import shutil
import smtplib
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
    kids = children(srv.proc.pid)
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
