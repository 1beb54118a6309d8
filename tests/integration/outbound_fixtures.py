"""Test zones for the outbound tests: a real authoritative DNS server (NSD
from Debian) on a free loopback port, serving zones written and, for the
signed ones, signed in each run with ldns-keygen and ldns-signzone
(ldnsutils). The keys of the signed zones go into a trust-anchor file, so
that libunbound validates them: `secure.example` is signed and anchored
(secure), `insecure.example` is not signed (insecure), `bogus.example` is
signed with one key while the anchor names another (bogus).

The TLD is `example` (RFC 2606), not `test`: libunbound serves `test.`
itself as a locally empty zone (RFC 6761) and would never ask.

Every wait is bounded in time; every loop in count.
"""

import os
import signal
import subprocess
import time

from helpers import free_port

NSD = "/usr/sbin/nsd"
DRILL = "/usr/bin/drill"

SOA = ("@ IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 300\n"
       "@ IN NS ns.{zone}.\n"
       "ns IN A 127.0.0.1\n")

# name -> list of records, relative to the zone (a "@" is the apex).
DEFAULT_ZONES = {
    "secure.example": [
        "@ IN MX 10 mx1.secure.example.",
        "@ IN MX 20 mx2.secure.example.",
        "mx1 IN A 127.0.0.2",
        "mx2 IN A 127.0.0.3",
        "mx2 IN AAAA ::1",
        "nullmx IN MX 0 .",
    ],
    "bogus.example": [
        "@ IN MX 10 mx.bogus.example.",
        "mx IN A 127.0.0.2",
    ],
    "insecure.example": [
        "@ IN MX 10 mx.insecure.example.",
        "mx IN A 127.0.0.2",
        "implicit IN A 127.0.0.4",
        "noaddr IN MX 10 ghost.insecure.example.",
        "nullmx IN MX 0 .",
    ],
}
SIGNED = ("secure.example", "bogus.example")


def _run(args, cwd):
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()


class DnsServer:
    """NSD serving `zones` on 127.0.0.1:<port>, started in `root`."""

    def __init__(self, root, zones=None, signed=SIGNED, corrupt=()):
        self.root = os.path.join(str(root), "dns")
        os.makedirs(self.root, exist_ok=True)
        self.zones = zones if zones is not None else DEFAULT_ZONES
        self.signed = signed
        # (zone, type): the RRSIG of that RRset is damaged after signing,
        # so that only that answer is bogus
        self.corrupt = corrupt
        self.port = free_port()
        self.trust_anchor = os.path.join(self.root, "trust-anchor.ds")
        self.proc = None

    def _write_zone(self, zone, records):
        path = os.path.join(self.root, zone + ".zone")
        with open(path, "w") as f:
            f.write("$ORIGIN %s.\n$TTL 300\n" % zone)
            f.write(SOA.format(zone=zone))
            for r in records:
                f.write(r + "\n")
        return path

    def _sign(self, zone, path, anchors):
        key = _run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", zone],
                   self.root)
        _run(["ldns-signzone", path, key], self.root)
        for z, rrtype in self.corrupt:
            if z == zone:
                self._corrupt_rrsig(path + ".signed", rrtype)
        if zone.startswith("bogus"):
            # The anchor names a key the zone was not signed with.
            key = _run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k",
                        zone], self.root)
        with open(os.path.join(self.root, key + ".ds")) as f:
            anchors.append(f.read().strip())
        return os.path.basename(path) + ".signed"

    @staticmethod
    def _corrupt_rrsig(path, rrtype):
        with open(path) as f:
            lines = f.read().split("\n")
        for i, line in enumerate(lines):
            fields = line.split()
            if len(fields) > 5 and fields[3] == "RRSIG" \
                    and fields[4] == rrtype:
                sig = fields[-1]
                c = "A" if sig[10] != "A" else "B"
                fields[-1] = sig[:10] + c + sig[11:]
                lines[i] = "\t".join(fields)
                break
        else:
            raise RuntimeError("no RRSIG %s in %s" % (rrtype, path))
        with open(path, "w") as f:
            f.write("\n".join(lines))

    def _config(self, files):
        conf = os.path.join(self.root, "nsd.conf")
        with open(conf, "w") as f:
            f.write("server:\n"
                    "  ip-address: 127.0.0.1@%d\n"
                    "  zonesdir: %s\n"
                    "  pidfile: %s/nsd.pid\n"
                    "  database: \"\"\n"
                    "  username: \"\"\n"
                    "  xfrdfile: %s/xfrd.state\n"
                    "  zonelistfile: %s/zone.list\n"
                    "  logfile: %s/nsd.log\n"
                    "  verbosity: 1\n"
                    "remote-control:\n"
                    "  control-enable: no\n"
                    % (self.port, self.root, self.root, self.root,
                       self.root, self.root))
            for zone, name in files.items():
                f.write("zone:\n  name: %s\n  zonefile: %s\n"
                        % (zone, name))
        return conf

    def start(self):
        anchors, files = [], {}
        for zone, records in self.zones.items():
            path = self._write_zone(zone, records)
            if zone in self.signed:
                files[zone] = self._sign(zone, path, anchors)
            else:
                files[zone] = os.path.basename(path)
        with open(self.trust_anchor, "w") as f:
            f.write("\n".join(anchors) + "\n")
        conf = self._config(files)
        self.proc = subprocess.Popen([NSD, "-d", "-c", conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15.0
        zone = next(iter(self.zones))
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nsd exited: %s"
                                   % self.proc.stderr.read().decode())
            r = subprocess.run([DRILL, "-p", str(self.port), "@127.0.0.1",
                                "SOA", zone], capture_output=True,
                               text=True, timeout=10)
            if "rcode: NOERROR" in r.stdout:
                return self
            time.sleep(0.1)
        raise RuntimeError("nsd did not answer on port %d" % self.port)

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def directives(self):
        """The postern directives that use this server."""
        return {"dns-resolver": "127.0.0.1:%d" % self.port,
                "dns-trust-anchor": self.trust_anchor}


# Zones for the delivery tests: every MX host is a loopback address whose
# port 25 a test serves (or leaves closed, for "down").
DELIVERY_ZONES = {
    "ok.example": ["@ IN MX 10 mx.ok.example.", "mx IN A 127.0.0.2"],
    "tmp.example": ["@ IN MX 10 mx.tmp.example.", "mx IN A 127.0.0.3"],
    "perm.example": ["@ IN MX 10 mx.perm.example.", "mx IN A 127.0.0.4"],
    "backup.example": ["@ IN MX 10 mxa.backup.example.",
                       "@ IN MX 20 mxb.backup.example.",
                       "mxa IN A 127.0.0.5",
                       "mxb IN A 127.0.0.6"],
    "nullmx.example": ["@ IN MX 0 ."],
    "silent.example": ["@ IN MX 10 mx.silent.example.",
                       "mx IN A 127.0.0.13"],
    # IPv6: an MX with only an AAAA record, and MX hosts with both
    # families where only one of them answers.
    "v6.example": ["@ IN MX 10 mx.v6.example.", "mx IN AAAA ::1"],
    "dual4.example": ["@ IN MX 10 mx.dual4.example.",
                      "mx IN AAAA ::1", "mx IN A 127.0.0.40"],
    "dual6.example": ["@ IN MX 10 mx.dual6.example.",
                      "mx IN AAAA ::1", "mx IN A 127.0.0.41"],
}

SMTP_SINK = "/usr/sbin/smtp-sink"


class Sink:
    """Postfix's smtp-sink on ADDR:25, dumping each message into its own
    file (-d) in a directory of its own; `args` adds options such as
    `-f rcpt` (5xx to RCPT) or `-r rcpt` (4xx)."""

    def __init__(self, addr, args=(), port=25):
        import socket
        import tempfile
        self.addr, self.port = addr, port
        # The addresses are fixed (port 25): a second test run on this
        # machine would answer our probe below. Say so instead.
        try:
            socket.create_connection((addr, port), 0.5).close()
            raise RuntimeError("%s:%d is taken (another test run on this "
                               "machine?)" % (addr, port))
        except OSError:
            pass
        # smtp-sink runs as postfix: its directory must be reachable by
        # it, which pytest's (root-only) temporary tree is not.
        self.dump = tempfile.mkdtemp(prefix="postern-sink-")
        os.chmod(self.dump, 0o777)
        dump = self.dump
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-u", "postfix", "-d", dump + "/%M.",
             "-h", "sink-" + addr] + list(args)
            + [("[%s]:%d" if ":" in addr else "%s:%d") % (addr, port),
               "50"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("smtp-sink exited: %s"
                                   % self.proc.stderr.read().decode())
            try:
                socket.create_connection((addr, port), 0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("smtp-sink does not listen on %s" % addr)

    def messages(self):
        """The dumped messages (bytes), oldest first."""
        out = []
        for n in sorted(os.listdir(self.dump)):
            with open(os.path.join(self.dump, n), "rb") as f:
                out.append(f.read())
        return out

    def stop(self):
        import shutil
        shutil.rmtree(self.dump, ignore_errors=True)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


class ScriptedServer:
    """A receiving server on ADDR:25 (a thread) that speaks just enough
    SMTP: EHLO offers STARTTLS, every other command gets 250, DATA is
    collected up to the dot. It records each connection's commands (also
    after a handshake) and the data of each message. A subclass says
    what STARTTLS does: starttls(conn) returns the connection to go on
    with, or None to end the session. Bounded: 200 lines a session,
    120 s in all."""

    name = b"scripted.example"

    def __init__(self, addr, port=25):
        import socket
        import threading
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.sessions = []  # list of lists of command lines
        self.messages = []
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import socket
        deadline = time.monotonic() + 120.0
        while self.running and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            conn.settimeout(10.0)
            try:
                self._session(conn)
            except OSError:  # also ssl.SSLError: a failed handshake
                pass
            finally:
                conn.close()

    def starttls(self, conn):
        raise NotImplementedError

    def _session(self, conn):
        cmds, data = [], None
        self.sessions.append(cmds)
        f = conn.makefile("rb")
        conn.sendall(b"220 " + self.name + b" ESMTP\r\n")
        for _ in range(200):
            line = f.readline()
            if not line:
                return
            if data is not None:
                if line == b".\r\n":
                    self.messages.append(b"".join(data))
                    data = None
                    conn.sendall(b"250 2.0.0 Ok\r\n")
                else:
                    data.append(line)
                continue
            cmd = line.rstrip(b"\r\n").decode("ascii", "replace")
            cmds.append(cmd)
            verb = cmd.split(" ")[0].upper()
            if verb == "EHLO":
                conn.sendall(b"250-" + self.name + b"\r\n250 STARTTLS\r\n")
            elif verb == "STARTTLS":
                conn = self.starttls(conn)
                if conn is None:
                    return
                f = conn.makefile("rb")
            elif verb == "DATA":
                conn.sendall(b"354 go\r\n")
                data = []
            elif verb == "QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:
                conn.sendall(b"250 2.0.0 Ok\r\n")

    def stop(self):
        self.running = False
        self.thread.join(10)
        self.sock.close()


class BrokenTlsServer(ScriptedServer):
    """Offers STARTTLS, says 220 to it, waits for the client's first
    handshake octets and answers them with plain garbage (a failed
    handshake); with `inject`, the garbage follows the 220 at once, in
    the same segment (plain text that a client must not take for the
    encrypted server's, CVE-2011-0411). A client that comes back without
    STARTTLS may deliver."""

    name = b"broken.example"

    def __init__(self, addr, port=25, inject=False):
        self.inject = inject
        super().__init__(addr, port)

    def starttls(self, conn):
        if self.inject:
            conn.sendall(b"220 2.0.0 go ahead\r\n250 fake\r\n")
            return None
        conn.sendall(b"220 2.0.0 go ahead\r\n")
        self.hello = conn.recv(5)  # a TLS record header
        conn.sendall(b"this is not a TLS handshake\r\n")
        return None


class SilentServer:
    """Accepts connections on ADDR:25 and never says a word (a server
    that hangs before its greeting); counts the connections it holds."""

    def __init__(self, addr, port=25):
        import socket
        import threading
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.conns = []
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import socket
        deadline = time.monotonic() + 300.0
        while self.running and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            self.conns.append(conn)

    def stop(self):
        self.running = False
        self.thread.join(10)
        for c in self.conns:
            c.close()
        self.sock.close()
