"""Fixtures for the postern integration tests: a real server (the ASan and
UBSan build named by $POSTERN_BIN) on loopback ports, in a temporary
directory of its own.

`server` is one default server per test module; `make_server(**options)`
starts a server with extra or changed directives for one test. Both stop
the server with SIGTERM at teardown and fail the test when it did not exit
0 or when its stderr holds a sanitizer report.

`sub_server` (and `make_server(submission=True, ...)`) adds submission
listeners on free ports standing for 587 and 2525 and a submissions one
for 465 (`server.sub_port("587")`), a users file made with `postern user
add --stdin` (alice@local.test, password "pass", alias sales@local.test;
bob@local.test), a self-signed certificate made by the server
(`tls-self-signed yes`), `auth-failure-delay 0` and lockout thresholds
high enough for tests that share a server. A directive given as None
falls back to the server's default. `server.sub(kind, ...)` opens a
RawClient at THREATS.md's [587], [587T], [465] or [SUB] stage.
"""

import os
import signal
import smtplib
import subprocess
import time

import pytest

from helpers import (RawClient, argon2id_hash, children, free_port,
                     list_dir, parse_envelope, read_file, tls_context,
                     wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
POSTERN_BIN = os.environ.get("POSTERN_BIN",
                             os.path.join(REPO, "build-test", "postern"))

HOSTNAME = "mx.local.test"

# The submission fixture's accounts (THREATS.md section 1): alice with the
# password "pass" and the alias sales@local.test, and bob.
ALICE = "alice@local.test"
ALICE_PW = "pass"
ALICE_ALIAS = "sales@local.test"
BOB = "bob@local.test"
BOB_PW = "b0b-S3cret-9xQ"
# `postern user` wants 8 characters at least; alice is added with this one
# and then given the hash of "pass" (the THREATS vectors use it).
ALICE_CLI_PW = "alice-initial-pw"
# users file content made once per test run with the CLI (see make_users)
_USERS_CACHE = {}
SANITIZER_MARKS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")
START_TIMEOUT = 10.0


def postern_bin():
    if not os.access(POSTERN_BIN, os.X_OK):
        pytest.fail("postern binary not found at %s (run `make unit`)"
                    % POSTERN_BIN)
    return POSTERN_BIN


class Server:
    """One postern process tree, its configuration and its directories."""

    def __init__(self, root, **options):
        self.root = str(root)
        self.port = options.pop("port", None) or free_port()
        # submission=True adds listeners for 587, 2525 (role submission)
        # and 465 (submissions) on free ports, a users file made with
        # `postern user`, and a self-signed certificate made by the server
        self.submission = options.pop("submission", False)
        # builtin=True runs `postern serve -f` without -c (the built-in
        # development configuration), in self.root
        self.builtin = options.pop("builtin", False)
        # extra ASAN_OPTIONS, e.g. a small quarantine for memory tests
        self.asan_extra = options.pop("asan_extra", "")
        self.spool = os.path.join(self.root, "spool")
        self.mailroot = os.path.join(self.root, "mail")
        self.conf = os.path.join(self.root, "postern.conf")
        self.stderr_path = os.path.join(self.root, "server.stderr")
        self.stdout_path = os.path.join(self.root, "server.stdout")
        self.mailboxes = ["alice@local.test", "bob@local.test"]
        self.options = {
            "hostname": HOSTNAME,
            "domains": "local.test",
            "spool": self.spool,
            "maildir": os.path.join(self.mailroot, "%d", "%n", "Maildir"),
            "workers": "2",
            "max-message-size": "10M",
            "timeout-shutdown": "5s",
            # the load tests come from one address; the limits have
            # tests of their own (test_submission.py)
            "conn-rate-per-address": "0",
            "conn-limit-per-address": "0",
            "control-socket": os.path.join(self.root, "control.sock"),
            # remote mail stays queued, untried (these tests look at the
            # queue entries); test_outbound*.py turn delivery on, with a
            # DNS server of their own. The resolver stays on this machine
            # anyway.
            "outbound-delivery": "no",
            "dns-resolver": "127.0.0.1:1",
        }
        if "mailbox" in options:
            self.mailboxes = options.pop("mailbox").split()
        self.listen = ["127.0.0.1:%d mx" % self.port,
                       "[::1]:%d mx" % self.port]
        self.sub_ports = {}
        self.users_path = os.path.join(self.root, "users")
        self.cert = os.path.join(self.root, "cert.pem")
        self.key = os.path.join(self.root, "key.pem")
        if self.submission:
            self.options.update({
                "users": "users",
                "tls-certificate": "cert.pem key.pem",
                "tls-self-signed": "yes",
                # fast answers; one test keeps the 1 s default
                "auth-failure-delay": "0",
                # tests share a server and all come from 127.0.0.x: the
                # lockout tests set their own thresholds
                "auth-account-failures": "1000",
                "auth-address-failures": "10000",
                # alice sends a lot in shared servers: the send limits
                # and the volume alarm are off; test_sendlimit.py sets
                # its own (docs/sendlimit.md)
                "send-limit-hour": "0",
                "send-limit-day": "0",
                "new-recipients-day": "0",
                "burst-floor": "1000000",
            })
            used = {self.port}
            for name in ("587", "2525", "465"):
                for _ in range(20):
                    p = free_port()
                    if p not in used:
                        break
                used.add(p)
                self.sub_ports[name] = p
            self.listen += [
                "127.0.0.1:%d submission" % self.sub_ports["587"],
                "[::1]:%d submission" % self.sub_ports["587"],
                "127.0.0.1:%d submission" % self.sub_ports["2525"],
                "127.0.0.1:%d submissions" % self.sub_ports["465"],
            ]
        for k, v in options.items():
            k = k.replace("_", "-")
            if v is None:
                self.options.pop(k, None)  # back to the server's default
            else:
                self.options[k] = str(v)
        self.extra_lines = []
        self.proc = None
        self.pgid = None
        self.returncodes = []
        os.makedirs(self.spool, exist_ok=True)
        os.makedirs(self.mailroot, exist_ok=True)
        self.write_config()
        if self.submission and not os.path.exists(self.users_path):
            self.make_users()

    # -- configuration ---------------------------------------------------
    def config_text(self):
        lines = ["# written by tests/integration/conftest.py"]
        for k, v in self.options.items():
            lines.append("%s %s" % (k, v))
        lines.append("mailbox " + " ".join(self.mailboxes))
        for listen in self.listen:
            lines.append("listen " + listen)
        lines.extend(self.extra_lines)
        return "\n".join(lines) + "\n"

    def write_config(self, text=None):
        with open(self.conf, "w") as f:
            f.write(self.config_text() if text is None else text)

    @property
    def timeout_shutdown(self):
        v = self.options.get("timeout-shutdown", "5s")
        return int(v.rstrip("smh")) * {"s": 1, "m": 60, "h": 3600}.get(
            v[-1], 1)

    # -- process ---------------------------------------------------------
    def log(self):
        """Everything the server wrote to stderr so far (all runs)."""
        try:
            return read_file(self.stderr_path).decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stdout(self):
        try:
            return read_file(self.stdout_path).decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pred, timeout=5.0, start=0):
        """Wait until pred(log text from offset `start`) is true."""
        return wait_for(lambda: pred(self.log()[start:]), timeout)

    def start(self):
        assert self.proc is None or self.proc.poll() is not None
        out_start = len(self.log()) + len(self.stdout())
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        if self.asan_extra:
            env["ASAN_OPTIONS"] += ":" + self.asan_extra
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        argv = [postern_bin(), "serve", "-c", self.conf, "-f"]
        if self.builtin:
            argv = [postern_bin(), "serve", "-f"]
        with open(self.stderr_path, "ab") as err, \
                open(self.stdout_path, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                cwd=self.root, start_new_session=True, env=env)
        self.pgid = self.proc.pid
        self.wait_ready(out_start)
        return self

    def wait_ready(self, out_start):
        """Bounded wait for one "listening" line per listener, or failing
        that, for the port to accept connections."""
        deadline = time.monotonic() + START_TIMEOUT
        probe_after = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("postern exited with %s at start:\n%s"
                            % (self.proc.returncode, self.log()[-3000:]))
            text = (self.log() + self.stdout())[out_start:]
            if text.count("listening") >= len(self.listen):
                return
            if time.monotonic() > probe_after and self._accepts():
                return
            time.sleep(0.05)
        pytest.fail("postern did not start listening within %ss:\n%s"
                    % (START_TIMEOUT, self.log()[-3000:]))

    def _accepts(self):
        import socket
        try:
            s = socket.create_connection(("127.0.0.1", self.port), 0.5)
            s.close()
            return True
        except OSError:
            return False

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def workers(self):
        return children(self.proc.pid)

    def group_pids(self):
        out = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % name) as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if fields[0] != "Z" and int(fields[2]) == self.pgid:
                out.append(int(name))
        return out

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self, timeout=None):
        """SIGTERM the master; wait for it and its children to exit.
        Returns the exit status."""
        if not self.running():
            return self.proc.returncode if self.proc else None
        if timeout is None:
            timeout = self.timeout_shutdown + 10
        self.signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            pytest.fail("postern did not exit within %ss of SIGTERM"
                        % timeout)
        left = wait_for(lambda: not self.group_pids(), 5.0)
        if not left:
            stray = self.group_pids()
            self.kill_group()
            pytest.fail("processes left after the master exited: %s"
                        % stray)
        self.returncodes.append(rc)
        return rc

    def kill_group(self):
        """SIGKILL every process of the server's process group."""
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        wait_for(lambda: not self.group_pids(), 5.0)

    def sanitizer_report(self):
        text = self.log() + self.stdout()
        for mark in SANITIZER_MARKS:
            i = text.find(mark)
            if i >= 0:
                return text[max(0, i - 200):i + 3000]
        return None

    # -- command line ----------------------------------------------------
    def cli(self, *args, stdin=None, check=False, timeout=60):
        """Run `postern ARGS[0] -c CONF ARGS[1:]` (user, locks, unlock,
        check); returns the CompletedProcess with str stdout/stderr."""
        argv = [postern_bin(), args[0], "-c", self.conf] + list(args[1:])
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout,
                           cwd=self.root, env=env, text=True)
        for mark in SANITIZER_MARKS:
            assert mark not in p.stderr, p.stderr
        if check:
            assert p.returncode == 0, (argv, p.returncode, p.stderr)
        return p

    def make_users(self):
        """The users file: alice (alias sales@local.test) and bob, made
        with `postern user add --stdin` once per test run, then copied.
        alice's hash is replaced with one of "pass" (the CLI refuses
        passwords under 8 characters)."""
        text = _USERS_CACHE.get("text")
        if text is None:
            self.cli("user", "add", ALICE, "--stdin", "--alias",
                     ALICE_ALIAS, stdin=ALICE_CLI_PW + "\n", check=True)
            self.cli("user", "add", BOB, "--stdin", stdin=BOB_PW + "\n",
                     check=True)
            text = read_file(self.users_path).decode()
            h = argon2id_hash(ALICE_PW)
            if h is None:  # no libsodium for ctypes: SHA512-CRYPT
                import crypt
                h = "{SHA512-CRYPT}" + crypt.crypt(
                    ALICE_PW, crypt.mksalt(crypt.METHOD_SHA512))
            else:
                h = "{ARGON2ID}" + h
            lines = []
            for line in text.splitlines(True):
                if line.startswith(ALICE + ":"):
                    f = line.split(":")
                    f[1] = h
                    line = ":".join(f)
                lines.append(line)
            text = "".join(lines)
            _USERS_CACHE["text"] = text
        with open(self.users_path, "w") as f:
            f.write(text)
        os.chmod(self.users_path, 0o600)

    # -- submission clients -------------------------------------------------
    def sub_port(self, kind):
        return self.sub_ports[str(kind)]

    def tls_ctx(self, **kw):
        """A client context that trusts this server's certificate."""
        return tls_context(cafile=self.cert, **kw)

    def sub(self, kind="587", source=None, tls=True, ehlo=True, auth=None,
            ctx=None, host="127.0.0.1", timeout=None):
        """A RawClient on a submission port, ready as THREATS.md's
        prefixes say: kind "587"/"2525" without tls is [587]; with tls
        [587T]; "465" is [465]; auth=(user, password) adds AUTH PLAIN
        ([SUB]). ehlo=False stops after the greeting (and on 587/2525 with
        tls, right after the handshake)."""
        port = self.sub_port(kind)
        ctx = ctx or self.tls_ctx()
        kw = {"timeout": timeout} if timeout else {}
        if str(kind) == "465":
            c = RawClient(port, host, source=source, tls=ctx, **kw)
            c.greeting()
            if ehlo:
                c.expect_cmd("EHLO c.example", 250)
        else:
            c = RawClient(port, host, source=source, **kw)
            c.greeting()
            if ehlo or tls:
                c.expect_cmd("EHLO c.example", 250)
            if tls:
                c.starttls(ctx)
                if ehlo:
                    c.expect_cmd("EHLO c.example", 250)
        if auth is not None:
            from helpers import plain_b64
            c.expect_cmd("AUTH PLAIN " + plain_b64(*auth), 235, "2.7.0")
        return c

    def smtp_sub(self, kind="587", source=None, login=None):
        """smtplib on a submission port: SMTP + starttls() on 587/2525,
        SMTP_SSL on 465; EHLO done; login=(user, password) logs in."""
        ctx = self.tls_ctx()
        src = (source, 0) if source else None
        if str(kind) == "465":
            s = smtplib.SMTP_SSL("127.0.0.1", self.sub_port(kind),
                                 local_hostname="client.example",
                                 timeout=15, context=ctx,
                                 source_address=src)
        else:
            s = smtplib.SMTP("127.0.0.1", self.sub_port(kind),
                             local_hostname="client.example", timeout=15,
                             source_address=src)
            s.ehlo()
            s.starttls(context=ctx)
        s.ehlo()
        if login:
            s.login(*login)
        return s

    # -- the outbound queue ----------------------------------------------
    def queue_dir(self):
        return os.path.join(self.spool, "queue")

    def queue_ids(self):
        return sorted(n[:-4] for n in list_dir(self.queue_dir())
                      if n.endswith(".env"))

    def queue_entry(self, qid):
        """(envelope dict, message bytes) of one outbound-queue entry."""
        base = os.path.join(self.queue_dir(), qid)
        return parse_envelope(base + ".env"), read_file(base + ".msg")

    # -- mail ------------------------------------------------------------
    def maildir(self, user="alice", domain="local.test"):
        return os.path.join(self.mailroot, domain, user, "Maildir")

    def new_dir(self, user="alice", domain="local.test"):
        return os.path.join(self.maildir(user, domain), "new")

    def new_files(self, user="alice", domain="local.test"):
        d = self.new_dir(user, domain)
        return [os.path.join(d, n) for n in list_dir(d)]

    def snapshot(self):
        """Every file under the mail root now (for deltas)."""
        out = set()
        for dirpath, _, files in os.walk(self.mailroot):
            for n in files:
                out.add(os.path.join(dirpath, n))
        return out

    def client(self, host="127.0.0.1", **kw):
        return RawClient(self.port, host, **kw)

    def smtp(self, host="127.0.0.1"):
        s = smtplib.SMTP(host, self.port, local_hostname="client.example",
                         timeout=10)
        return s

    def send(self, rcpts, msg, sender="s@example.org", host="127.0.0.1"):
        """Deliver `msg` (bytes, CRLF lines) with smtplib; returns the
        final (code, text) of DATA."""
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        with self.smtp(host) as s:
            s.ehlo("client.example")
            code, resp = s.mail(sender)
            assert code == 250, (code, resp)
            for r in rcpts:
                code, resp = s.rcpt(r)
                assert code == 250, (r, code, resp)
            code, resp = s.data(msg)
            return code, resp.decode("utf-8", "replace")


def finish(server):
    """Teardown: stop the server and check exit status and sanitizers."""
    problems = []
    if server.proc is not None:
        if server.running():
            try:
                rc = server.stop()
            except BaseException as e:  # pytest.fail inside stop()
                problems.append(str(e))
                rc = None
            if rc is not None and rc != 0:
                problems.append("postern exited with status %s on SIGTERM"
                                % rc)
        if server.group_pids():
            server.kill_group()
    report = server.sanitizer_report()
    if report:
        problems.append("sanitizer report in server output:\n" + report)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server with the default test configuration per test module."""
    srv = Server(tmp_path_factory.mktemp("postern"))
    srv.start()
    yield srv
    finish(srv)


@pytest.fixture(scope="module")
def sub_server(tmp_path_factory):
    """One server per test module with submission listeners (587, 2525,
    465 stand-ins), the users file and a self-signed certificate."""
    srv = Server(tmp_path_factory.mktemp("postern-sub"), submission=True)
    srv.start()
    yield srv
    finish(srv)


@pytest.fixture
def make_server(tmp_path):
    """Factory: make_server(**directives) -> a started Server. Directive
    names use '_' for '-'; mailbox="a@x b@x" replaces the mailbox list.
    Pass start=False to get it unstarted."""
    made = []

    def make(start=True, **options):
        root = os.path.join(str(tmp_path), "srv%d" % len(made))
        os.makedirs(root)
        srv = Server(root, **options)
        made.append(srv)
        if start:
            srv.start()
        return srv

    yield make
    errors = []
    for srv in made:
        try:
            finish(srv)
        except BaseException as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)
