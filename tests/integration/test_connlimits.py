"""Per-address limits that real clients fit in (issue 7 item 4,
docs/lockout.md "Per-address limits"): the defaults are 50 open sessions
and 300 new ones a minute per client address; `conn-limit-exempt
NETWORK...` lifts both for the networks it names (the lockout still
applies there); the built-in development configuration exempts
127.0.0.0/8 and ::1, so that Postfix's smtp-source, one message per
session over 20 at a time, gets 2,000 messages through after `make run`.

The built-in configuration listens on fixed ports (2025, 2587, 2525, 2465):
as in test_devconfig.py, the suite runs alone and uses them as they are.
"""

import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import Server, finish
from helpers import RawClient, list_dir, plain_b64, wait_for

SMTP_SOURCE = "/usr/sbin/smtp-source"  # Debian's postfix package
DEMO = "demo@example.test"
N_MESSAGES = 2000
CONN_TOO_MANY = b"421 4.7.0 Too many connections from your address\r\n"
CONN_TOO_FAST = (b"421 4.7.0 Too many connections from your address, "
                 b"slow down\r\n")
CONN_LOCKED = b"421 4.7.0 Access temporarily refused\r\n"


def smtp_source():
    path = shutil.which("smtp-source") or SMTP_SOURCE
    if not os.access(path, os.X_OK):
        pytest.fail("smtp-source not found (Debian package postfix, in "
                    "the Makefile's PKGS: run `make deps`)")
    return path


def greeting_of(port, source):
    """Connect from `source` and read everything until the server closes
    (a refusal closes at once) or 5 s pass: (bytes, eof)."""
    c = RawClient(port, source=source)
    got = c.pending(5.0)
    eof = c.eof
    c.close()
    return got, eof


def greets(port, source):
    """Connect from `source`; the first reply's code (220 or 421)."""
    with RawClient(port, source=source) as c:
        return c.reply().code


def test_builtin_config_takes_smtp_source_2000(tmp_path):
    """`make run`, then smtp-source -s 20 -m 2000 to demo@example.test:
    every message arrives (before: conn-rate-per-address 60 a minute
    turned most sessions away with 421)."""
    srv = Server(tmp_path / "dev", builtin=True, port=2025)
    srv.listen = ["127.0.0.1:2025 mx", "[::1]:2025 mx",
                  "127.0.0.1:2587 submission", "127.0.0.1:2525 submission",
                  "127.0.0.1:2465 submissions"]
    os.remove(srv.conf)  # not used: no -c
    new = os.path.join(srv.root, "var", "mail", "example.test", "demo",
                       "Maildir", "new")
    try:
        srv.start()
        t0 = time.monotonic()
        p = subprocess.run(
            [smtp_source(), "-s", "20", "-m", str(N_MESSAGES), "-f",
             "sender@example.org", "-t", DEMO, "-M", "client.example",
             "127.0.0.1:2025"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, timeout=600, text=True)
        took = time.monotonic() - t0
        assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
        assert wait_for(lambda: len(list_dir(new)) >= N_MESSAGES, 60), \
            "%d of %d in Maildir/new" % (len(list_dir(new)), N_MESSAGES)
        assert len(list_dir(new)) == N_MESSAGES
        log = srv.log()
        assert "conn-refused" not in log, \
            [l for l in log.splitlines() if "conn-refused" in l][:5]
        print("smtp-source: %d messages, 20 sessions at a time, %.1f s"
              % (N_MESSAGES, took))
    finally:
        finish(srv)


def test_non_exempt_address_still_limited(make_server):
    """conn-limit-exempt 127.0.0.5: 127.0.0.5 is never refused by the
    limits (nor counted), 127.0.0.4 is, as before; a lock still turns
    127.0.0.5 away."""
    srv = make_server(submission=True, conn_limit_per_address=3,
                      conn_rate_per_address=8, auth_address_failures=3,
                      conn_limit_exempt="127.0.0.5")
    port = srv.sub_port("587")
    # concurrency: 3 held from 127.0.0.4, the 4th is refused
    held = []
    for _ in range(3):
        c = RawClient(port, source="127.0.0.4")
        c.greeting()
        held.append(c)
    got, eof = greeting_of(port, "127.0.0.4")
    assert got == CONN_TOO_MANY and eof, got
    # 127.0.0.5: 12 held at once, well past both limits
    exempt = []
    for _ in range(12):
        c = RawClient(port, source="127.0.0.5")
        c.greeting()
        exempt.append(c)
    for c in held + exempt:
        c.close()
    # The guard counts a session as gone when its worker reports the close;
    # with two workers that report can trail the next connect, so let the
    # 15 closes reach the log (and the guard) first.
    wait_for(lambda: srv.log().count("disconnect reason=") >= 15)
    time.sleep(0.3)
    # rate: 127.0.0.4 has used 3 of its 8 a minute (refills slowly);
    # within 8 more it is refused; 127.0.0.5 never
    codes = []
    while len(codes) < 8 and 421 not in codes:
        codes.append(greets(port, "127.0.0.4"))
    assert codes[-1] == 421 and codes.count(220) >= 4, codes
    for i in range(20):
        assert greets(srv.port, "127.0.0.5") == 220, i
    log = srv.log()
    assert re.search(r"conn-refused client=127\.0\.0\.4 reason=too-many",
                     log), log
    assert re.search(r"conn-refused client=127\.0\.0\.4 reason=too-fast",
                     log), log
    assert "conn-refused client=127.0.0.5" not in log, log

    # the lockout still applies to an exempt address
    c = srv.sub("587", source="127.0.0.5")
    for i in range(3):
        r = c.cmd("AUTH PLAIN " + plain_b64("nobody%d@local.test" % i,
                                           "guess"))
        assert r.code == 535, r
    c.close()
    assert srv.wait_log(lambda t: "lock kind=address key=127.0.0.5/32" in t,
                        5)
    got, eof = greeting_of(port, "127.0.0.5")
    assert got == CONN_LOCKED and eof, got
