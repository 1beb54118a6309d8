"""`postern probe` against a Postfix the test configures badly, on
loopback (issue 11): an open relay for everyone (mynetworks 0.0.0.0/0),
AUTH in clear text (Cyrus SASL, smtpd_tls_auth_only no), TLS 1.0 and the
"export" cipher grade with every suite OpenSSL has at security level 0,
the version in the banner, VRFY on, bare newlines accepted. Each is
reported as fail, exit 1, grade F.

The instance is private: its own config, queue and data directories under
/var/tmp (Postfix's unprivileged daemons must reach them), two smtpd
services on free ports of 127.0.0.1 (plain with STARTTLS, and implicit TLS
with smtpd_tls_wrappermode), nothing delivered anywhere (every transport
is discard). It is stopped at teardown, and the test checks that its
master process is gone.

About "export ciphers": OpenSSL 1.1.0 removed the EXPORT suites and
Debian's OpenSSL 3 has no RC4 or 3DES either, so the weakest suites a
Postfix of today can offer are the anonymous (aNULL) and NULL (eNULL) ones:
nmap grades them F, as the probe does.
"""

import os

import pytest

from helpers import free_port
from postfix_instance import (PostfixInstance, need_postfix, running,
                              self_signed)
from test_probe import checks, role, run_json, run_probe

HOST = "bad.local.test"


class BadPostfix(PostfixInstance):
    """A private, deliberately badly configured Postfix instance."""

    prefix = "postern-probe-pf-"

    def __init__(self):
        super().__init__("127.0.0.1", free_port())
        self.sasl = os.path.join(self.base, "sasl")
        self.tls_port = free_port()
        while self.tls_port == self.port:
            self.tls_port = free_port()

    def main_cf(self):
        cf = super().main_cf()
        cf.update({
            "myhostname": HOST,
            "mydomain": "local.test",
            "mydestination": "$myhostname, localhost",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            # nothing leaves: every transport discards
            "local_transport": "discard:probe test",
            "default_transport": "discard:probe test",
            "relay_transport": "discard:probe test",
            # an open relay for everyone
            "mynetworks": "0.0.0.0/0",
            "smtpd_relay_restrictions":
                "permit_mynetworks, reject_unauth_destination",
            # the version in the banner, VRFY on
            "smtpd_banner": "$myhostname ESMTP $mail_name ($mail_version)",
            "disable_vrfy_command": "no",
            # AUTH in clear text
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "cyrus",
            "smtpd_sasl_path": "smtpd",
            "cyrus_sasl_config_path": self.sasl,
            "smtpd_sasl_security_options": "noanonymous",
            "smtpd_tls_auth_only": "no",
            "broken_sasl_auth_clients": "yes",
            # TLS 1.0 and every suite, anonymous and NULL ones included
            "smtpd_tls_security_level": "may",
            "smtpd_tls_cert_file": self.cert,
            "smtpd_tls_key_file": self.key,
            "smtpd_tls_protocols": ">=TLSv1",
            "smtpd_tls_mandatory_protocols": ">=TLSv1",
            "smtpd_tls_ciphers": "export",
            "smtpd_tls_mandatory_ciphers": "export",
            "tls_export_cipherlist": "ALL:COMPLEMENTOFALL:@SECLEVEL=0",
            # bare newlines end lines (Postfix 3.7's default, spelled out)
            "smtpd_forbid_bare_newline": "no",
        })
        return cf

    def services(self):
        return [
            ("127.0.0.1:%d" % self.port, "inet", "n", "-", "n", "-", "-",
             "smtpd"),
            ("127.0.0.1:%d" % self.tls_port, "inet", "n", "-", "n", "-",
             "-", "smtpd -o smtpd_tls_wrappermode=yes"),
        ]

    def setup(self):
        os.makedirs(self.sasl, exist_ok=True)
        self_signed(self.cert, self.key, HOST)
        with open(os.path.join(self.sasl, "smtpd.conf"), "w") as f:
            f.write("pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                    "mech_list: PLAIN LOGIN\nsasldb_path: %s/sasldb2\n"
                    % self.base)
        super().setup()


@pytest.fixture(scope="module")
def bad_postfix():
    need_postfix()
    yield from running(BadPostfix())


# What the bad configuration must make the probe report, per port.
FAILS_STARTTLS = ["banner.version", "tls.protocols", "tls.ciphers",
                  "auth.before_tls", "auth.plaintext_mechanisms",
                  "relay.open", "users.vrfy", "smuggling"]
FAILS_IMPLICIT = ["banner.version", "tls.protocols", "tls.ciphers",
                  "relay.open", "users.vrfy"]


def probe_postfix(pf, *extra):
    return run_json("127.0.0.1", "--ports",
                    "%d,%d/tls" % (pf.port, pf.tls_port), "--ca", pf.cert,
                    "--name", HOST, "--deliver-to", "root@" + HOST, *extra)


def test_probe_bad_postfix(bad_postfix):
    pf = bad_postfix
    rc, rep, err = probe_postfix(pf)
    assert rc == 1, (rep, err)
    assert rep["grade"] == "F", rep
    assert role(rep, pf.port) == "starttls"
    assert role(rep, pf.tls_port) == "implicit-tls"
    res = checks(rep, pf.port)
    for cid in FAILS_STARTTLS:
        assert res[cid][0] == "fail", (cid, res[cid])
    tls = checks(rep, pf.tls_port)
    for cid in FAILS_IMPLICIT:
        assert tls[cid][0] == "fail", (cid, tls[cid])
    for r in (res, tls):
        assert "Postfix" in r["banner.version"][1]
        assert "3.7" in r["banner.version"][1]
        assert r["tls.protocols"][1].startswith(
            "old TLS accepted: TLSv1.0 TLSv1.1 TLSv1.2 TLSv1.3"), \
            r["tls.protocols"]
        assert r["tls.ciphers"][1].startswith("least strength F"), \
            r["tls.ciphers"]
        assert "anonymous key exchange" in r["tls.ciphers"][1]
        assert "NULL cipher" in r["tls.ciphers"][1]
        assert "TLS_DH_anon_WITH_AES_256_GCM_SHA384" in r["tls.ciphers"][1]
        assert "TLS_RSA_WITH_NULL_SHA256" in r["tls.ciphers"][1]
        assert r["relay.open"][1].startswith("open relay: "), r["relay.open"]
        assert "MAIL FROM:<> -> RCPT TO:<relaytest@example.net>" in \
            r["relay.open"][1]
        assert "a random name gets 550" in r["users.vrfy"][1]
        assert "root (252)" in r["users.vrfy"][1]
        # EXPN is not in Postfix: nothing to fail there
        assert r["users.expn"][0] == "pass", r["users.expn"]
    assert "AUTH gets 334" in res["auth.plaintext_mechanisms"][1]
    assert "<LF>.<LF>" in res["smuggling"][1]
    # no TLS before the first byte on 465: AUTH is offered only inside TLS
    assert tls["auth.before_tls"][0] == "pass"
    assert tls["auth.plaintext_mechanisms"][0] == "pass"
    # the certificate itself is fine (the test trusts it)
    assert res["tls.certificate"][0] == "pass", res["tls.certificate"]
    # STARTTLS injection (CVE-2011-0411) was fixed in Postfix 2.8
    assert res["tls.starttls"][0] == "pass", res["tls.starttls"]


def test_probe_bad_postfix_human(bad_postfix):
    pf = bad_postfix
    rc, out, err = run_probe("127.0.0.1", "--ports", str(pf.port),
                             "--ca", pf.cert, "--name", HOST)
    assert rc == 1, (out, err)
    lines = out.splitlines()
    assert lines[-1].startswith("grade: F (relay.open failed on port %d"
                                % pf.port), lines[-1]
    fails = [line.split()[1] for line in lines if line.startswith("  FAIL")]
    for cid in FAILS_STARTTLS:
        if cid != "smuggling":  # needs --deliver-to
            assert cid in fails, (cid, out)


def test_probe_bad_postfix_intrusive(bad_postfix):
    """No lockout (Postfix has none) and no connection limit (clients in
    mynetworks are exempt from anvil's limits): both fail."""
    pf = bad_postfix
    rc, rep, err = run_json("127.0.0.1", "--ports", str(pf.port),
                            "--ca", pf.cert, "--name", HOST, "--intrusive",
                            "--user", "nobody@" + HOST)
    assert rc == 1, (rep, err)
    res = checks(rep, pf.port)
    assert res["lockout"][0] == "fail", res["lockout"]
    assert "12 wrong passwords for nobody@%s" % HOST in res["lockout"][1]
    assert res["conn-limit"] == (
        "fail", "64 connections at once from one address, all greeted: "
                "no limit up to 64"), res["conn-limit"]
