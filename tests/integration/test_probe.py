"""`postern probe` against postern itself (issue 11, docs/probe.md).

The test's own configuration (conftest's sub_server: mx, 587, 2525 and
465 roles, a self-signed certificate, alice and bob) must pass every check
that applies: exit 0, grade A. tls.dane passes too: a small DNS responder
on loopback (--dns) serves TLSA records for the server's certificate with
the AD bit set. The smuggling check sends its four labelled messages to
alice@local.test, and postern must refuse every one of them.

Also here: --self, the human report, --intrusive against a server with a
lockout and a per-address connection limit, usage errors, and a port that
is closed. The helpers (run_probe, DnsResponder) serve the other
test_probe*.py files.
"""

import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import threading

import pytest

from conftest import ALICE, ALICE_PW, HOSTNAME, postern_bin
from helpers import free_port

PROBE_TIMEOUT = 600  # seconds for one whole probe run (bounded)
SANITIZER_MARKS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")

CHECK_IDS = ["banner.version", "tls.starttls", "tls.protocols",
             "tls.ciphers", "tls.certificate", "tls.dane",
             "auth.before_tls", "auth.plaintext_mechanisms", "relay.open",
             "users.vrfy", "users.expn", "pipelining", "smuggling",
             "lockout", "conn-limit"]


def run_probe(*args, timeout=PROBE_TIMEOUT, cwd=None):
    """Run `postern probe ARGS`; returns (exit status, stdout, stderr).
    Fails the test on a sanitizer report."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    p = subprocess.run([postern_bin(), "probe"] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=env, cwd=cwd)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    for mark in SANITIZER_MARKS:
        assert mark not in err, err
    return p.returncode, out, err


def run_json(*args, **kw):
    """run_probe with --json; returns (status, report dict, stderr)."""
    rc, out, err = run_probe("--json", *args, **kw)
    assert out.endswith("\n") and out.count("\n") == 1, out
    return rc, json.loads(out), err


def checks(report, port):
    """{check id: (result, detail)} of one port of a JSON report."""
    for p in report["ports"]:
        if p["port"] == port:
            assert [c["id"] for c in p["checks"]] == CHECK_IDS, p
            assert set(p) == {"port", "role", "checks"}, p
            for c in p["checks"]:
                assert set(c) == {"id", "result", "detail"}, c
                assert c["result"] in ("pass", "warn", "fail", "skip"), c
            return {c["id"]: (c["result"], c["detail"])
                    for c in p["checks"]}
    raise AssertionError("no port %d in %s" % (port, report))


def role(report, port):
    return [p["role"] for p in report["ports"] if p["port"] == port][0]


def spki_sha256(cert_path):
    """SHA-256 of the certificate's SubjectPublicKeyInfo (TLSA 3 1 1)."""
    pub = subprocess.run(["openssl", "x509", "-in", cert_path, "-noout",
                          "-pubkey"], check=True, stdout=subprocess.PIPE,
                         timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],
                         input=pub, check=True, stdout=subprocess.PIPE,
                         timeout=30).stdout
    return hashlib.sha256(der).digest()


class DnsResponder:
    """A UDP DNS server on 127.0.0.1 that answers TLSA queries (RFC 6698)
    from a dict {qname: [(usage, selector, mtype, data)]}, with or without
    the AD bit; other names get NXDOMAIN. Enough of RFC 1035 for
    res_query: one question, answers pointing at it."""

    def __init__(self, records, ad=True):
        self.records = {k.lower(): v for k, v in records.items()}
        self.ad = ad
        self.queries = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(5)
        self.sock.close()

    @property
    def spec(self):
        return "127.0.0.1:%d" % self.port

    def _run(self):
        for _ in range(100000):
            if self.stop_flag.is_set():
                return
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self._answer(data)
            if reply:
                self.sock.sendto(reply, peer)

    def _answer(self, q):
        if len(q) < 12:
            return None
        qid, flags, qd = struct.unpack(">HHH", q[:6])
        if qd != 1:
            return None
        pos, labels = 12, []
        while pos < len(q) and q[pos] != 0:
            n = q[pos]
            labels.append(q[pos + 1:pos + 1 + n].decode("ascii", "replace"))
            pos += 1 + n
        question = q[12:pos + 5]
        qtype = struct.unpack(">H", q[pos + 1:pos + 3])[0]
        name = ".".join(labels).lower()
        self.queries.append((name, qtype))
        rrs = self.records.get(name) if qtype == 52 else None
        rflags = 0x8180 | (0x20 if self.ad else 0) | (flags & 0x0100)
        if name not in self.records:
            rflags |= 3  # NXDOMAIN
        answers = b""
        for usage, sel, mtype, blob in rrs or []:
            rdata = bytes([usage, sel, mtype]) + blob
            answers += struct.pack(">HHHIH", 0xc00c, 52, 1, 300,
                                   len(rdata)) + rdata
        head = struct.pack(">HHHHHH", qid, rflags, 1,
                           len(rrs or []), 0, 0)
        return head + question + answers


def sub_ports(srv):
    """The four ports of sub_server with their hints and expected role."""
    return [(srv.port, "", "starttls"),
            (srv.sub_port("587"), "", "starttls"),
            (srv.sub_port("2525"), "", "starttls"),
            (srv.sub_port("465"), "/tls", "implicit-tls")]


def ports_arg(srv):
    return ",".join("%d%s" % (p, h) for p, h, _ in sub_ports(srv))


# What may be skipped against postern, and why: the rest must pass.
EXPECTED_SKIPS = {
    "mx": {"auth.plaintext_mechanisms",  # no AUTH on the mx role
           "lockout", "conn-limit"},     # without --intrusive
    "sub": {"smuggling",                 # MAIL needs AUTH there
            "lockout", "conn-limit"},
}


def test_probe_postern_passes_everything(sub_server):
    srv = sub_server
    before = srv.snapshot()
    queue_before = srv.queue_ids()
    tlsa = [(3, 1, 1, spki_sha256(srv.cert))]
    records = {"_%d._tcp.%s" % (p, HOSTNAME): tlsa
               for p, _, _ in sub_ports(srv)}
    with DnsResponder(records) as dns:
        rc, rep, err = run_json(
            "127.0.0.1", "--ports", ports_arg(srv), "--ca", srv.cert,
            "--name", HOSTNAME, "--dns", dns.spec, "--deliver-to", ALICE)
    assert rc == 0, (rep, err)
    assert rep["target"] == "127.0.0.1"
    assert rep["grade"] == "A", rep
    assert [p["port"] for p in rep["ports"]] == [p for p, _, _ in
                                                 sub_ports(srv)]
    for port, _, expect_role in sub_ports(srv):
        assert role(rep, port) == expect_role, rep
        res = checks(rep, port)
        skips = EXPECTED_SKIPS["mx" if port == srv.port else "sub"]
        for cid, (result, detail) in res.items():
            want = "skip" if cid in skips else "pass"
            assert result == want, (port, cid, result, detail)
        assert "chain verified against %s" % srv.cert in \
            res["tls.certificate"][1]
        assert "name %s (from --name) matches" % HOSTNAME in \
            res["tls.certificate"][1]
        assert "3 1 1 matches" in res["tls.dane"][1]
        assert "DNSSEC-validated" in res["tls.dane"][1]
        assert "TLSv1.0" in res["tls.protocols"][1]  # refused, named
        assert "least strength A" in res["tls.ciphers"][1]
    mx = checks(rep, srv.port)
    assert "refused at RCPT (554)" in mx["relay.open"][1], mx
    assert "only <CR><LF>.<CR><LF> ends DATA" in mx["smuggling"][1]
    sub = checks(rep, srv.sub_port("587"))
    assert sub["relay.open"][1] == "MAIL needs authentication (530 5.7.0)"
    assert "AUTH only inside TLS: PLAIN LOGIN" in \
        sub["auth.plaintext_mechanisms"][1]
    # postern refused all four smuggling messages (bare CR or LF), and
    # nothing went to the outbound queue
    new = [f for f in srv.snapshot() - before if "/new/" in f]
    assert new == [], new
    assert srv.queue_ids() == queue_before
    assert srv.running()


def test_probe_self(sub_server):
    """--self -c FILE probes each configured port once (the [::1] mx
    listener shares its port), trusting the self-signed certificate."""
    rc, rep, err = run_json("--self", "-c", sub_server.conf)
    assert rc == 0, (rep, err)
    assert rep["grade"] == "A"
    assert rep["target"] == "127.0.0.1"
    assert sorted(p["port"] for p in rep["ports"]) == sorted(
        p for p, _, _ in sub_ports(sub_server))
    for port, _, expect_role in sub_ports(sub_server):
        assert role(rep, port) == expect_role
        res = checks(rep, port)
        assert res["tls.certificate"][0] == "pass"
        assert "the configured self-signed certificate" in \
            res["tls.certificate"][1]
        # the hostname is a reserved name: no DNS lookup without --dns
        assert res["tls.dane"][0] == "skip"
        assert "reserved name" in res["tls.dane"][1]


def test_probe_human_report(sub_server):
    srv = sub_server
    rc, out, err = run_probe("127.0.0.1", "--ports",
                             "%d,%d/tls" % (srv.port, srv.sub_port("465")),
                             "--ca", srv.cert, "--name", HOSTNAME)
    assert rc == 0, (out, err)
    lines = out.splitlines()
    assert lines[0] == "postern probe of 127.0.0.1"
    assert lines[1].startswith("sent: ")
    assert "MAIL/RCPT pairs to example.net (each stopped at RCPT and " \
        "reset, no DATA)" in lines[1]
    assert "no message" in lines[1] and "no password" in lines[1]
    # issue 11: at most one connection at a time unless --intrusive
    assert " connections (one at a time), " in lines[1], lines[1]
    assert lines[3] == "port %d (starttls)" % srv.port
    for i, cid in enumerate(CHECK_IDS):
        line = lines[4 + i]
        assert line[2:6] in ("PASS", "SKIP"), line
        assert line[8:].split()[0] == cid, line
        assert len(line) <= 100, line
    assert lines[4 + len(CHECK_IDS) + 1] == \
        "port %d (implicit-tls)" % srv.sub_port("465")
    assert lines[-1].startswith("grade: A (")
    assert all(0x20 <= ord(c) < 0x7f for line in lines for c in line)


def test_probe_intrusive(make_server):
    """--intrusive against a server with a lockout after 5 failures and a
    limit of 20 sessions an address: lockout and conn-limit pass."""
    srv = make_server(submission=True, auth_account_failures=5,
                      auth_address_failures=None,
                      conn_limit_per_address=20,
                      conn_rate_per_address=None)
    port = srv.sub_port("587")
    rc, rep, err = run_json("127.0.0.1", "--ports", port, "--ca", srv.cert,
                            "--name", HOSTNAME, "--intrusive", "--user",
                            ALICE)
    assert rc == 0, (rep, err)
    res = checks(rep, port)
    assert res["lockout"][0] == "pass", res["lockout"]
    assert "locked after 5 wrong passwords for %s (535): 454 4.7.0" % \
        ALICE in res["lockout"][1]
    # 20 at most: the server may not yet have counted the probe's last
    # sessions as closed when the burst starts
    m = re.match(r"(\d+) connections at once greeted, the next refused "
                 r"\(greeting 421 4\.7\.0\)$", res["conn-limit"][1])
    assert res["conn-limit"][0] == "pass" and m, res["conn-limit"]
    assert 15 <= int(m.group(1)) <= 20, res["conn-limit"]
    assert rep["grade"] == "A"
    # the lock is real: even the right password is refused now
    c = srv.sub("587")
    from helpers import plain_b64
    r = c.cmd("AUTH PLAIN " + plain_b64(ALICE, ALICE_PW))
    assert r.code == 454, r
    c.close()
    assert ALICE in srv.cli("locks").stdout


def test_probe_intrusive_needs_a_user(sub_server):
    rc, out, err = run_probe("127.0.0.1", "--ports", sub_server.sub_port(
        "587"), "--ca", sub_server.cert, "--intrusive")
    lines = out.splitlines()
    assert lines[-1].startswith("grade: C (conn-limit failed"), out
    assert rc == 1
    # the note says how many connections were open at once
    assert "(at most 64 at once)" in lines[1], lines[1]
    lockout = [l for l in lines if l[8:].startswith("lockout ")]
    assert lockout == ["  SKIP  lockout                    needs --user "
                       "ACCOUNT (tries wrong passwords)"], lockout
    # conn-limit ran: this server has no per-address limit (conftest)
    limit = [l for l in lines if l[8:].startswith("conn-limit ")]
    assert limit and limit[0].startswith("  FAIL  conn-limit"), limit
    assert "64 connections at once" in limit[0]


@pytest.mark.parametrize("args", [
    [],
    ["127.0.0.1", "extra"],
    ["127.0.0.1", "--ports", "0"],
    ["127.0.0.1", "--ports", "70000"],
    ["127.0.0.1", "--ports", "25,25"],
    ["127.0.0.1", "--ports", "25/udp"],
    ["127.0.0.1", "--ports", ""],
    ["127.0.0.1", "--timeout", "0"],
    ["127.0.0.1", "--timeout", "301"],
    ["127.0.0.1", "--timeout", "x"],
    ["127.0.0.1", "--deliver-to", "not an address"],
    ["127.0.0.1", "--deliver-to", "a@b>\r\nDATA"],
    ["127.0.0.1", "--deliver-to", "@relay:a@b.example"],
    ["127.0.0.1", "--name", "bad name"],
    ["127.0.0.1", "--relay-domain", "exa mple"],
    ["127.0.0.1", "--helo", "bad helo"],
    ["127.0.0.1", "--user", "a b"],
    ["127.0.0.1", "--dns", "::1"],
    ["127.0.0.1", "--dns", "127.0.0.1:0"],
    ["127.0.0.1", "--dns", "resolver.example"],
    ["127.0.0.1", "--nonsense"],
    ["127.0.0.1", "-c", "/etc/postern.conf"],
    ["--self", "127.0.0.1"],
    ["--self", "--ports", "25"],
])
def test_probe_usage_errors(args):
    rc, out, err = run_probe(*args)
    assert rc == 2, (args, out, err)
    assert out == ""
    assert "usage: postern probe" in err or "postern probe:" in err, err


def test_probe_help():
    rc, out, err = run_probe("--help")
    assert rc == 0 and "usage: postern probe HOST" in out


def test_probe_closed_port():
    port = free_port()
    rc, rep, err = run_json("127.0.0.1", "--ports", port, "--timeout", "3")
    assert rc == 2, rep
    assert rep["grade"] is None
    assert role(rep, port) == "closed"
    for cid, (result, detail) in checks(rep, port).items():
        assert result == "skip"
        assert detail.startswith("no connection: "), detail


def test_probe_unresolvable_host():
    rc, out, err = run_probe("no-such-host.invalid", "--ports", "25")
    assert rc == 2 and out == ""
    assert "no-such-host.invalid" in err


def test_probe_dane_mismatch_and_no_dnssec(sub_server):
    """A TLSA record that does not match fails; a matching one without
    the AD bit warns (DANE needs DNSSEC); no record skips."""
    srv = sub_server
    port = srv.sub_port("465")
    good = spki_sha256(srv.cert)
    bad = bytes(32)
    name = "_%d._tcp.%s" % (port, HOSTNAME)
    cases = [({name: [(3, 1, 1, bad)]}, True, "fail", "3 1 1 no match"),
             ({name: [(3, 1, 1, good)]}, False, "warn",
              "NOT DNSSEC-validated"),
             ({name: [(1, 1, 1, good)]}, True, "fail", "no usable record"),
             ({}, True, "skip", "no TLSA records")]
    for records, ad, result, text in cases:
        with DnsResponder(records, ad=ad) as dns:
            rc, rep, err = run_json("127.0.0.1", "--ports", "%d/tls" % port,
                                    "--ca", srv.cert, "--name", HOSTNAME,
                                    "--dns", dns.spec)
        res = checks(rep, port)["tls.dane"]
        assert res[0] == result and text in res[1], (records, ad, res)
        assert (name, 52) in dns.queries
        assert rc == (1 if result == "fail" else 0)


def test_probe_self_before_the_first_start(tmp_path):
    """--self on a configuration whose self-signed certificate does not
    exist yet (the server never ran): a report of closed ports, exit 2,
    not an error about the trust anchors."""
    port = free_port()
    conf = tmp_path / "postern.conf"
    conf.write_text("hostname mx.local.test\ndomains local.test\n"
                    "mailbox a@local.test\nspool spool\n"
                    "tls-certificate tls/cert.pem tls/key.pem\n"
                    "tls-self-signed yes\n"
                    "listen 127.0.0.1:%d mx\n" % port)
    rc, rep, err = run_json("--self", "-c", str(conf), "--timeout", "2")
    assert rc == 2, (rep, err)
    assert "trust anchors" not in err
    assert rep["grade"] is None
    assert role(rep, port) == "closed"
    assert not (tmp_path / "tls" / "cert.pem").exists()
