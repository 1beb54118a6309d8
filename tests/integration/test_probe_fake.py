"""`postern probe` against small fake SMTP servers that each get one thing
wrong (or everything), so that every check is seen to fail for the reason
it names: none of these verdicts can come out of a test that cannot fail.

The fake server (FakeSMTP) is a thread on a free loopback port; every
behaviour is a keyword argument. It answers byte by byte when asked
(slow=True), which also shows that the probe's reply reader does not
depend on how replies are split. Server banners are hostile input: the
JSON report must stay valid and the human one printable.
"""

import json
import select
import socket
import ssl
import struct
import subprocess
import threading

from helpers import free_port
from test_probe import checks, role, run_json, run_probe

FAKE_HOST = "fake.test"
MAX_CONNECTIONS = 400
MAX_COMMANDS = 500


def vrfy_tells(name):
    """VRFY/EXPN of a server that tells users apart."""
    if name in ("root", "postmaster"):
        return b"250 2.1.5 <%s@fake.test>\r\n" % name.encode()
    return b"550 5.1.1 unknown user\r\n"


class FakeSMTP:
    """A deliberately broken SMTP server. Behaviour (keywords):
    banner (bytes after "220 "), ehlo (extension lines), auth_clear (AUTH
    answered with 334 before TLS), vrfy and expn (name -> reply bytes),
    rcpt (address -> reply bytes), pipelining_broken (answers only the
    first command of a group), data_end ("crlf", "lf": a lone LF ends
    lines too, "cr": a lone CR as well), tls (a server SSLContext:
    STARTTLS offered), inject (keeps plain text sent behind STARTTLS),
    starttls_again (offers STARTTLS inside TLS), slow (replies byte by
    byte), refuse_first (421 to the first n connections), legacy
    ((suite id, {versions}, certificate DER): a ClientHello offering that
    suite in one of those versions gets a hand-made first flight choosing
    it, as a server with an old TLS library would)."""

    def __init__(self, **kw):
        self.kw = kw
        self.port = free_port()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", self.port))
        self.lsock.listen(128)
        self.lsock.settimeout(0.2)
        self.stop_flag = threading.Event()
        self.connections = 0
        self.messages = []
        self.commands = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(5)
        self.lsock.close()

    def _accept(self):
        while not self.stop_flag.is_set() and \
                self.connections < MAX_CONNECTIONS:
            try:
                conn, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._session, args=(conn,
                             self.connections), daemon=True).start()

    # -- I/O -----------------------------------------------------------
    def _send(self, s, data):
        if self.kw.get("slow"):
            for i in range(len(data)):
                s.sendall(data[i:i + 1])
        else:
            s.sendall(data)

    def _read_line(self, s, st, seps=(b"\n",)):
        """A line up to the first separator, CR of CRLF stripped."""
        for _ in range(10000):
            cut = [st["buf"].find(sep) for sep in seps]
            cut = [c for c in cut if c >= 0]
            if cut:
                i = min(cut)
                line, st["buf"] = st["buf"][:i], st["buf"][i + 1:]
                return line[:-1] if line.endswith(b"\r") else line
            data = s.recv(65536)
            if not data:
                return None
            st["buf"] += data
        return None

    # -- the session -------------------------------------------------------
    def _session(self, s, n):
        s.settimeout(10)
        try:
            if n <= self.kw.get("refuse_first", 0):
                s.sendall(b"421 4.7.0 too fast, try later\r\n")
                return
            self._send(s, b"220 " + self.kw.get("banner", FAKE_HOST.encode())
                       + b"\r\n")
            st = {"buf": b"", "tls": False}
            for _ in range(MAX_COMMANDS):
                line = self._read_line(s, st)
                if line is None:
                    return
                self.commands.append(line)
                if self.kw.get("pipelining_broken") and b"\n" in st["buf"]:
                    st["buf"] = b""  # the rest of the group is lost
                s = self._command(s, st, line)
                if s is None:
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            try:
                s.close()
            except (OSError, AttributeError):
                pass

    def _ehlo(self, st):
        lines = [FAKE_HOST.encode()] + list(self.kw.get("ehlo", []))
        if self.kw.get("tls") is not None and \
                (not st["tls"] or self.kw.get("starttls_again")):
            lines.append(b"STARTTLS")
        return b"".join(b"250-" + l + b"\r\n" for l in lines[:-1]) + \
            b"250 " + lines[-1] + b"\r\n"

    def _command(self, s, st, line):
        verb = line.split(b" ", 1)[0].upper()
        arg = line[len(verb) + 1:]
        if verb == b"EHLO":
            self._send(s, self._ehlo(st))
        elif verb == b"STARTTLS" and self.kw.get("tls") is not None:
            return self._starttls(s, st)
        elif verb == b"AUTH":
            if not self.kw.get("auth_clear"):
                self._send(s, b"503 5.5.1 no AUTH here\r\n")
            elif b" " in arg:
                self._send(s, b"535 5.7.8 authentication failed\r\n")
            else:
                self._send(s, b"334 \r\n")
                answer = self._read_line(s, st)
                self._send(s, b"501 5.7.0 cancelled\r\n" if answer == b"*"
                           else b"535 5.7.8 authentication failed\r\n")
        elif verb in (b"VRFY", b"EXPN"):
            fn = self.kw.get(verb.decode().lower())
            self._send(s, fn(arg.decode("ascii", "replace")) if fn
                       else b"502 5.5.1 no\r\n")
        elif verb == b"MAIL":
            self._send(s, b"250 2.1.0 ok\r\n")
        elif verb == b"RCPT":
            fn = self.kw.get("rcpt")
            self._send(s, fn(arg) if fn else b"250 2.1.5 ok\r\n")
        elif verb == b"DATA":
            self._send(s, b"354 go ahead\r\n")
            self.messages.append(self._data(s, st))
            self._send(s, b"250 2.0.0 queued\r\n")
        elif verb in (b"RSET", b"NOOP"):
            self._send(s, b"250 2.0.0 ok\r\n")
        elif verb == b"HELP":
            self._send(s, b"214 2.0.0 fake help\r\n")
        elif verb == b"QUIT":
            self._send(s, b"221 2.0.0 bye\r\n")
            return None
        else:
            self._send(s, b"500 5.5.2 unknown command\r\n")
        return s

    def _data(self, s, st):
        mode = self.kw.get("data_end", "crlf")
        body = b""
        if mode == "crlf":
            for _ in range(10000):
                i = st["buf"].find(b"\r\n.\r\n")
                if i >= 0:
                    body, st["buf"] = st["buf"][:i], st["buf"][i + 5:]
                    return body
                data = s.recv(65536)
                if not data:
                    return body
                st["buf"] += data
            return body
        seps = (b"\n",) if mode == "lf" else (b"\n", b"\r")
        for _ in range(10000):
            line = self._read_line(s, st, seps)
            if line is None or line == b".":
                return body
            body += line + b"\n"
        return body

    def _peek_hello(self, s):
        """(record length, client_version, offered ids) of the
        ClientHello waiting on s, left unread; None if there is none."""
        data = b""
        for _ in range(50):
            r, _, _ = select.select([s], [], [], 0.1)
            if r:
                data = s.recv(65536, socket.MSG_PEEK)
                if len(data) >= 5 and \
                        len(data) >= 5 + struct.unpack(">H", data[3:5])[0]:
                    break
        if len(data) < 9 or data[0] != 22 or data[5] != 1:
            return None
        body = data[9:]
        version = struct.unpack(">H", body[0:2])[0]
        o = 34 + 1 + body[34]
        n = struct.unpack(">H", body[o:o + 2])[0]
        ids = [struct.unpack(">H", body[o + 2 + i:o + 4 + i])[0]
               for i in range(0, n, 2)]
        return 5 + struct.unpack(">H", data[3:5])[0], version, ids

    def _legacy_flight(self, s, version, suite, der):
        """ServerHello, Certificate, ServerHelloDone in one record."""
        hello = struct.pack(">H", version) + b"\x11" * 32 + b"\x00" + \
            struct.pack(">HB", suite, 0)
        cert = struct.pack(">I", len(der) + 3)[1:] + \
            struct.pack(">I", len(der))[1:] + der
        msgs = (b"\x02" + struct.pack(">I", len(hello))[1:] + hello +
                b"\x0b" + struct.pack(">I", len(cert))[1:] + cert +
                b"\x0e\x00\x00\x00")
        s.sendall(b"\x16" + struct.pack(">HH", version, len(msgs)) + msgs)

    def _starttls(self, s, st):
        self._send(s, b"220 2.0.0 ready\r\n")
        if self.kw.get("legacy"):
            suite, versions, der = self.kw["legacy"]
            hello = self._peek_hello(s)
            if hello and hello[1] in versions and suite in hello[2]:
                s.recv(hello[0])
                self._legacy_flight(s, hello[1], suite, der)
                return None
        kept = st["buf"] if self.kw.get("inject") else b""
        if self.kw.get("inject") and not kept:
            # what the client sent behind STARTTLS arrives before its
            # hello: take the plain-text lines, leave the TLS record
            r, _, _ = select.select([s], [], [], 0.3)
            data = s.recv(65536, socket.MSG_PEEK) if r else b""
            used = 0
            while used < len(data) and data[used] != 0x16:
                end = data.find(b"\r\n", used)
                if end < 0:
                    break
                used = end + 2
            kept = s.recv(used) if used else b""
        s.settimeout(10)
        ts = self.kw["tls"].wrap_socket(s, server_side=True)
        st["tls"] = True
        st["buf"] = b""
        for line in kept.split(b"\r\n"):
            if line:
                self.commands.append(line)
                if self._command(ts, st, line) is None:
                    return None
        return ts


def server_tls(tmp_path, cn="fake.test", rsa=False):
    cert, key = str(tmp_path / "fake.pem"), str(tmp_path / "fake.key")
    keyopts = ["-newkey", "rsa:2048"] if rsa else [
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    subprocess.run(["openssl", "req", "-x509"] + keyopts + [
                    "-nodes", "-keyout", key, "-out", cert, "-days", "30",
                    "-subj", "/CN=" + cn, "-addext",
                    "subjectAltName=DNS:" + cn],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx, cert


def test_fake_everything_wrong(tmp_path):
    """Plain text only, a hostile banner with the version, AUTH in
    clear, VRFY and EXPN that tell users apart, an open relay, a broken
    pipeline, LF.LF ends DATA; replies sent byte by byte."""
    banner = (b"fake.test ESMTP Postfix 3.7.11 \x1b[31m\"quote\\ "
              b"\xff\xfe \xe2\x80\xa8 </script>")
    with FakeSMTP(banner=banner, slow=True, auth_clear=True,
                  ehlo=[b"PIPELINING", b"AUTH PLAIN LOGIN"],
                  vrfy=vrfy_tells, expn=vrfy_tells, pipelining_broken=True,
                  data_end="lf") as fake:
        rc, out, err = run_probe("--json", "127.0.0.1", "--ports",
                                 fake.port, "--timeout", "5",
                                 "--deliver-to", "root@fake.test")
        rc2, text, err2 = run_probe("127.0.0.1", "--ports", fake.port,
                                    "--timeout", "5")
    assert rc == 1, (out, err)
    rep = json.loads(out)  # valid JSON whatever the banner held
    assert rep["grade"] == "F"
    assert role(rep, fake.port) == "plain"
    res = checks(rep, fake.port)
    for cid in ("banner.version", "tls.starttls", "auth.before_tls",
                "auth.plaintext_mechanisms", "relay.open", "users.vrfy",
                "users.expn", "pipelining", "smuggling"):
        assert res[cid][0] == "fail", (cid, res[cid])
    for cid in ("tls.protocols", "tls.ciphers", "tls.certificate",
                "tls.dane"):
        assert res[cid][0] == "skip", (cid, res[cid])
    assert "Postfix 3.7.11" in res["banner.version"][1]
    assert "\x1b" not in out and "\\u001b" not in out  # escaped twice over
    assert "root (250)" in res["users.vrfy"][1]
    assert "postmaster (250)" in res["users.expn"][1]
    assert "got 1 replies" in res["pipelining"][1], res["pipelining"]
    assert res["smuggling"][1].startswith(
        "<LF>.<LF>, <CR><LF>.<LF>, <LF>.<CR><LF> ends DATA"), res["smuggling"]
    assert "AUTH PLAIN gets 334" in res["auth.before_tls"][1]
    assert "open relay: 30 of 30 forms" in res["relay.open"][1]
    # the human report: printable, the hostile bytes neutralised
    assert rc2 == 1
    assert all(c == "\n" or 0x20 <= ord(c) < 0x7f for c in text), text
    assert "grade: F (relay.open failed" in text


def test_fake_cr_dot_cr_smuggling():
    """A server that takes a lone CR for a line end: <CR>.<CR> ends DATA."""
    with FakeSMTP(data_end="cr") as fake:
        rc, rep, err = run_json("127.0.0.1", "--ports", fake.port,
                                "--deliver-to", "root@fake.test")
    res = checks(rep, fake.port)["smuggling"]
    assert res[0] == "fail"
    assert "<CR>.<CR>" in res[1] and "<LF>.<LF>" in res[1], res
    # each test message is labelled and addressed as promised
    assert fake.messages, fake.messages
    assert b"Subject: postern probe: SMTP smuggling test" in \
        fake.messages[0]


def test_fake_strict_data_end():
    """Only CRLF.CRLF ends DATA: pass, and each message arrived whole."""
    with FakeSMTP(data_end="crlf") as fake:
        rc, rep, err = run_json("127.0.0.1", "--ports", fake.port,
                                "--deliver-to", "root@fake.test")
    res = checks(rep, fake.port)["smuggling"]
    assert res[0] == "pass", res
    assert len(fake.messages) == 4
    for m in fake.messages:
        assert b"NOOP postern-probe-smuggled" in m


def test_fake_starttls_injection(tmp_path):
    ctx, cert = server_tls(tmp_path)
    with FakeSMTP(tls=ctx, inject=True) as fake:
        rc, rep, err = run_json("127.0.0.1", "--ports", fake.port,
                                "--ca", cert, "--name", FAKE_HOST)
    res = checks(rep, fake.port)
    assert role(rep, fake.port) == "starttls"
    assert res["tls.starttls"][0] == "fail", res["tls.starttls"]
    assert "CVE-2011-0411" in res["tls.starttls"][1]
    assert res["tls.certificate"][0] == "pass", res["tls.certificate"]


def test_fake_starttls_offered_again(tmp_path):
    ctx, cert = server_tls(tmp_path)
    with FakeSMTP(tls=ctx, starttls_again=True) as fake:
        rc, rep, err = run_json("127.0.0.1", "--ports", fake.port,
                                "--ca", cert, "--name", FAKE_HOST)
    res = checks(rep, fake.port)["tls.starttls"]
    assert res[0] == "warn" and "RFC 3207 section 4.2" in res[1], res


def test_fake_certificate_failures(tmp_path):
    ctx, cert = server_tls(tmp_path)
    with FakeSMTP(tls=ctx) as fake:
        # not in the system store
        rc, rep, err = run_json("127.0.0.1", "--ports", fake.port,
                                "--name", FAKE_HOST)
        res = checks(rep, fake.port)["tls.certificate"]
        assert res[0] == "fail" and "chain not verified" in res[1], res
        # trusted, but for another name
        rc, rep, err = run_json("127.0.0.1", "--ports", fake.port,
                                "--ca", cert, "--name", "mx.other.test")
        res = checks(rep, fake.port)["tls.certificate"]
        assert res[0] == "fail", res
        assert "name mx.other.test (from --name) does not match" in res[1]
        # no --name on an address: the greeting's name is checked
        rc, rep, err = run_json("127.0.0.1", "--ports", fake.port,
                                "--ca", cert)
        res = checks(rep, fake.port)["tls.certificate"]
        assert res[0] == "pass", res
        assert "name fake.test (from the greeting) matches" in res[1]


def test_fake_greylisted_relay():
    """4xx to every foreign RCPT: no open relay seen, but a warning."""
    with FakeSMTP(rcpt=lambda a: b"450 4.7.1 greylisted\r\n") as fake:
        rc, rep, err = run_json("127.0.0.1", "--ports", fake.port)
    res = checks(rep, fake.port)["relay.open"]
    assert res[0] == "warn" and "temporary refusal" in res[1], res


def test_fake_vrfy_looks_names_up():
    with FakeSMTP(vrfy=lambda n: b"550 5.1.1 unknown\r\n") as fake:
        rc, rep, err = run_json("127.0.0.1", "--ports", fake.port)
    res = checks(rep, fake.port)["users.vrfy"]
    assert res[0] == "warn" and "looks names up" in res[1], res


def test_fake_not_smtp():
    """Something that is not SMTP: role unknown, every check skipped,
    exit 2 (no port answered SMTP)."""
    port = free_port()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", port))
    ls.listen(8)
    stop = threading.Event()

    def serve():
        ls.settimeout(0.2)
        for _ in range(200):
            if stop.is_set():
                return
            try:
                c, _ = ls.accept()
            except socket.timeout:
                continue
            c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        rc, rep, err = run_json("127.0.0.1", "--ports", port)
    finally:
        stop.set()
        t.join(5)
        ls.close()
    assert rc == 2
    assert role(rep, port) == "unknown"
    res = checks(rep, port)
    assert all(r == "skip" for r, _ in res.values())
    assert "no SMTP service on this port" in res["banner.version"][1]


def test_fake_rate_limited_connect():
    """A 421 at connect is waited out and tried again, not taken for a
    verdict."""
    with FakeSMTP(refuse_first=1) as fake:
        rc, rep, err = run_json("127.0.0.1", "--ports", fake.port)
    assert role(rep, fake.port) == "plain", rep
    assert checks(rep, fake.port)["banner.version"][0] == "pass"
    assert fake.connections >= 2


def test_fake_legacy_suites(tmp_path):
    """What this OpenSSL cannot offer, a hand-made hello finds: a server
    that still picks 3DES in TLS 1.2 and speaks SSLv3 (the fake answers
    those hellos with a first flight of its own; everything else is
    Python's TLS 1.2+)."""
    ctx, cert = server_tls(tmp_path, rsa=True)
    der = ssl.PEM_cert_to_DER_cert(open(cert).read())
    with FakeSMTP(tls=ctx, legacy=(0x000a, {0x0300, 0x0303}, der)) as fake:
        rc, rep, err = run_json("127.0.0.1", "--ports", fake.port,
                                "--ca", cert, "--name", FAKE_HOST)
    res = checks(rep, fake.port)
    assert res["tls.protocols"][0] == "fail", res["tls.protocols"]
    assert res["tls.protocols"][1].startswith(
        "old TLS accepted: SSLv3 TLSv1.2 TLSv1.3"), res["tls.protocols"]
    ciphers = res["tls.ciphers"]
    assert ciphers[0] == "fail", ciphers
    assert ciphers[1].startswith("least strength C"), ciphers
    assert "64-bit block cipher (SWEET32)" in ciphers[1]
    assert "SSLv3 (POODLE, CVE-2014-3566)" in ciphers[1]
    assert "SSLv3: TLS_RSA_WITH_3DES_EDE_CBC_SHA (rsa 2048) C" in ciphers[1]
    assert "TLS_RSA_WITH_3DES_EDE_CBC_SHA (rsa 2048) C" in \
        ciphers[1].split("TLSv1.2:")[1]
