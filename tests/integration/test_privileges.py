"""Privileges (issue: "Started as root, workers drop to the configured
account after binding"): with `user nobody`, the master alone stays root;
workers and the guard run as nobody; the spool, the Maildirs and every
delivered file belong to nobody, and mail still flows."""

import grp
import os
import pwd
import shutil
import signal
import smtplib
import subprocess
import tempfile

import pytest

from conftest import Server, finish, postern_bin
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


def nobody_root():
    """A directory for a server run as root with `user nobody`: in
    /var/tmp, not pytest's 0700 tmp, so that nobody reaches what is in
    it."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root (make test runs as root)")
    root = tempfile.mkdtemp(prefix="postern-priv-", dir="/var/tmp")
    os.chmod(root, 0o755)
    return root


def nobody_srv(root, **options):
    """A Server with `user nobody`. conftest makes the spool (as root);
    the master is to make it, so that it is nobody's (it refuses a spool
    that belongs to another account: docs/config.md)."""
    srv = Server(root, user="nobody", **options)
    os.rmdir(srv.spool)
    return srv


@pytest.fixture
def nobody_server():
    root = nobody_root()
    srv = nobody_srv(root)
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
    root = nobody_root()
    srv = nobody_srv(root)
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


def as_nobody(code):
    """Run Python `code` as nobody (what the worker account can do)."""
    nobody = pwd.getpwnam("nobody")

    def drop():
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    p = subprocess.run(["/usr/bin/python3", "-c", code], preexec_fn=drop,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout


def serve_fails(srv):
    """`postern serve` on srv's configuration must refuse to start; its
    log."""
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1")
    p = subprocess.run([postern_bin(), "serve", "-c", srv.conf, "-f"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60,
                       cwd=srv.root, env=env)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "Sanitizer" not in p.stderr, p.stderr
    return p.stderr


def test_root_never_follows_a_link_the_account_planted():
    """Issue 6 item 2: nobody owns var/ and var/spool (the master made
    them) and each Maildir. It swaps the spool for a link to a root-owned
    file and a Maildir's new/ for a link to a root-owned directory; on
    SIGHUP and on a restart, the master follows neither (each is an error
    naming its path) and both keep their owner and mode."""
    root = nobody_root()
    srv = nobody_srv(root)
    srv.spool = os.path.join(root, "var", "spool")
    srv.options["spool"] = srv.spool
    srv.write_config()
    shadow = os.path.join(root, "shadow")  # a root file, like /etc/shadow
    with open(shadow, "w") as f:
        f.write("root:secret\n")
    os.chmod(shadow, 0o640)
    etc = os.path.join(root, "etc")  # a root directory, like /etc
    os.mkdir(etc, 0o755)
    nobody = pwd.getpwnam("nobody")
    try:
        srv.start()
        assert os.stat(os.path.dirname(srv.spool)).st_uid == nobody.pw_uid
        assert os.stat(srv.maildir()).st_uid == nobody.pw_uid
        new = srv.new_dir()
        as_nobody("import os\n"
                  "os.rename(%r, %r)\nos.symlink(%r, %r)\n"
                  "os.rename(%r, %r)\nos.symlink(%r, %r)\n"
                  % (srv.spool, srv.spool + ".old", shadow, srv.spool,
                     new, new + ".old", etc, new))
        start = len(srv.log())
        srv.signal(signal.SIGHUP)
        assert srv.wait_log(lambda t: "reload refused" in t, 20, start), \
            srv.log()[start:]
        for path, mode in ((shadow, 0o100640), (etc, 0o40755)):
            st = os.stat(path)
            assert (st.st_uid, st.st_gid, st.st_mode) == (0, 0, mode), path
        text = srv.log()[start:]
        assert 'spool dir="%s" error="a symbolic link' % srv.spool in text, \
            text
        assert srv.stop() == 0
        # a restart refuses the spool, then (spool put back) the Maildir
        text = serve_fails(srv)
        assert 'spool dir="%s" error="a symbolic link' % srv.spool in text
        os.unlink(srv.spool)
        os.rename(srv.spool + ".old", srv.spool)
        text = serve_fails(srv)
        assert 'maildir dir="%s" error="a symbolic link' % new in text, text
        for path, mode in ((shadow, 0o100640), (etc, 0o40755)):
            st = os.stat(path)
            assert (st.st_uid, st.st_gid, st.st_mode) == (0, 0, mode), path
        assert os.listdir(etc) == []
    finally:
        finish(srv)
        shutil.rmtree(root, ignore_errors=True)


def test_spool_of_another_account_refused():
    """The master no longer gives an existing spool to the worker account
    (it could be anything the account put there): one that belongs to
    another account is refused, with what to do."""
    root = nobody_root()
    try:
        srv = Server(root, user="nobody")  # conftest made the spool: root's
        text = serve_fails(srv)
        assert ('spool dir="%s" error="belongs to uid 0, not to nobody: '
                'chown it, or remove it and postern makes it"' % srv.spool
                in text), text
        assert os.stat(srv.spool).st_uid == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)
