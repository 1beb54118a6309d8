"""The control socket answers only root and the admin group (issue 12
item 2, docs/security.md): it lives in a directory the master makes
(root:admin-group, 0750, never through a symbolic link) that no worker
can write; the socket is 0660 with the admin group; and the guard checks
every peer with SO_PEERCRED / SO_PEERGROUPS, answering anyone else with
one refusal line and logging it. Both layers are tested apart: the
directory's mode first, then (the modes opened up by the test) the
peer check alone.

Needs root (CI runs as root); the servers live under /var/tmp so that
nobody can reach their directories."""

import grp
import os
import pwd
import re
import shutil
import stat
import tempfile

import pytest

from conftest import Server, finish, postern_bin
from helpers import wait_for

ADMIN = "adm"  # a group every Debian system has; nobody is not in it


def runuser(args, *argv):
    import subprocess
    return subprocess.run(["runuser"] + list(args) + ["--"] + list(argv),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=60)


@pytest.fixture
def ctl_server():
    if os.geteuid() != 0:
        pytest.fail("this test needs root (CI runs as root)")
    root = tempfile.mkdtemp(prefix="postern-ctl-", dir="/var/tmp")
    os.chmod(root, 0o755)
    made = []

    def make(start=True, **options):
        opts = dict(user="nobody", guard_user="daemon", admin_group=ADMIN,
                    control_socket=os.path.join(root, "run", "ctl.sock"))
        opts.update(options)
        srv = Server(root, **opts)
        made.append(srv)
        os.rmdir(srv.spool)  # the master makes it, nobody's
        if start:
            srv.start()
            # The guard makes the socket after the master's listeners are
            # up (what start() waits for): wait for it too, bounded.
            assert wait_for(lambda: os.path.exists(opts["control_socket"]),
                            30), srv.log()[-3000:]
        return srv

    yield make
    for srv in made:
        finish(srv)
    shutil.rmtree(root, ignore_errors=True)


def locks_as(srv, *runuser_args):
    return runuser(runuser_args, postern_bin(), "locks", "-c", srv.conf)


def test_directory_and_socket_modes(ctl_server):
    srv = ctl_server()
    sock = srv.options["control-socket"]
    d = os.lstat(os.path.dirname(sock))
    s = os.lstat(sock)
    adm = grp.getgrnam(ADMIN).gr_gid
    assert stat.S_ISDIR(d.st_mode) and stat.S_IMODE(d.st_mode) == 0o750
    assert (d.st_uid, d.st_gid) == (0, adm), d
    assert stat.S_ISSOCK(s.st_mode) and stat.S_IMODE(s.st_mode) == 0o660
    assert s.st_gid == adm, s


def test_root_and_admin_group_are_answered(ctl_server):
    srv = ctl_server()
    p = srv.cli("locks")
    assert p.returncode == 0 and p.stdout.startswith("0 locks"), p
    p = srv.cli("unlock", "192.0.2.1")  # answered: nothing to unlock
    assert p.returncode == 1 and "no lock" in p.stdout, p
    # nobody with adm as a supplementary group (SO_PEERGROUPS) ...
    p = locks_as(srv, "-u", "nobody", "-G", ADMIN)
    assert p.returncode == 0 and p.stdout.startswith("0 locks"), p
    # ... or as its primary group
    p = locks_as(srv, "-u", "nobody", "-g", ADMIN)
    assert p.returncode == 0 and p.stdout.startswith("0 locks"), p
    assert "control-refused" not in srv.log()


def test_workers_account_stopped_by_the_directory(ctl_server):
    srv = ctl_server()
    p = locks_as(srv, "-u", "nobody")
    assert p.returncode == 1, p
    assert "cannot reach the guard" in p.stdout + p.stderr, p
    assert "Permission denied" in p.stdout + p.stderr, p


def test_workers_account_refused_by_the_peer_check(ctl_server):
    """With the directory and socket opened to all (by the test, after
    start), the guard's own check still refuses nobody."""
    srv = ctl_server()
    sock = srv.options["control-socket"]
    os.chmod(os.path.dirname(sock), 0o777)
    os.chmod(sock, 0o666)
    try:
        p = locks_as(srv, "-u", "nobody")
    finally:
        os.chmod(sock, 0o660)
        os.chmod(os.path.dirname(sock), 0o750)
    assert p.returncode == 1, p
    out = p.stdout + p.stderr
    assert "permission denied: root and group adm only" in out, p
    assert "0 locks" not in out
    assert wait_for(lambda: re.search(
        r"guard control-refused uid=65534 gid=65534 pid=\d+", srv.log()),
        5), srv.log()
    # root is still answered
    assert srv.cli("locks").returncode == 0


def test_without_admin_group_root_only(ctl_server):
    srv = ctl_server(admin_group=None)
    sock = srv.options["control-socket"]
    d = os.lstat(os.path.dirname(sock))
    assert stat.S_IMODE(d.st_mode) == 0o750 and d.st_gid == 0, d
    assert stat.S_IMODE(os.lstat(sock).st_mode) == 0o600
    assert srv.cli("locks").returncode == 0
    os.chmod(os.path.dirname(sock), 0o777)
    os.chmod(sock, 0o666)
    try:
        p = locks_as(srv, "-u", "nobody", "-G", ADMIN)
    finally:
        os.chmod(sock, 0o600)
        os.chmod(os.path.dirname(sock), 0o750)
    assert p.returncode == 1 and "permission denied: root only" in p.stdout, p


@pytest.mark.parametrize("kind", ["writable", "workers", "symlink"])
def test_unsafe_directory_refused_at_start(ctl_server, kind):
    srv = ctl_server(start=False)
    d = os.path.dirname(srv.options["control-socket"])
    if kind == "writable":
        os.mkdir(d)
        os.chmod(d, 0o777)
    elif kind == "workers":
        os.mkdir(d)
        os.chmod(d, 0o755)
        os.chown(d, pwd.getpwnam("nobody").pw_uid, 0)
    else:
        os.mkdir(d + ".real", 0o750)
        os.symlink(d + ".real", d)
    import subprocess
    p = subprocess.run([postern_bin(), "serve", "-c", srv.conf, "-f"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60, cwd=srv.root)
    assert p.returncode != 0, p
    assert re.search(r"control-socket (dir|path)=%s" % re.escape(d),
                     p.stderr), p.stderr
    assert not os.path.exists(srv.options["control-socket"])


def test_workers_in_the_admin_group_are_warned(ctl_server):
    """nobody's primary group is nogroup: as admin-group, the workers
    would pass the peer check, and the master says so."""
    srv = ctl_server(admin_group="nogroup")
    assert re.search(r"admin-group-has-workers account=nobody "
                     r"group=nogroup reason=\"the workers may use the "
                     r"control socket", srv.log()), srv.log()
