"""Outbound routing through real DNS (docs/outbound.md, issue 9):
`postern route DOMAIN` runs the queue's own lookup code (libunbound on
the event loop) against NSD serving signed and unsigned test zones
(outbound_fixtures.py), so MX order, implicit MX, null MX (RFC 7505), a
missing domain, hosts without addresses and the DNSSEC states secure,
insecure and bogus are checked on real answers.
"""

import os
import subprocess

import pytest

from conftest import postern_bin
from outbound_fixtures import DnsServer

EX_TEMPFAIL = 75
EX_UNAVAILABLE = 69


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    server = DnsServer(tmp_path_factory.mktemp("dns")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def conf(dns, tmp_path_factory):
    root = tmp_path_factory.mktemp("route")
    path = os.path.join(str(root), "postern.conf")
    with open(path, "w") as f:
        f.write("hostname out.example.org\n"
                "domains example.org\n"
                "listen 127.0.0.1:2999 mx\n"
                "spool %s/spool\n" % root)
        for k, v in dns.directives().items():
            f.write("%s %s\n" % (k, v))
    return path


def route(conf, domain):
    r = subprocess.run([postern_bin(), "route", "-c", conf, domain],
                       capture_output=True, text=True, timeout=60)
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr
    return r.returncode, r.stdout.splitlines()


def test_secure_mx_in_order(conf):
    rc, out = route(conf, "secure.example")
    assert rc == 0, out
    assert out == ["mx secure",
                   "host mx1.secure.example pref 10 secure 127.0.0.2",
                   "host mx2.secure.example pref 20 secure ::1 127.0.0.3"]


def test_insecure_zone(conf):
    rc, out = route(conf, "insecure.example")
    assert rc == 0
    assert out == ["mx insecure",
                   "host mx.insecure.example pref 10 insecure 127.0.0.2"]


def test_bogus_is_a_temporary_failure(conf):
    rc, out = route(conf, "bogus.example")
    assert rc == EX_TEMPFAIL
    assert len(out) == 1 and out[0].startswith(
        "error 4.7.5 DNSSEC validation failed for bogus.example")


def test_implicit_mx(conf):
    """RFC 5321 5.1: no MX records, the domain's own address."""
    rc, out = route(conf, "implicit.insecure.example")
    assert rc == 0
    assert out == ["mx implicit insecure",
                   "host implicit.insecure.example pref 0 insecure "
                   "127.0.0.4"]


@pytest.mark.parametrize("domain", ["nullmx.secure.example",
                                    "nullmx.insecure.example"])
def test_null_mx(conf, domain):
    """RFC 7505: bounce at once with 5.1.10."""
    rc, out = route(conf, domain)
    assert rc == EX_UNAVAILABLE
    assert out == ["error 5.1.10 domain %s does not accept mail (null MX)"
                   % domain]


def test_no_such_domain(conf):
    rc, out = route(conf, "nothere.insecure.example")
    assert rc == EX_UNAVAILABLE
    assert out == ["error 5.1.2 domain nothere.insecure.example not found"]


def test_mx_without_address(conf):
    rc, out = route(conf, "noaddr.insecure.example")
    assert rc == EX_UNAVAILABLE
    assert out == ["error 5.4.4 the mail servers of noaddr.insecure.example "
                   "have no IPv6 or IPv4 address"]


def test_resolver_down_is_temporary(conf, tmp_path):
    """No DNS server answers: a temporary failure, never a bounce."""
    path = os.path.join(str(tmp_path), "down.conf")
    with open(conf) as f, open(path, "w") as g:
        for line in f:
            if line.startswith("dns-resolver"):
                line = "dns-resolver 127.0.0.1:9\n"
            g.write(line)
    rc, out = route(path, "secure.example")
    assert rc == EX_TEMPFAIL, out
    assert out[0].startswith("error 4.")


def test_no_trust_anchor_means_insecure(conf, tmp_path):
    """`dns-trust-anchor none`: validation off, the signed zone is
    answered but not called secure; a bogus one is not noticed."""
    path = os.path.join(str(tmp_path), "none.conf")
    with open(conf) as f, open(path, "w") as g:
        for line in f:
            if line.startswith("dns-trust-anchor"):
                line = "dns-trust-anchor none\n"
            g.write(line)
    rc, out = route(path, "secure.example")
    assert rc == 0
    assert out[0] == "mx insecure"
    rc, out = route(path, "bogus.example")
    assert rc == 0
    assert out[0] == "mx insecure"
