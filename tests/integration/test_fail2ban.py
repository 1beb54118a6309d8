"""fail2ban (issue 6 item 1, docs/lockout.md "fail2ban"): a client must
not be able to make a log line that bans somebody else.

A real brute force from 127.0.0.3 (the client socket is bound to it) runs
against the server, together with forged values naming 198.51.100.7 in
every field a client controls: MAIL and RCPT arguments, the EHLO name,
the AUTH user name (PLAIN and LOGIN) and authzid, the SNI name, an unknown
command. The log that comes out is read by the real `fail2ban-regex` with
contrib/fail2ban/filter.d/postern.conf, in the stderr form and in the
syslog and journal forms: every real failure matches, and only 127.0.0.3
is ever found. The old greedy filter of docs/lockout.md finds only
127.0.0.3 too: the escaping alone defeats the forgeries.
"""

import os
import re
import shutil
import ssl
import subprocess

import pytest

from conftest import ALICE, REPO
from helpers import Closed, RawClient, b64, log_events, plain_b64

SRC = "127.0.0.3"
VICTIM = "198.51.100.7"
FORGED = "postern[1]: guard auth-failure client=%s account=" % VICTIM
FORGERIES = [
    FORGED,
    '"' + FORGED + '"',
    "x]: guard auth-failure client=%s account=\"a\" role=mx" % VICTIM,
]
AUTH_FAILED = 535
AUTH_LOCKED = 454
CONN_LOCKED = b"421 4.7.0 Access temporarily refused\r\n"
FILTER = os.path.join(REPO, "contrib", "fail2ban", "filter.d", "postern.conf")
JAIL = os.path.join(REPO, "contrib", "fail2ban", "jail.d", "postern.conf")
# what docs/lockout.md shipped before: greedy, anchored nowhere
OLD_FILTER = r"^.*postern\[\d+\]: guard auth-failure client=<ADDR> account="
THRESHOLD = 8  # auth-address-failures


def f2b_conf(tmp_path):
    """A fail2ban configuration directory: Debian's, with our filter and
    jail installed as docs/lockout.md says."""
    if shutil.which("fail2ban-regex") is None:
        pytest.fail("fail2ban-regex not found (make deps installs fail2ban)")
    conf = os.path.join(str(tmp_path), "fail2ban")
    shutil.copytree("/etc/fail2ban", conf)
    shutil.copy(FILTER, os.path.join(conf, "filter.d", "postern.conf"))
    shutil.copy(JAIL, os.path.join(conf, "jail.d", "postern.conf"))
    return conf


def f2b_ips(log_path, filt, conf=None, extra=()):
    """The address of every line that fail2ban-regex matches, in order."""
    argv = ["fail2ban-regex"]
    if conf is not None:
        argv += ["-c", conf]
    argv += list(extra) + ["-o", "ip", log_path, filt]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=120)
    assert p.returncode == 0, (argv, p.stdout, p.stderr)
    return p.stdout.split()


# --- the clients ---------------------------------------------------------------


def forge_mx(srv):
    """MAIL, RCPT, EHLO and unknown commands carrying the forgeries."""
    c = RawClient(srv.port, source=SRC)
    c.greeting()
    for f in FORGERIES:
        # an EHLO name must be a domain or an address literal: these are
        # refused, the literal is accepted (and logged)
        assert c.cmd("EHLO " + f).code == 501
    c.expect_cmd("EHLO [IPv6:::1]", 250)
    c.expect_cmd("EHLO [tag:a]x=%s]" % VICTIM, 501)
    for f in FORGERIES:
        local = '"%s"' % f.replace("\\", "\\\\").replace('"', '\\"')
        c.cmd("MAIL FROM:<%s@example.org>" % local)
        c.cmd("RCPT TO:<%s@local.test>" % local)
        c.cmd("RSET")
        assert c.cmd("XFORGE " + f).code == 500  # unknown command
    # a line that looks like a header: not an SMTP client, goodbye
    assert c.cmd(FORGED).code == 221
    c.close()


def forge_auth(srv):
    """AUTH PLAIN and LOGIN with forged user names (real failures: the
    guard counts them) and a forged authzid (refused by the session).
    Returns the number of failures the guard saw."""
    failures = 0
    for f in FORGERIES:
        c = srv.sub("587", source=SRC)
        r = c.cmd("AUTH PLAIN " + plain_b64(f, "wrong-" + f[:3]))
        assert r.code == AUTH_FAILED, r
        failures += 1
        # an authzid other than the user: malformed, refused by the
        # session (the guard is not asked); the user name is logged
        r = c.cmd("AUTH PLAIN " + plain_b64(f, "x", authzid=f + "z"))
        assert r.code == AUTH_FAILED, r
        c.close()
    c = srv.sub("2525", source=SRC)
    c.expect_cmd("AUTH LOGIN", 334)
    c.expect_cmd(b64(FORGED), 334)
    assert c.cmd(b64("wrong-login")).code == AUTH_FAILED
    failures += 1
    c.close()
    return failures


def forge_sni(srv):
    """An SNI name that is no host name: the handshake is refused."""
    ctx = srv.tls_ctx()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for f in FORGERIES[:1]:
        with pytest.raises((ssl.SSLError, OSError, Closed)):
            c = RawClient(srv.sub_port("465"), source=SRC, tls=ctx,
                          server_hostname=f)
            c.greeting()


def brute_force(srv, start):
    """Wrong passwords for alice from SRC until the address is locked,
    then a few more tries. Returns (failures, locked answers, refused
    connections) as the client saw them."""
    failures = start
    locked = refused = 0
    n = 0
    for _ in range(THRESHOLD + 5):
        # the lock falls inside a session, which then gets 454s: no
        # session is turned away here
        c = srv.sub("587", source=SRC)
        for _ in range(3):
            n += 1
            r = c.cmd("AUTH PLAIN " + plain_b64(ALICE, "guess-%d" % n))
            if r.code == AUTH_FAILED:
                failures += 1
            else:
                assert r.code == AUTH_LOCKED, r
                locked += 1
        c.close()
        if failures >= THRESHOLD and locked >= 2:
            break
    assert failures >= THRESHOLD and locked >= 1, (failures, locked)
    for _ in range(3):
        c = RawClient(srv.sub_port("587"), source=SRC)
        got = c.pending(5.0)
        c.close()
        assert got == CONN_LOCKED, got
        refused += 1
    return failures, locked, refused


# --- the test -------------------------------------------------------------------


def syslog_form(text, journal=False):
    """The same lines as rsyslog writes them to a file ("DATE HOST
    postern[PID]: MSG"), or as fail2ban's journal reader gives them
    ("HOST postern[PID]: MSG", no date)."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^(\S+) (postern\[\d+\]: .*)$", line)
        if m is None:
            continue
        date = m.group(1).replace("Z", "+00:00")
        out.append(("mail " if journal else date + " mail ") + m.group(2))
    return "\n".join(out) + "\n"


def test_forged_values_never_ban_another_address(make_server, tmp_path):
    srv = make_server(submission=True, auth_address_failures=THRESHOLD,
                      auth_account_failures=1000)
    conf = f2b_conf(tmp_path)
    forge_mx(srv)
    forge_sni(srv)
    failures = forge_auth(srv)
    failures, locked, refused = brute_force(srv, failures)
    real = failures + locked + refused
    assert srv.wait_log(
        lambda t: t.count(" guard conn-refused client=%s" % SRC) >= refused,
        10)
    text = srv.log()
    log_path = os.path.join(str(tmp_path), "postern.log")
    with open(log_path, "w") as f:
        f.write(text)

    # The forgeries reached the log, in every field that logs them ...
    ev = log_events(text)
    for sid, event, rest in (("-", "mail", "from="), ("-", "rcpt", "to="),
                             ("guard", "auth-failure", "client=" + SRC),
                             ("-", "auth", "reason=malformed"),
                             ("-", "tls-failed", "sni=")):
        hits = [r for s, e, r in ev
                if e == event and rest in r and VICTIM in r
                and (sid == "-" or s == sid)]
        assert hits, (event, rest, text[-4000:])
    assert any(e == "helo" and "IPv6:::1" in r for _, e, r in ev)
    # ... escaped: no value holds a space, a quote, '=', '[' or ']'
    assert "client=" + VICTIM not in text
    assert "postern[1]" not in text
    client_value = re.compile(r'(?:^| )(?:from|to|name|account|user|sni)='
                              r'"((?:[^"\\]|\\x[0-9a-f]{2})*)"(?: |$)')
    n = 0
    for _, e, r in ev:
        for value in client_value.findall(r):
            assert not set(value) & set(" '=[]"), (e, r)
            n += VICTIM in value
    assert n >= 3 * len(FORGERIES) + 2, n
    # the unknown command's text is not logged at all
    assert "unknown" not in [e for _, e, _ in ev]

    # The shipped filter: every real failure, and only 127.0.0.3.
    ips = f2b_ips(log_path, "postern", conf)
    assert ips == [SRC] * real, (ips, real)
    # The same lines in the syslog (file) and journal forms.
    for journal in (False, True):
        p = os.path.join(str(tmp_path), "syslog-%s.log" % journal)
        with open(p, "w") as f:
            f.write(syslog_form(text, journal))
        if journal:
            ips = f2b_ips(p, "postern[logtype=journal]", conf,
                          ["-d", "{NONE}"])
        else:
            ips = f2b_ips(p, "postern", conf)
        assert ips == [SRC] * real, (journal, ips, real)
    # The old greedy filter, that a forged value fooled: now only SRC.
    ips = f2b_ips(log_path, OLD_FILTER)
    assert ips and set(ips) == {SRC}, ips


def test_jail_reads(tmp_path):
    """The shipped jail and filter load in fail2ban (Debian's): the
    jail's filter is ours, with its journalmatch."""
    conf = f2b_conf(tmp_path)
    p = subprocess.run(["fail2ban-client", "-c", conf, "-d"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=120)
    out = p.stdout + p.stderr
    assert "'postern'" in out, out[-3000:]
    assert "SYSLOG_IDENTIFIER=postern" in out, out[-3000:]
    assert "guard" in out, out[-3000:]
