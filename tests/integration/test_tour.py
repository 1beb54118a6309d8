"""The README's five-minute tour, command for command, with swaks against
the built-in development configuration (issue 7 item 6: the tour's
`swaks --tls` once failed on a fresh machine for want of Net::SSLeay).
The ports are the built-in ones (2025, 2587, 2465); the suite runs alone.
"""

import os
import re
import subprocess

import pytest

from conftest import Server, finish

DEMO = "demo@example.test"


def swaks(*args):
    p = subprocess.run(["swaks", "--server", "127.0.0.1", *args],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


@pytest.fixture
def dev(tmp_path):
    srv = Server(tmp_path / "dev", builtin=True, port=2025)
    srv.listen = ["127.0.0.1:2025 mx", "[::1]:2025 mx",
                  "127.0.0.1:2587 submission", "127.0.0.1:2525 submission",
                  "127.0.0.1:2465 submissions"]
    os.remove(srv.conf)  # not used: no -c
    srv.start()
    m = re.search(r"created demo user demo@example\.test, password (\S+)",
                  srv.stdout())
    assert m, srv.stdout()
    srv.password = m.group(1)
    yield srv
    finish(srv)


def test_tour(dev):
    var = os.path.join(dev.root, "var")
    new = os.path.join(var, "mail", "example.test", "demo", "Maildir", "new")
    pw = dev.password

    # mx: a message to demo arrives; relay and unknown users are refused
    rc, out = swaks("--port", "2025", "--from", "someone@example.org",
                    "--to", DEMO)
    assert rc == 0 and "250 2.0.0 Ok: queued as" in out, out
    assert len(os.listdir(new)) == 1
    rc, out = swaks("--port", "2025", "--to", "victim@example.net")
    assert rc != 0 and "554 5.7.1" in out, out
    rc, out = swaks("--port", "2025", "--to", "nobody@example.test")
    assert rc != 0 and "550 5.1.1" in out, out

    # submission: STARTTLS on 2587 to a remote address, implicit TLS on
    # 2465 to the Maildir
    rc, out = swaks("--port", "2587", "--tls", "--auth", "PLAIN",
                    "--auth-user", DEMO, "--auth-password", pw,
                    "--from", DEMO, "--to", "friend@example.net")
    assert rc == 0 and "235 " in out and "queued as" in out, out
    rc, out = swaks("--port", "2465", "--tlsc", "--auth", "LOGIN",
                    "--auth-user", DEMO, "--auth-password", pw,
                    "--from", DEMO, "--to", DEMO,
                    "--header", "Subject: tour 2465")
    assert rc == 0 and "235 " in out and "queued as" in out, out
    # (a bounce for example.net may land here too where DNS answers)
    texts = [open(os.path.join(new, f), "rb").read() for f in os.listdir(new)]
    assert any(b"Subject: tour 2465" in t for t in texts), texts

    # what must fail does
    rc, out = swaks("--port", "2587", "--to", "friend@example.net",
                    "--auth", "PLAIN", "--auth-user", DEMO,
                    "--auth-password", "x")
    assert rc != 0 and "235 " not in out, out
    rc, out = swaks("--port", "2587", "--to", "friend@example.net",
                    "--tls", "--auth", "PLAIN", "--auth-user", DEMO,
                    "--auth-password", "wrong")
    assert rc != 0 and "535 5.7.8" in out, out
    rc, out = swaks("--port", "2587", "--tls", "--auth", "PLAIN",
                    "--auth-user", DEMO, "--auth-password", pw,
                    "--from", "boss@example.test", "--to",
                    "friend@example.net")
    assert rc != 0 and "553 5.7.1" in out, out
