"""The built-in development configuration (docs/config.md "Built-in
configuration"; issue 3 items 1 and 2): `postern serve -f` without -c, in
an empty directory, makes var/users with demo@example.test and prints its
password, makes a self-signed certificate under var/tls, and listens on
127.0.0.1: 2025 mx, 2587 and 2525 submission, 2465 submissions. The ports
are fixed; the suite runs alone, so they are used as they are.
"""

import os
import re
import smtplib

from conftest import Server, finish
from helpers import RawClient, pem_to_der, plain_b64, read_file, tls_context

DEMO = "demo@example.test"


def test_builtin_development_configuration(tmp_path):
    srv = Server(tmp_path / "dev", builtin=True, port=2025)
    srv.listen = ["127.0.0.1:2025 mx", "[::1]:2025 mx",
                  "127.0.0.1:2587 submission", "127.0.0.1:2525 submission",
                  "127.0.0.1:2465 submissions"]
    os.remove(srv.conf)  # not used: no -c
    try:
        srv.start()
        out = srv.stdout()
        m = re.search(r"created demo user demo@example\.test, password (\S+)",
                      out)
        assert m, out
        password = m.group(1)
        var = os.path.join(srv.root, "var")
        users = read_file(os.path.join(var, "users")).decode()
        assert re.search(r"^demo@example\.test:\{ARGON2ID\}\$argon2id\$",
                         users, re.M), users
        assert password not in users
        assert os.stat(os.path.join(var, "users")).st_mode & 0o077 == 0
        cert = os.path.join(var, "tls", "cert.pem")
        key = os.path.join(var, "tls", "key.pem")
        assert os.stat(key).st_mode & 0o777 == 0o600
        der = pem_to_der(cert)

        ctx = tls_context(cafile=cert)
        # 2587 and 2525: STARTTLS, AUTH, relay
        for port in (2587, 2525):
            c = RawClient(port)
            c.greeting()
            r = c.expect_cmd("EHLO c.example", 250)
            assert "STARTTLS" in r.lines and "AUTH PLAIN LOGIN" not in r.lines
            c.starttls(ctx)
            assert c.sock.getpeercert(binary_form=True) == der
            r = c.expect_cmd("EHLO c.example", 250)
            assert "AUTH PLAIN LOGIN" in r.lines, r
            c.expect_cmd("AUTH PLAIN " + plain_b64(DEMO, password), 235)
            c.expect_cmd("MAIL FROM:<%s>" % DEMO, 250)
            c.expect_cmd("RCPT TO:<someone@example.net>", 250)
            c.close()
        # 2465: implicit TLS, smtplib
        with smtplib.SMTP_SSL("127.0.0.1", 2465, context=ctx,
                              local_hostname="client.example",
                              timeout=15) as s:
            s.ehlo()
            code, _ = s.login(DEMO, password)
            assert code == 235
        # 2025: mx, no AUTH; mail to demo arrives
        c = RawClient(2025)
        c.greeting()
        r = c.expect_cmd("EHLO c.example", 250)
        assert not any(k.startswith("AUTH") for k in r.lines), r
        c.expect_cmd("MAIL FROM:<s@example.org>", 250)
        c.expect_cmd("RCPT TO:<%s>" % DEMO, 250)
        r = c.cmd("RCPT TO:<x@example.net>")
        assert r.code == 554, r
        c.expect_cmd("DATA", 354)
        c.send(b"Subject: dev\r\n\r\nhello demo\r\n.\r\n")
        assert c.reply().code == 250
        c.close()
        new = os.path.join(var, "mail", "example.test", "demo", "Maildir",
                           "new")
        assert len(os.listdir(new)) == 1
        srv.stop()

        # a second start keeps the users file and the certificate, and
        # says the password again
        before = read_file(os.path.join(var, "users"))
        srv.start()
        assert read_file(os.path.join(var, "users")) == before
        assert pem_to_der(cert) == der
        assert "password %s" % password in srv.stdout().split(
            "development configuration")[-1], srv.stdout()
        c = RawClient(2465, tls=ctx)
        c.greeting()
        c.expect_cmd("EHLO c.example", 250)
        c.expect_cmd("AUTH PLAIN " + plain_b64(DEMO, password), 235)
        c.close()
    finally:
        finish(srv)
