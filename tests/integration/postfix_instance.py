"""A private Postfix instance for the tests: its own config, queue and data
directories under /var/tmp (Postfix's unprivileged daemons must reach
them), the services a subclass lists, started with `postfix -c` and
stopped at teardown (the caller checks the master is gone).

A subclass gives main_cf() (a dict) and services() (master.cf rows) and
may extend setup(). Every wait is bounded in time.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

POSTFIX = "/usr/sbin/postfix"
START_TIMEOUT = 30.0

# The services every instance needs besides its smtpd ones (master.cf).
BASE_SERVICES = [
    ("pickup", "unix", "n", "-", "n", "60", "1", "pickup"),
    ("cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"),
    ("qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"),
    ("tlsmgr", "unix", "-", "-", "n", "1000?", "1", "tlsmgr"),
    ("rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"),
    ("bounce", "unix", "-", "-", "n", "-", "0", "bounce"),
    ("defer", "unix", "-", "-", "n", "-", "0", "bounce"),
    ("trace", "unix", "-", "-", "n", "-", "0", "bounce"),
    ("verify", "unix", "-", "-", "n", "-", "1", "verify"),
    ("flush", "unix", "n", "-", "n", "1000?", "0", "flush"),
    ("proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"),
    ("error", "unix", "-", "-", "n", "-", "-", "error"),
    ("retry", "unix", "-", "-", "n", "-", "-", "error"),
    ("discard", "unix", "-", "-", "n", "-", "-", "discard"),
    ("virtual", "unix", "-", "n", "n", "-", "-", "virtual"),
    ("anvil", "unix", "-", "-", "n", "-", "1", "anvil"),
    ("scache", "unix", "-", "-", "n", "-", "1", "scache"),
    ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"),
]


def greets(host, port, timeout=1.0):
    try:
        with socket.create_connection((host, port), timeout) as s:
            s.settimeout(timeout)
            return s.recv(512).startswith(b"220 ")
    except OSError:
        return False


def self_signed(cert, key, host):
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", key, "-out", cert, "-days", "90",
         "-subj", "/CN=" + host, "-addext", "subjectAltName=DNS:" + host],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        timeout=60)


class PostfixInstance:
    """A private Postfix; `host`:`port` is where start() waits for the
    greeting."""

    prefix = "postern-pf-"

    def __init__(self, host="127.0.0.1", port=25):
        self.base = tempfile.mkdtemp(prefix=self.prefix, dir="/var/tmp")
        os.chmod(self.base, 0o755)
        self.conf = os.path.join(self.base, "conf")
        self.queue = os.path.join(self.base, "queue")
        self.data = os.path.join(self.base, "data")
        self.cert = os.path.join(self.base, "cert.pem")
        self.key = os.path.join(self.base, "key.pem")
        self.maillog = os.path.join(self.base, "maillog")
        self.host, self.port = host, port
        self.started = False

    def main_cf(self):
        """The settings every instance shares; a subclass adds its own."""
        return {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.base,
        }

    def services(self):
        return []

    def run(self, *args, check=True):
        r = subprocess.run([POSTFIX, "-c", self.conf] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        if check and r.returncode != 0:
            pytest.fail("postfix %s failed: %s\n%s" % (
                " ".join(args), r.stdout.decode(errors="replace"),
                self.log_tail()))
        return r

    def log(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self):
        return self.log()[-3000:] or "(no maillog)"

    def setup(self):
        for d in (self.conf, self.queue, self.data):
            os.makedirs(d, exist_ok=True)
        os.chown(self.data, pwd.getpwnam("postfix").pw_uid, -1)
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            for k, v in self.main_cf().items():
                f.write("%s = %s\n" % (k, v))
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            for s in self.services() + BASE_SERVICES:
                f.write("%-18s %-10s %-2s %-2s %-2s %-6s %-3s %s\n" % s)

    def start(self):
        self.run("check", check=False)  # makes the queue directories
        self.run("start")
        self.started = True
        deadline = time.monotonic() + START_TIMEOUT
        while not greets(self.host, self.port):
            if time.monotonic() > deadline:
                pytest.fail("Postfix does not answer on %s:%d:\n%s"
                            % (self.host, self.port, self.log_tail()))
            time.sleep(0.2)

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                pid = int(f.read().split()[0])
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError, IndexError):
            return None

    def stop(self):
        """postfix stop; postfix abort and SIGKILL if that is not
        enough. Returns True when the master is gone."""
        if not self.started:
            return True
        self.run("stop", check=False)
        for _ in range(200):
            if self.master_pid() is None:
                break
            time.sleep(0.1)
        else:
            self.run("abort", check=False)
            pid = self.master_pid()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
            time.sleep(1)
        return self.master_pid() is None

    def cleanup(self):
        shutil.rmtree(self.base, ignore_errors=True)


def need_postfix():
    if os.geteuid() != 0:
        pytest.fail("this test needs root (make test runs as root)")
    if not os.access(POSTFIX, os.X_OK):
        pytest.fail("postfix is not installed (make deps)")


def running(pf):
    """For a module fixture: `yield from running(Instance())` sets the
    instance up, starts it, yields it and stops and removes it after,
    failing the teardown if its master is still there."""
    try:
        pf.setup()
        pf.start()
        yield pf
    finally:
        gone = pf.stop()
        pf.cleanup()
        assert gone, "the Postfix master did not stop"
