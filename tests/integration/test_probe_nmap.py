"""The probe finds at least everything nmap finds (issue 11): nmap's
smtp-commands, smtp-open-relay, smtp-enum-users and ssl-enum-ciphers run
on the same two targets as the probe, postern itself (the sub_server
configuration) and the badly configured Postfix of test_probe_postfix.py,
and every finding of nmap must show in the probe's report:

 - smtp-commands: AUTH in the EHLO reply of a port that is not implicit
   TLS means auth.before_tls fails; STARTTLS there means the role is
   starttls; VRFY listed means users.vrfy was really tried (and fails on
   Postfix, which tells users apart);
 - smtp-open-relay: every MAIL/RCPT pair nmap got through is listed in
   relay.open, which fails; "authentication needed" means relay.open
   passes because MAIL needs AUTH;
 - smtp-enum-users: every user nmap found is named in users.vrfy or
   users.expn, and that check fails;
 - ssl-enum-ciphers: every suite nmap lists, per TLS version, is in the
   probe's tls.ciphers with the same letter grade, every version nmap saw
   is accepted in tls.protocols, and the probe's least strength is no
   better than nmap's.

nmap runs its smtp scripts only on ports it takes for SMTP: a private
--datadir holds an nmap-services file naming each port "smtp" (STARTTLS:
ssl-enum-ciphers then speaks STARTTLS first) or "smtps" (implicit TLS).
"""

import re
import shutil
import subprocess


from conftest import HOSTNAME
from test_probe import checks, role, run_json
from test_probe_postfix import HOST as PF_HOST
from test_probe_postfix import bad_postfix  # noqa: F401 (a fixture)

RELAY_DOMAIN = "example.net"


def run_nmap(tmp_path, ports, domain):
    """One nmap run of the four scripts; ports: {port: service}."""
    exe = shutil.which("nmap")
    assert exe, "nmap is not installed (make deps)"
    datadir = tmp_path / "nmap-data"
    datadir.mkdir(exist_ok=True)
    (datadir / "nmap-services").write_text("".join(
        "%s\t%d/tcp\t0.5\n" % (svc, port) for port, svc in ports.items()))
    cmd = [exe, "-n", "-Pn", "-sT", "-vv", "-p",
           ",".join(str(p) for p in ports), "--datadir", str(datadir),
           "--script", "smtp-commands,smtp-open-relay,smtp-enum-users,"
           "ssl-enum-ciphers",
           "--script-args",
           "smtp-open-relay.domain=%s,smtp-open-relay.ip=127.0.0.1,"
           "smtp-enum-users.domain=%s" % (RELAY_DOMAIN, domain),
           "127.0.0.1"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=600, cwd=str(tmp_path))
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out
    return out


def port_blocks(out):
    """{port: [script output lines]} from nmap's normal output."""
    blocks, cur = {}, None
    for line in out.splitlines():
        m = re.match(r"^(\d+)/tcp\s+open\s", line)
        if m:
            cur = blocks.setdefault(int(m.group(1)), [])
        elif cur is not None and line.startswith("|"):
            cur.append(line)
        elif cur is not None and line.strip() and not line.startswith("|"):
            cur = None
    return blocks


def script(lines, name):
    """The lines of one script's result, without the "| " prefixes."""
    out = []
    for i, line in enumerate(lines):
        if line.startswith(("| " + name + ":", "|_" + name + ":")):
            out.append(line[2:])
            if line.startswith("|_"):
                return out
            for more in lines[i + 1:]:
                out.append(more[2:] if more.startswith(("| ", "|_"))
                           else more[1:])
                if more.startswith("|_"):
                    break
            return out
    return None


def nmap_ciphers(lines):
    """({(version, suite): grade}, versions, least) of ssl-enum-ciphers;
    TLS 1.3 names as IANA writes them (nmap: TLS_AKE_WITH_...)."""
    found, versions, least, ver = {}, set(), None, None
    for line in lines or []:
        m = re.match(r"^\s+(SSLv3|TLSv1\.[0-3]):\s*$", line)
        if m:
            ver = m.group(1)
            continue
        m = re.match(r"^\s+(TLS_\w+)(?: \(.*\))? - ([A-F])\s*$", line)
        if m and ver:
            name = m.group(1).replace("TLS_AKE_WITH_", "TLS_")
            found[(ver, name)] = m.group(2)
            versions.add(ver)
        m = re.match(r"^\s+least strength: ([A-F])", line)
        if m:
            least = m.group(1)
    return found, versions, least


def probe_ciphers(detail):
    """({(version, suite): grade}, least) from tls.ciphers' detail."""
    m = re.match(r"least strength ([A-F])", detail)
    assert m, detail
    found = {}
    for part in detail.split("; "):
        m = re.match(r"^(SSLv3|TLSv1\.[0-3]): (.*)$", part)
        if not m:
            continue
        for entry in m.group(2).split(", "):
            e = re.match(r"^(TLS_\w+) \(.*\) ([A-F])$", entry)
            assert e, entry
            found[(m.group(1), e.group(1))] = e.group(2)
    return found, detail[len("least strength ")]


def compare(out, rep, ports):
    """Every nmap finding on each port shows in the probe's report.
    Returns how many findings were compared (so that the test cannot
    pass on an empty nmap output)."""
    blocks = port_blocks(out)
    compared = 0
    for port, svc in ports.items():
        assert port in blocks, (port, out)
        lines = blocks[port]
        res = checks(rep, port)

        cmds = script(lines, "smtp-commands")
        assert cmds, (port, lines)
        ehlo = cmds[0]
        if svc == "smtp":
            if re.search(r"\bAUTH\b", ehlo):
                assert res["auth.before_tls"][0] == "fail", res
                compared += 1
            if "STARTTLS" in ehlo:
                assert role(rep, port) == "starttls"
                compared += 1
        if re.search(r"\bVRFY\b", ehlo):
            assert res["users.vrfy"][0] == "fail", res["users.vrfy"]
            compared += 1
        if "PIPELINING" in ehlo:
            assert res["pipelining"][0] in ("pass", "fail"), res
            compared += 1

        relay = script(lines, "smtp-open-relay")
        assert relay, (port, lines)
        if "is an open relay" in relay[0]:
            assert res["relay.open"][0] == "fail"
            pairs = [l.strip() for l in relay[1:] if "MAIL FROM" in l]
            assert pairs, relay
            for pair in pairs:
                assert pair in res["relay.open"][1], (pair, res["relay.open"])
                compared += 1
        elif "authentication needed" in relay[0]:
            assert res["relay.open"] == (
                "pass", "MAIL needs authentication (530 5.7.0)")
            compared += 1
        else:
            assert "doesn't seem to be an open relay" in relay[0], relay
            assert res["relay.open"][0] == "pass"
            compared += 1

        users = script(lines, "smtp-enum-users") or []
        for line in users[1:]:
            m = re.match(r"^\s*(?:RCPT|VRFY|EXPN), (\S+)\s*$", line)
            if m:
                user = m.group(1)
                told = [res[c][1] for c in ("users.vrfy", "users.expn")
                        if res[c][0] == "fail"]
                assert any(user + " (" in t for t in told), (user, res)
                compared += 1

        n_found, n_versions, n_least = nmap_ciphers(
            script(lines, "ssl-enum-ciphers"))
        assert n_found, (port, lines)
        p_found, p_least = probe_ciphers(res["tls.ciphers"][1])
        for key, grade in n_found.items():
            assert key in p_found, (key, sorted(p_found))
            assert p_found[key] == grade, (key, grade, p_found[key])
            compared += 1
        for ver in n_versions:
            assert ver in res["tls.protocols"][1].split(";")[0], (
                ver, res["tls.protocols"])
        assert p_least >= n_least, (p_least, n_least)
    return compared


def test_probe_vs_nmap_postern(sub_server, tmp_path):
    srv = sub_server
    ports = {srv.port: "smtp", srv.sub_port("587"): "smtp",
             srv.sub_port("465"): "smtps"}
    out = run_nmap(tmp_path, ports, "local.test")
    rc, rep, err = run_json(
        "127.0.0.1", "--ports", "%d,%d,%d/tls" % (srv.port, srv.sub_port(
            "587"), srv.sub_port("465")), "--ca", srv.cert, "--name",
        HOSTNAME, "--relay-domain", RELAY_DOMAIN)
    assert rc == 0, (rep, err)
    n = compare(out, rep, ports)
    assert n >= 3 * 6, out


def test_probe_vs_nmap_postfix(bad_postfix, tmp_path):
    pf = bad_postfix
    ports = {pf.port: "smtp", pf.tls_port: "smtps"}
    out = run_nmap(tmp_path, ports, PF_HOST)
    rc, rep, err = run_json(
        "127.0.0.1", "--ports", "%d,%d/tls" % (pf.port, pf.tls_port),
        "--ca", pf.cert, "--name", PF_HOST, "--relay-domain", RELAY_DOMAIN)
    assert rc == 1, (rep, err)
    n = compare(out, rep, ports)
    # 16 relay pairs and dozens of suites on each port
    assert n >= 2 * (16 + 40), (n, out)
    # nmap's user finding (RCPT, root) is among them
    assert "RCPT, root" in out
