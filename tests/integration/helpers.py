"""Helpers for the postern integration tests.

RawClient talks SMTP over a plain socket and sends exactly the bytes it is
given, one sendall() per segment, with TCP_NODELAY: smtplib rewrites line
endings and refuses CR/LF/NUL, so it cannot drive the abuse vectors.

Every wait here is bounded in time; every loop is bounded in count.
"""

import base64
import email.utils
import os
import re
import socket
import ssl
import time

REPLY_TIMEOUT = 10.0  # seconds for one reply (ASan builds are slow)
STARTTLS_SETTLE = 0.05  # see RawClient.starttls

REPLY_LINE_RE = re.compile(rb"^(\d{3})([ -])(.*)$", re.S)
ENH_RE = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})(?: |$)")
QUEUED_RE = re.compile(r"queued as (\S+)")


class Reply:
    """One SMTP reply, possibly multi-line (RFC 5321 section 4.2.1)."""

    def __init__(self, code, lines, raw):
        self.code = code  # int
        self.lines = lines  # list of str, text after "NNN-"/"NNN "
        self.raw = raw  # the exact bytes received, CRLFs included

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def enh(self):
        """The RFC 3463 enhanced status code of the first line, or None."""
        m = ENH_RE.match(self.lines[0]) if self.lines else None
        return m.group(1) if m else None

    @property
    def queue_id(self):
        m = QUEUED_RE.search(self.text)
        return m.group(1) if m else None

    def is_(self, code, enh=None):
        return self.code == code and (enh is None or self.enh == enh)

    def __repr__(self):
        return "Reply(%r)" % self.raw


class Closed(Exception):
    """The server closed the connection while a reply was expected."""


# Errors that mean "the peer closed" when reading, on plain and TLS sockets.
EOF_ERRORS = (ConnectionResetError, ssl.SSLZeroReturnError, ssl.SSLEOFError,
              ssl.SSLError)


class RawClient:
    """`source` binds the client socket to that local address first (to
    come from 127.0.0.2, say); `tls` (an ssl.SSLContext) starts TLS right
    after connecting (implicit TLS, RFC 8314)."""

    def __init__(self, port, host="127.0.0.1", timeout=REPLY_TIMEOUT,
                 source=None, tls=None, server_hostname=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.raw_sock = self.sock
        self.buf = bytearray()
        self.eof = False
        self.timeout = timeout
        if tls is not None:
            self.start_tls(tls, server_hostname)

    # -- TLS -------------------------------------------------------------
    def start_tls(self, ctx, server_hostname=None):
        """TLS handshake on the connection now (raises ssl.SSLError on a
        failed handshake). Plain text still buffered is a test error."""
        assert not self.buf, "plain text left before TLS: %r" % self.buf
        self.sock = ctx.wrap_socket(self.sock,
                                    server_hostname=server_hostname)
        return self.sock

    def starttls(self, ctx, server_hostname=None, settle=STARTTLS_SETTLE):
        """STARTTLS (RFC 3207): expect 220 2.0.0, then the handshake, then
        wait `settle` seconds before the next command, so that the
        client's Finished and its first command do not reach the server
        in one segment (test_tls.py checks that case on its own)."""
        self.expect_cmd("STARTTLS", 220, "2.0.0")
        sock = self.start_tls(ctx, server_hostname)
        if settle:
            time.sleep(settle)
        return sock

    @property
    def is_tls(self):
        return isinstance(self.sock, ssl.SSLSocket)

    # -- sending ---------------------------------------------------------
    def send(self, *segments, gap=0.0):
        """Send each segment with its own sendall(); sleep `gap` between
        segments so that the server sees them in separate reads."""
        for i, seg in enumerate(segments):
            if isinstance(seg, str):
                seg = seg.encode()
            if i and gap:
                time.sleep(gap)
            self.sock.sendall(seg)

    def send_bytewise(self, data, gap=0.002):
        """Send `data` one octet per segment."""
        if isinstance(data, str):
            data = data.encode()
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])
            if gap:
                time.sleep(gap)

    def cmd(self, line, timeout=None):
        """Send one command line (CRLF added) and read its reply."""
        self.send(line.encode() + b"\r\n" if isinstance(line, str)
                  else line + b"\r\n")
        return self.reply(timeout)

    # -- receiving -------------------------------------------------------
    def _fill(self, deadline):
        if self.eof:
            raise Closed("connection closed")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no reply in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise
        except EOF_ERRORS:
            data = b""
        if not data:
            self.eof = True
            raise Closed("connection closed")
        self.buf += data

    def _line(self, deadline):
        for _ in range(100000):
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i + 2])
                del self.buf[:i + 2]
                return line
            self._fill(deadline)
        raise AssertionError("reply line never ended")

    def reply(self, timeout=None):
        """Read one complete (multi-line aware) reply."""
        deadline = time.monotonic() + (timeout or self.timeout)
        raw = b""
        lines = []
        code = None
        for _ in range(1000):
            line = self._line(deadline)
            raw += line
            m = REPLY_LINE_RE.match(line[:-2])
            assert m, "malformed reply line %r" % line
            c = int(m.group(1))
            assert code is None or c == code, "code changed in %r" % raw
            code = c
            lines.append(m.group(3).decode("utf-8", "replace"))
            if m.group(2) == b" ":
                return Reply(code, lines, raw)
        raise AssertionError("reply too long: %r" % raw[:200])

    def replies(self, n, timeout=None):
        return [self.reply(timeout) for _ in range(n)]

    def expect(self, code, enh=None, timeout=None):
        r = self.reply(timeout)
        assert r.is_(code, enh), "expected %s %s, got %r" % (code, enh, r)
        return r

    def greeting(self):
        return self.expect(220)

    def ehlo(self, name="c.example"):
        self.greeting()
        return self.expect_cmd("EHLO " + name, 250)

    def expect_cmd(self, line, code, enh=None, timeout=None):
        r = self.cmd(line, timeout)
        assert r.is_(code, enh), "%r: expected %s %s, got %r" % (
            line, code, enh, r)
        return r

    def pending(self, wait=0.5):
        """Return whatever arrives within `wait` seconds (b"" if nothing);
        sets self.eof when the server closed."""
        deadline = time.monotonic() + wait
        got = bytes(self.buf)
        self.buf.clear()
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            except EOF_ERRORS:
                data = b""
            if not data:
                self.eof = True
                break
            got += data
        return got

    def wait_closed(self, timeout=5.0):
        """True when the server closes the connection within `timeout`
        (any further data is discarded into self.trailing)."""
        self.trailing = self.pending(timeout)
        return self.eof

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- messages and Maildirs ----------------------------------------------


TRACE_RE = re.compile(rb"\AReturn-Path: <([^\r\n<>]*)>\r\n"
                      rb"Delivered-To: ([^\r\n]+)\r\n")


def split_trace(data):
    """Split a delivered Maildir file into (return_path, delivered_to,
    rest): the two fields the store writes at its top (docs/durability.md)
    must be there, exactly so."""
    m = TRACE_RE.match(data)
    assert m, data[:200]
    return (m.group(1).decode("utf-8"), m.group(2).decode("utf-8"),
            data[m.end():])


def split_received(data):
    """Split a stored message into (received_header, rest). The header is
    the first field including its folded continuation lines. The trace
    fields of a Maildir copy before it (split_trace) are skipped."""
    if data.startswith(b"Return-Path: "):
        data = split_trace(data)[2]
    assert data.startswith(b"Received: from "), data[:200]
    pos = data.index(b"\r\n") + 2
    for _ in range(100):
        if data[pos:pos + 1] in (b" ", b"\t"):
            pos = data.index(b"\r\n", pos) + 2
        else:
            break
    return data[:pos], data[pos:]


def unfold(header):
    return re.sub(rb"\r\n[ \t]", b" ", header).rstrip(b"\r\n").decode(
        "ascii", "replace")


def received_id(header):
    m = re.search(r" id ([A-Za-z0-9._-]+)", unfold(header))
    return m.group(1) if m else None


def check_received(header, hostname="mx.local.test", queue_id=None,
                   rcpt=None):
    """Assert the form of our Received header (RFC 5321 section 4.4)."""
    text = unfold(header)
    assert text.startswith("Received: from "), text
    assert "by " + hostname in text, text
    assert "with ESMTP" in text, text
    qid = received_id(header)
    assert qid, text
    if queue_id is not None:
        assert qid == queue_id, (qid, queue_id, text)
    if rcpt is not None:
        assert "for <%s>" % rcpt in text, text
    assert ";" in text, text
    date = text.rsplit(";", 1)[1].strip()
    assert email.utils.parsedate_to_datetime(date) is not None, date
    assert "\r" not in text and "\n" not in text
    return qid


def list_dir(path):
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def wait_for(pred, timeout=10.0, step=0.05):
    """Poll pred() until it returns something true or the time runs out;
    returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


# -- processes -----------------------------------------------------------


def children(pid):
    """Pids of the direct children of `pid` (from /proc)."""
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
        if fields[0] != "Z" and int(fields[1]) == pid:
            out.append(int(name))
    return sorted(out)


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(pid):
    return rss_kib(pid) + sum(rss_kib(c) for c in children(pid))


def free_port():
    """A TCP port > 1024 free on both 127.0.0.1 and ::1."""
    for _ in range(50):
        s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s4.bind(("127.0.0.1", 0))
        port = s4.getsockname()[1]
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            s6.bind(("::1", port))
        except OSError:
            continue
        finally:
            s6.close()
            s4.close()
        if port > 1024:
            return port
    raise RuntimeError("no free port")


# -- load with acknowledgement bookkeeping --------------------------------


class LoadClients:
    """Threads that send messages with smtplib and record which ones got
    250 after DATA: accepted maps queue id -> marker, attempted maps
    marker -> exact message bytes. Bounded by count and by time."""

    def __init__(self, port, threads=4, per_thread=300, seconds=30.0,
                 rcpt="alice@local.test", host="127.0.0.1"):
        import threading
        self.port = port
        self.host = host
        self.rcpt = rcpt
        self.per_thread = per_thread
        self.deadline = time.monotonic() + seconds
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.accepted = {}
        self.attempted = {}
        self.errors = []
        self.threads = [threading.Thread(target=self._run, args=(i,),
                                         daemon=True)
                        for i in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self, timeout=30.0):
        self.stop_flag.set()
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, end - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)

    def count(self):
        with self.lock:
            return len(self.accepted)

    def wait_count(self, n, timeout=20.0):
        return wait_for(lambda: self.count() >= n, timeout)

    def _message(self, tid, n):
        import uuid
        marker = "load-%d-%d-%s" % (tid, n, uuid.uuid4().hex)
        body = ("From: <load@example.org>\r\nTo: <%s>\r\nSubject: %s\r\n"
                "\r\n" % (self.rcpt, marker)).encode()
        body += (b"%s line %d\r\n" % (marker.encode(), n)) * (1 + n % 40)
        return marker, body

    def _run(self, tid):
        import smtplib
        n = 0
        failures = 0
        while (n < self.per_thread and failures < 20
               and not self.stop_flag.is_set()
               and time.monotonic() < self.deadline):
            try:
                s = smtplib.SMTP(self.host, self.port,
                                 local_hostname="load.example", timeout=15)
            except OSError as e:
                failures += 1
                self.errors.append(repr(e))
                if isinstance(e, ConnectionRefusedError):
                    return
                time.sleep(0.05)
                continue
            try:
                s.ehlo("load.example")
                for _ in range(10):
                    if (n >= self.per_thread or self.stop_flag.is_set()
                            or time.monotonic() >= self.deadline):
                        break
                    marker, msg = self._message(tid, n)
                    n += 1
                    with self.lock:
                        self.attempted[marker] = msg
                    code, resp = s.mail("load@example.org")
                    if code != 250:
                        raise smtplib.SMTPResponseException(code, resp)
                    code, resp = s.rcpt(self.rcpt)
                    if code != 250:
                        raise smtplib.SMTPResponseException(code, resp)
                    code, resp = s.data(msg)
                    if code == 250:
                        m = QUEUED_RE.search(resp.decode("ascii", "replace"))
                        assert m, resp
                        with self.lock:
                            self.accepted[m.group(1)] = marker
                    else:
                        raise smtplib.SMTPResponseException(code, resp)
                try:
                    s.quit()
                except Exception:
                    pass
            except Exception as e:  # server killed or shutting down
                failures += 1
                self.errors.append(repr(e))
                try:
                    s.close()
                except Exception:
                    pass
                time.sleep(0.05)


def maildir_messages(new_dir):
    """Map queue id -> list of (path, content after the Received header)
    for every file in a Maildir new/ directory."""
    out = {}
    for name in list_dir(new_dir):
        path = os.path.join(new_dir, name)
        data = read_file(path)
        hdr, rest = split_received(data)
        qid = received_id(hdr)
        assert qid, (path, hdr)
        out.setdefault(qid, []).append((path, rest))
    return out


def check_load_delivery(new_dir, load):
    """Every acknowledged message is in new/ exactly once and intact; every
    file in new/ is a complete message that some client sent."""
    got = maildir_messages(new_dir)
    dups = {q: [p for p, _ in v] for q, v in got.items() if len(v) > 1}
    assert not dups, "delivered more than once: %s" % dups
    missing = [q for q in load.accepted if q not in got]
    assert not missing, "acknowledged but not delivered: %s" % missing
    for qid, marker in load.accepted.items():
        assert got[qid][0][1] == load.attempted[marker], qid
    sent = set(load.attempted.values())
    for qid, [(path, rest)] in got.items():
        assert rest in sent, "partial or unknown message in new/: %s" % path
    return got


def spool_files(spool):
    """Regular files anywhere under the spool directory."""
    out = []
    for dirpath, _, files in os.walk(spool):
        out.extend(os.path.join(dirpath, f) for f in files)
    return out


POOL_RE = re.compile(r"\A\.pool\d+\Z")


def spool_leftovers(spool):
    """Spool files that must not stay once the server is idle or has
    recovered: uncommitted data, committed envelopes, quarantined ones.
    An empty tmp/.pool<n> (a data file kept for reuse, docs/durability.md)
    holds nothing and is not one."""
    out = []
    for f in spool_files(spool):
        parts = os.path.relpath(f, spool).split(os.sep)[:-1]
        if POOL_RE.match(os.path.basename(f)) and parts[-1:] == ["tmp"]:
            try:
                if os.path.getsize(f) == 0:
                    continue
            except FileNotFoundError:
                continue  # taken for a new message meanwhile
        if {"tmp", "committed", "quarantine"} & set(parts):
            out.append(f)
    return out


# Foreground log lines may carry "<timestamp> postern[<pid>]: " before the
# "<sid> <event> key=value ..." part (log.c); this strips it.
LOG_PREFIX_RE = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z? \S+\[\d+\]: ")


def log_events(text):
    """(sid, event, rest-of-line) for every log line."""
    out = []
    for line in text.splitlines():
        line = LOG_PREFIX_RE.sub("", line, count=1)
        parts = line.split(" ", 2)
        if len(parts) >= 2:
            out.append((parts[0], parts[1], parts[2] if len(parts) > 2
                        else ""))
    return out


# -- submission: SASL, TLS, queue envelopes --------------------------------


def b64(data):
    """Base64 of bytes or str, as str (RFC 4648 4, padded)."""
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode("ascii")


def plain_b64(user, password, authzid=""):
    """The AUTH PLAIN message (RFC 4616 2): authzid NUL authcid NUL
    passwd, base64."""
    return b64("%s\0%s\0%s" % (authzid, user, password))


def tls_context(cafile=None, alpn=None, minimum=None, maximum=None,
                ciphers=None):
    """A client context. With `cafile` the server's chain must verify
    against it (host name not checked: connect by address); without, no
    verification (a self-signed test certificate)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def pem_to_der(path):
    """DER of the first certificate in a PEM file."""
    text = read_file(path).decode("ascii")
    end = "-----END CERTIFICATE-----"
    return ssl.PEM_cert_to_DER_cert(text[:text.index(end) + len(end)] + "\n")


def env_unescape(value):
    """Undo the %XX escaping of queue envelope values (docs/queue-format.md
    Escaping); returns str (latin-1 for non-ASCII octets)."""
    out = bytearray()
    i = 0
    raw = value.encode("ascii")
    while i < len(raw):
        if raw[i:i + 1] == b"%":
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("latin-1")


def parse_envelope(path):
    """A queue or spool envelope as a dict: single keys map to their
    (unescaped) value; rcpt and remote map to lists. Asserts the framing
    of docs/queue-format.md (magic first, end last, LF only)."""
    data = read_file(path)
    assert data.endswith(b"\n") and b"\r" not in data and b"\0" not in data
    lines = data.decode("ascii").split("\n")[:-1]
    assert lines[0] in ("postern-envelope 1", "postern-envelope 2",
                        "postern-envelope 3"), lines
    assert lines[-1] == "end", lines
    env = {"version": int(lines[0].split()[1]), "rcpt": [], "remote": []}
    for line in lines[1:-1]:
        key, _, value = line.partition(" ")
        if key in ("rcpt", "remote"):
            env[key].append(" ".join(env_unescape(v)
                                     for v in value.split(" ")))
        else:
            assert key not in env, (key, lines)
            env[key] = env_unescape(value)
    return env


def argon2id_hash(password):
    """An Argon2id hash string of `password` with libsodium's interactive
    costs (what `postern user add` makes), through ctypes; None when
    libsodium cannot be loaded."""
    import ctypes
    import ctypes.util
    name = ctypes.util.find_library("sodium") or "libsodium.so.23"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    if lib.sodium_init() < 0:
        return None
    lib.crypto_pwhash_opslimit_interactive.restype = ctypes.c_ulonglong
    lib.crypto_pwhash_memlimit_interactive.restype = ctypes.c_size_t
    out = ctypes.create_string_buffer(128)
    pw = password.encode()
    rc = lib.crypto_pwhash_str(
        out, pw, ctypes.c_ulonglong(len(pw)),
        ctypes.c_ulonglong(lib.crypto_pwhash_opslimit_interactive()),
        ctypes.c_size_t(lib.crypto_pwhash_memlimit_interactive()))
    return out.value.decode("ascii") if rc == 0 else None


def make_self_signed(cert, key, cn, days=2):
    """A new EC P-256 key and self-signed certificate for `cn` with
    openssl(1); returns the certificate's DER."""
    import subprocess
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec",
         "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", str(days),
         "-subj", "/CN=%s" % cn, "-addext", "subjectAltName=DNS:%s" % cn],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        timeout=30)
    return pem_to_der(cert)


def guard_control(srv, command):
    """One command on the guard's control socket; the whole answer. The
    guard makes the socket after the server's listeners are up: a
    bounded wait for it first."""
    wait_for(lambda: os.path.exists(srv.options["control-socket"]), 30)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(srv.options["control-socket"])
    s.sendall(command.encode() + b"\n")
    data = b""
    for _ in range(10000):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode()
