"""The queue process's sandbox (docs/security.md "Sandboxes"): seccomp,
no_new_privs and Landlock limited to queue/, quarantine/, the Maildir
root, the files it reads and TCP connect to the SMTP, HTTPS, DNS and
configured ports.

The compromised-queue test uses the test-only hook of the build-test
binary (src/outbound/queue_sandbox.c): when the file named by
$POSTERN_TEST_QUEUE_ATTACK exists, a new queue process forks one child
per attempt, the child installs the queue's own sandbox and makes the
attempt. Needs root (the server runs with `user nobody`)."""

import ctypes
import os
import pwd
import re
import shutil
import signal
import socket

import pytest

from conftest import ALICE, ALICE_PW, finish
from helpers import wait_for
from test_privileges import nobody_root, nobody_srv
from test_sandbox import status_of

BY_SECCOMP = ("unix-stream", "kill-master", "ptrace-master", "mmap-exec",
              "exec-shell")
BY_LANDLOCK = ("write-outside", "write-spool", "read-users")
BY_LANDLOCK_NET = ("connect-other", "bind-tcp")  # Landlock ABI 4+
ALLOWED = ("write-queue", "connect-smtp")


def landlock_abi():
    libc = ctypes.CDLL(None, use_errno=True)
    abi = libc.syscall(444, None, 0, 1)  # LANDLOCK_CREATE_RULESET_VERSION
    return max(abi, 0)


def queue_pid(srv):
    state = os.path.join(srv.spool, "queue", "state")
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == state:
                    return pid
        except OSError:
            continue
    return None


@pytest.fixture
def queue_server(monkeypatch):
    root = nobody_root()
    attack = os.path.join(root, "attack")
    monkeypatch.setenv("POSTERN_TEST_QUEUE_ATTACK", attack)
    # The allowed SMTP port: a transport's; the other one is not.
    smtp = socket.socket()
    smtp.bind(("127.0.0.1", 0))
    smtp.listen(8)
    smtp.setblocking(False)
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen(8)
    other.setblocking(False)
    srv = nobody_srv(root, submission=True, outbound_delivery="yes",
                     control_socket=os.path.join(root, "run", "ctl.sock"))
    srv.extra_lines.append("transport live.test [127.0.0.1]:%d"
                           % smtp.getsockname()[1])
    srv.write_config()
    # The guard (nobody) reads the users file: the queue process, the
    # same account, is kept from it by Landlock alone.
    nobody = pwd.getpwnam("nobody")
    os.chown(srv.users_path, nobody.pw_uid, nobody.pw_gid)
    os.chmod(srv.users_path, 0o600)
    srv.attack = attack
    srv.smtp, srv.other = smtp, other
    try:
        srv.start()
        yield srv
    finally:
        finish(srv)
        smtp.close()
        other.close()
        shutil.rmtree(root, ignore_errors=True)


def test_compromised_queue(queue_server):
    srv = queue_server
    open_dir = os.path.join(srv.root, "open")
    os.mkdir(open_dir)
    os.chmod(open_dir, 0o777)
    outside = os.path.join(open_dir, "pwned")
    with open(srv.attack, "w") as f:
        f.write("outside %s\nport %d\nsmtp-port %d\n" % (
            outside, srv.other.getsockname()[1],
            srv.smtp.getsockname()[1]))
    start = len(srv.log())
    srv.signal(signal.SIGHUP)  # a new queue process runs the attempts
    assert srv.wait_log(lambda t: "test-attack done process=queue" in t,
                        60, start), srv.log()[start:][-4000:]
    # "done" comes before the process sandboxes itself; "queue started"
    # after it, and only then is its own status checked below.
    assert srv.wait_log(lambda t: re.search(
        r"test-attack done process=queue.*queue started", t, re.S),
        60, start), srv.log()[start:][-4000:]
    os.unlink(srv.attack)
    log = srv.log()[start:]
    net = landlock_abi() >= 4
    for name in ALLOWED + BY_SECCOMP + BY_LANDLOCK + BY_LANDLOCK_NET:
        exits = re.findall(r"test-attack attempt=%s exit=(\S+)" % name, log)
        results = re.findall(r"test-attack attempt=%s result=(.*)" % name,
                             log)
        assert len(exits) == 1, (name, log[-3000:])
        if name in BY_SECCOMP:
            assert exits == ["signal=SYS"], (name, exits, results)
            assert results == [], (name, results)
            continue
        assert exits == ["status=0"], (name, exits)
        if name in ALLOWED or (name in BY_LANDLOCK_NET and not net):
            assert results == ["ALLOWED"], (name, results)
        else:
            assert results == ["denied errno=EACCES"], (name, results)
    assert not os.path.exists(outside)
    assert not os.path.exists(os.path.join(srv.spool, "test-attack"))
    with pytest.raises(BlockingIOError):
        srv.other.accept()  # nobody connected there
    # The queue process itself: filter mode, no_new_privs, nobody.
    pid = queue_pid(srv)
    assert pid is not None
    st = status_of(pid)
    assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1", st
    assert "sandbox landlock=none" not in srv.log()


def test_queue_violation_kills_and_master_restarts(queue_server):
    """A queue process that makes a forbidden call dies of SIGSYS; the
    master logs signal=SYS and starts another, which delivers."""
    srv = queue_server
    with open(srv.attack, "w") as f:
        f.write("violate\n")
    start = len(srv.log())
    srv.signal(signal.SIGHUP)
    assert srv.wait_log(lambda t: re.search(
        r"queue died pid=\d+.* signal=SYS", t), 30, start), \
        srv.log()[start:][-3000:]
    os.unlink(srv.attack)
    log = srv.log()[start:]
    assert "test-attack violate process=queue" in log
    assert "violate result=ALLOWED" not in log
    # The next queue process (after the back-off) takes mail and tries
    # it: the transport's listener sees the connection.
    restarted = len(srv.log())
    assert srv.wait_log(lambda t: "queue loaded" in t, 30, restarted), \
        srv.log()[restarted:][-3000:]
    with srv.smtp_sub(login=(ALICE, ALICE_PW)) as s:
        s.sendmail(ALICE, ["bob@live.test"],
                   b"From: alice@local.test\r\nSubject: x\r\n\r\nhi\r\n")

    def connected():
        try:
            c, _ = srv.smtp.accept()
            c.close()
            return True
        except BlockingIOError:
            return False
    assert wait_for(connected, 30), srv.log()[-3000:]
