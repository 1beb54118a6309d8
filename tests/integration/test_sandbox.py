"""Sandboxes (issue 12 items 3 and 5, docs/security.md "Sandboxes"): each
worker and the guard run with no_new_privs, a seccomp filter whose
default action kills the process, and a Landlock rule set; a worker holds
no capability.

The compromised-worker test uses the test-only hook of the build-test
binary (meson -Dtest_hooks=true, src/daemon/sandbox_test.c): when the
file named by $POSTERN_TEST_ATTACK exists, each new worker forks one
child per attempt, the child installs the worker's own sandbox and makes
the attempt. Every attempt must fail, and the server must keep serving.
Needs root (CI runs as root): the server runs with `user nobody`."""

import os
import pwd
import re
import shutil
import signal
import smtplib
import socket

import pytest

from conftest import finish, postern_bin
from helpers import children, wait_for
from test_privileges import dropped_children, nobody_root, nobody_srv

ATTEMPTS = ("write-spool", "read-users", "control-stream", "control-dgram",
            "ptrace-guard", "kill-guard", "write-outside", "exec-shell",
            "connect-tcp", "mmap-exec")
# denied by seccomp: the child dies of SIGSYS
BY_SECCOMP = ("control-stream", "ptrace-guard", "kill-guard", "exec-shell",
              "connect-tcp", "mmap-exec")


def status_of(pid):
    """/proc/PID/status as a dict of its fields."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def guard_pid(srv):
    srv.wait_log(lambda t: re.search(r"guard started pid=", t), 30)
    m = re.findall(r"guard.*started pid=(\d+)", srv.log())
    assert m, srv.log()[-2000:]
    return int(m[-1])


def check_sandboxed(pid, uid):
    st = status_of(pid)
    assert st["Seccomp"] == "2", (pid, st["Seccomp"])
    assert st["NoNewPrivs"] == "1", (pid, st["NoNewPrivs"])
    assert [int(u) for u in st["Uid"].split()] == [uid] * 4, st["Uid"]
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0, st


@pytest.fixture
def sandbox_server(monkeypatch):
    root = nobody_root()
    attack = os.path.join(root, "attack")
    monkeypatch.setenv("POSTERN_TEST_ATTACK", attack)
    srv = nobody_srv(root, submission=True,
                     control_socket=os.path.join(root, "run", "ctl.sock"))
    nobody = pwd.getpwnam("nobody")
    # The guard (nobody, until the accounts split) reads the users file:
    # the worker, the same account, is kept from it by Landlock alone.
    os.chown(srv.users_path, nobody.pw_uid, nobody.pw_gid)
    os.chmod(srv.users_path, 0o600)
    srv.attack = attack
    try:
        srv.start()
        yield srv
    finally:
        finish(srv)
        shutil.rmtree(root, ignore_errors=True)


def test_compromised_worker(sandbox_server):
    srv = sandbox_server
    nobody = pwd.getpwnam("nobody")
    kids = dropped_children(srv, nobody.pw_uid)
    guard = guard_pid(srv)
    assert guard in kids, (guard, kids)
    # a directory nobody may write by its permissions: only the sandbox
    # keeps a worker out of it
    open_dir = os.path.join(srv.root, "open")
    os.mkdir(open_dir)
    os.chmod(open_dir, 0o777)
    outside = os.path.join(open_dir, "pwned")
    trap = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    trap.bind(("127.0.0.1", 0))
    trap.listen(8)
    trap.setblocking(False)
    with open(srv.attack, "w") as f:
        f.write("guard-pid %d\noutside %s\nport %d\n"
                % (guard, outside, trap.getsockname()[1]))
    start = len(srv.log())
    srv.signal(signal.SIGHUP)  # new workers: each runs the attempts
    assert srv.wait_log(lambda t: t.count("test-attack done") >= 2, 60,
                        start), srv.log()[start:][-4000:]
    os.unlink(srv.attack)
    log = srv.log()[start:]
    pids = [int(p) for p in re.findall(r"test-attack start pid=(\d+)", log)]
    assert len(pids) >= 2, log[-3000:]
    for name in ATTEMPTS:
        exits = re.findall(r"test-attack attempt=%s exit=(\S+)" % name, log)
        assert len(exits) >= 2, (name, log[-3000:])
        results = re.findall(r"test-attack attempt=%s result=(.*)" % name,
                             log)
        if name == "write-spool":  # the control: the spool is writable
            assert exits[:2] == ["status=0"] * 2, (name, exits)
            assert results[:2] == ["ALLOWED"] * 2, (name, results)
        elif name in BY_SECCOMP:
            assert exits[:2] == ["signal=SYS"] * 2, (name, exits, results)
            assert results == [], (name, results)
        else:
            assert exits[:2] == ["status=0"] * 2, (name, exits)
            assert len(results) >= 2, (name, results)
            for r in results:
                assert r.startswith("denied errno="), (name, r)
            if name in ("read-users", "write-outside"):
                assert all(r == "denied errno=EACCES" for r in results), \
                    (name, results)
    assert not os.path.exists(outside)
    with pytest.raises(BlockingIOError):
        trap.accept()  # nobody connected
    trap.close()
    # the guard is the same process, untraced; the server keeps serving
    assert guard_pid(srv) == guard and os.path.exists("/proc/%d" % guard)
    assert status_of(guard)["TracerPid"] == "0"
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("s@example.org", ["alice@local.test"],
                   b"Subject: after the attack\r\n\r\nbody\r\n")
    new = srv.new_dir()
    wait_for(lambda: len(os.listdir(new)) == 1, 10)
    assert len(os.listdir(new)) == 1
    # every worker and the guard: seccomp filter mode, no_new_privs,
    # the account's uids, no capability
    # (the workers are those that ran the attempts; the outbound queue
    # process has its own test: test_sandbox_queue.py)
    for pid in pids + [guard]:
        check_sandboxed(pid, nobody.pw_uid)
    assert "sandbox landlock=none" not in srv.log()


def test_violation_kills_and_master_restarts(sandbox_server):
    """A worker that makes a forbidden call dies of SIGSYS; the master
    logs signal=SYS and starts another (with its back-off), which
    serves."""
    srv = sandbox_server
    with open(srv.attack, "w") as f:
        f.write("violate\n")
    start = len(srv.log())
    srv.signal(signal.SIGHUP)
    assert srv.wait_log(lambda t: re.search(
        r"worker died pid=\d+ worker=\d+ signal=SYS", t), 30, start), \
        srv.log()[start:][-3000:]
    os.unlink(srv.attack)
    log = srv.log()[start:]
    assert "test-attack violate pid=" in log
    assert "violate result=ALLOWED" not in log
    # the listener queues the connection until a worker is back
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as s:
        s.sendmail("s@example.org", ["alice@local.test"],
                   b"Subject: after a restart\r\n\r\nbody\r\n")
    new = srv.new_dir()
    wait_for(lambda: len(os.listdir(new)) == 1, 10)
    assert len(os.listdir(new)) == 1


def test_sandbox_no_is_off(make_server):
    """`sandbox no` (debugging): no filter, a warning line."""
    srv = make_server(sandbox="no")
    wait_for(lambda: "sandbox off process=worker" in srv.log() and
             "sandbox off process=guard" in srv.log(), 10)
    assert "sandbox off process=guard" in srv.log()
    for pid in children(srv.proc.pid):
        assert status_of(pid)["Seccomp"] == "0", pid


def test_release_build_has_no_hook():
    """The hook is compiled only with -Dtest_hooks=true: a build without
    it (the release build, build/postern, when present) holds none of its
    strings; this build (build-test) holds them."""
    with open(postern_bin(), "rb") as f:
        data = f.read()
        assert b"test-attack" in data
        assert b"POSTERN_TEST_QUEUE_ATTACK" in data  # the queue's hook
    release = os.path.join(os.path.dirname(os.path.dirname(postern_bin())),
                           "build", "postern")
    if os.access(release, os.X_OK):
        with open(release, "rb") as f:
            data = f.read()
        assert b"test-attack" not in data
        assert b"POSTERN_TEST_ATTACK" not in data
        assert b"POSTERN_TEST_QUEUE_ATTACK" not in data
