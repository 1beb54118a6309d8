"""Outbound delivery to a real Postfix (issue 9: "a second Postfix
instance" among the receiving servers): a private instance on
127.0.0.50:25 (and .51:25, where it hides 8BITMIME and SMTPUTF8) receives
mail for pf.example into virtual Maildirs, over STARTTLS with a
self-signed certificate. The MX records come from NSD
(outbound_fixtures.py). What arrives is read from Postfix's Maildirs and
its log, not from postern's word.

Every wait is bounded; nothing is timed.
"""

import os
import pwd
import grp

import pytest

from conftest import ALICE, ALICE_PW
from helpers import wait_for
from outbound_fixtures import DnsServer
from postfix_instance import (PostfixInstance, need_postfix, running,
                              self_signed)
from test_outbound import LINE_RE, bounces, log_lines, report_fields

WAIT = 30.0
MX, MX_NO8 = "127.0.0.50", "127.0.0.51"
USERS = ("ann", "ben")

ZONES = {
    "pf.example": ["@ IN MX 10 mx.pf.example.", "mx IN A " + MX],
    "pf8.example": ["@ IN MX 10 mx.pf8.example.", "mx IN A " + MX_NO8],
}


class ReceivingPostfix(PostfixInstance):
    """Postfix as a domain's MX: virtual mailboxes for pf.example and
    pf8.example, TLS offered, a 200,000-octet message size limit."""

    prefix = "postern-out-pf-"

    def __init__(self):
        super().__init__(MX, 25)
        self.vmail = os.path.join(self.base, "vmail")
        self.maps = os.path.join(self.base, "vmailbox")
        self.owner = pwd.getpwnam("nobody").pw_uid
        self.group = grp.getgrnam("nogroup").gr_gid

    def main_cf(self):
        cf = super().main_cf()
        cf.update({
            "myhostname": "mx.pf.example",
            "mydomain": "pf.example",
            "mydestination": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.1/32",
            "local_transport": "error:no local delivery",
            "default_transport": "error:no relaying",
            "relay_transport": "error:no relaying",
            "virtual_mailbox_domains": "pf.example, pf8.example",
            "virtual_mailbox_base": self.vmail,
            "virtual_mailbox_maps": "texthash:" + self.maps,
            "virtual_uid_maps": "static:%d" % self.owner,
            "virtual_gid_maps": "static:%d" % self.group,
            "virtual_minimum_uid": "1",
            "smtpd_tls_security_level": "may",
            "smtpd_tls_cert_file": self.cert,
            "smtpd_tls_key_file": self.key,
            "smtpd_tls_loglevel": "1",
            "smtpd_tls_received_header": "yes",
            "message_size_limit": "200000",
        })
        return cf

    def services(self):
        return [
            ("%s:25" % MX, "inet", "n", "-", "n", "-", "-", "smtpd"),
            ("%s:25" % MX_NO8, "inet", "n", "-", "n", "-", "-",
             "smtpd -o smtpd_discard_ehlo_keywords=8bitmime,smtputf8"),
        ]

    def setup(self):
        os.makedirs(self.vmail, exist_ok=True)
        os.chown(self.vmail, self.owner, self.group)
        with open(self.maps, "w") as f:
            for domain in ZONES:
                for u in USERS:
                    f.write("%s@%s %s/%s/\n" % (u, domain, domain, u))
        self_signed(self.cert, self.key, "mx.pf.example")
        super().setup()

    def messages(self, addr):
        """The messages in addr's Maildir (bytes), by file name."""
        user, domain = addr.split("@")
        new = os.path.join(self.vmail, domain, user, "new")
        try:
            names = sorted(os.listdir(new))
        except FileNotFoundError:
            return []
        out = []
        for n in names:
            with open(os.path.join(new, n), "rb") as f:
                out.append(f.read())
        return out


@pytest.fixture(scope="module")
def postfix():
    need_postfix()
    yield from running(ReceivingPostfix())


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    server = DnsServer(tmp_path_factory.mktemp("dns"), zones=ZONES,
                       signed=()).start()
    yield server
    server.stop()


@pytest.fixture
def srv(make_server, dns, postfix):
    opts = dict(dns.directives())
    opts.update({"retry-min": "1s", "retry-max": "2s"})
    return make_server(submission=True, outbound_delivery="yes", **opts)


def submit(srv, rcpts, body, mail_options=()):
    with srv.smtp_sub(login=(ALICE, ALICE_PW)) as s:
        s.sendmail(ALICE, rcpts, body, mail_options=list(mail_options))


def body_of(raw):
    return raw.split(b"\n\n", 1)[1] if b"\n\n" in raw else b""


def test_delivered_to_postfix_over_tls(srv, postfix):
    """Two recipients, one session and one transaction, over STARTTLS;
    lines starting with a dot, a long line and 8-bit text arrive as they
    were sent."""
    long_line = b"x" * 990
    text = ("From: alice@local.test\r\nSubject: to Postfix\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
            ".leading dot\r\n..two dots\r\n.\r\nt\u00e9l\u00e9phone\r\n"
            ).encode() + long_line + b"\r\nend\r\n"
    start = len(postfix.log())
    submit(srv, ["ann@pf.example", "ben@pf.example"], text,
           ["BODY=8BITMIME"])
    for u in ("ann@pf.example", "ben@pf.example"):
        assert wait_for(lambda: postfix.messages(u), WAIT), \
            (srv.log()[-3000:], postfix.log_tail())
    for u in ("ann@pf.example", "ben@pf.example"):
        got = postfix.messages(u)
        assert len(got) == 1, got
        # Postfix stores its Maildir files with LF line ends.
        want = text.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")
        assert body_of(got[0]) == want
        assert b"(using TLSv1.3" in got[0], got[0][:800]
    assert wait_for(lambda: len(log_lines(srv, "sent")) == 2, 10)
    for line in log_lines(srv, "sent"):
        m = LINE_RE.search(line)
        assert m and m["relay"] == "mx.pf.example[%s]:25" % MX, line
        assert m["dsn"] == "2.0.0", line
    assert "tls=TLSv1.3" in srv.log()
    pf = postfix.log()[start:]
    assert pf.count("connect from") - pf.count("disconnect from") == 1, pf
    assert "nrcpt=2" in pf, pf
    assert not bounces(srv)


def test_postfix_refuses_one_recipient(srv, postfix):
    """Postfix's 550 5.1.1 to one RCPT fails that recipient only: ann
    gets the mail, the sender a bounce for the other with Postfix's
    reply."""
    before = len(postfix.messages("ann@pf.example"))
    submit(srv, ["ann@pf.example", "nosuch@pf.example"],
           b"From: alice@local.test\r\nSubject: one refused\r\n\r\nhi\r\n")
    assert wait_for(lambda: len(postfix.messages("ann@pf.example")) ==
                    before + 1, WAIT), (srv.log()[-3000:],
                                        postfix.log_tail())
    assert wait_for(lambda: bounces(srv), WAIT), srv.log()[-3000:]
    f = report_fields(bounces(srv)[0])
    assert f["Final-Recipient"] == "rfc822; nosuch@pf.example"
    assert f["Action"] == "failed" and f["Status"] == "5.1.1", f
    assert f["Remote-MTA"] == "dns; mx.pf.example", f
    assert f["Diagnostic-Code"].startswith("smtp; 550 5.1.1"), f
    assert wait_for(lambda: log_lines(srv, "bounced", "nosuch@pf.example"),
                    10)
    assert log_lines(srv, "sent", "ann@pf.example")


def test_too_big_for_postfix_bounces_before_data(srv, postfix):
    """Postfix announces SIZE 200000: a larger message bounces with
    5.3.4 and is never offered (no MAIL reaches Postfix)."""
    start = len(postfix.log())
    big = (b"From: alice@local.test\r\nSubject: big\r\n\r\n" +
           (b"y" * 998 + b"\r\n") * 250)
    submit(srv, ["ben@pf.example"], big)
    assert wait_for(lambda: bounces(srv), WAIT), srv.log()[-3000:]
    f = report_fields(bounces(srv)[0])
    assert f["Status"] == "5.3.4", f
    assert "exceeds the limit of 200000" in f["Diagnostic-Code"], f
    assert wait_for(lambda: "disconnect from" in postfix.log()[start:], 10)
    pf = postfix.log()[start:]
    assert "from=<alice@local.test>" not in pf, pf
    assert "reject:" not in pf, pf


@pytest.mark.parametrize("rcpt,body,options,status", [
    ("ann@pf8.example",
     "From: alice@local.test\r\nSubject: 8bit\r\n\r\nt\u00e9l\u00e9\r\n",
     ["BODY=8BITMIME"], "5.6.3"),
    ("j\u00f6e@pf8.example",
     "From: alice@local.test\r\nSubject: utf8\r\n\r\nhi\r\n",
     ["SMTPUTF8", "BODY=8BITMIME"], "5.6.7"),
])
def test_postfix_without_extension_bounces(srv, postfix, rcpt, body,
                                           options, status):
    """The .51 service hides 8BITMIME and SMTPUTF8 from its EHLO: 8-bit
    content bounces 5.6.3, a UTF-8 address 5.6.7 (RFC 6531 3.4), and
    nothing is sent there."""
    start = len(postfix.log())
    submit(srv, [rcpt], body.encode(), options)
    assert wait_for(lambda: bounces(srv), WAIT), srv.log()[-3000:]
    f = report_fields(bounces(srv)[0])
    assert f["Status"] == status, f
    pf = postfix.log()[start:]
    assert "from=<alice@local.test>" not in pf, pf
    assert not postfix.messages("ann@pf8.example")
