"""postmaster and abuse (issue 7 item 2: RFC 5321 section 4.5.1, RFC 2142)
and our own domains as senders on port 25 (item 3, mx-local-senders)."""

import pytest

from conftest import ALICE, ALICE_PW
from helpers import read_file, wait_for


def delivered(server, user, before, n=1):
    """The files new in user's Maildir (local.test) since `before`."""
    new = wait_for(lambda: len(set(server.new_files(user)) - before) >= n,
                   5)
    assert new, "nothing delivered to %s" % user
    files = set(server.new_files(user)) - before
    assert len(files) == n, files
    return [read_file(f) for f in sorted(files)]


def snap(server, *users):
    return {u: set(server.new_files(u)) for u in users}


def send(c, sender, rcpts, body=b"Subject: role\r\n\r\nhello\r\n"):
    """One transaction; returns the RCPT replies and the final reply."""
    c.expect_cmd("MAIL FROM:<%s>" % sender, 250)
    replies = [c.cmd("RCPT TO:<%s>" % r) for r in rcpts]
    final = None
    if any(r.code == 250 for r in replies):
        c.expect_cmd("DATA", 354)
        c.send(body + b".\r\n")
        final = c.reply()
    return replies, final


def test_roles_without_postmaster_directive(server):
    """postmaster@ (any case), <Postmaster> alone and abuse@ are accepted
    and delivered to Maildirs of their own under the template."""
    before = snap(server, "postmaster", "abuse")
    with server.client() as c:
        c.ehlo()
        replies, final = send(c, "s@example.org",
                              ["PostMaster@LOCAL.test", "Postmaster",
                               "abuse@local.test"])
        assert [r.code for r in replies] == [250, 250, 250], replies
        assert final.code == 250 and final.queue_id, final
        # postmaster of another domain is not ours; abuse alone needs a
        # domain
        c.expect_cmd("MAIL FROM:<s@example.org>", 250)
        c.expect_cmd("RCPT TO:<postmaster@example.net>", 554, "5.7.1")
        c.expect_cmd("RCPT TO:<abuse>", 501)
    # postmaster@ and <Postmaster> are one Maildir, delivered once
    delivered(server, "postmaster", before["postmaster"])
    delivered(server, "abuse", before["abuse"])


def test_postmaster_directive(make_server):
    srv = make_server(postmaster=ALICE)
    before = snap(srv, "alice", "postmaster", "abuse")
    with srv.client() as c:
        c.ehlo()
        replies, final = send(c, "s@example.org",
                              ["postmaster@local.test", "abuse@local.test"])
        assert [r.code for r in replies] == [250, 250], replies
        assert final.code == 250, final
    delivered(srv, "alice", before["alice"])
    assert set(srv.new_files("postmaster")) == before["postmaster"]
    assert set(srv.new_files("abuse")) == before["abuse"]
    # `postern check` takes the new directives, and refuses a postmaster
    # outside our domains
    srv.cli("check", check=True)


def test_postmaster_outside_domains_refused(make_server):
    srv = make_server(start=False, postmaster="someone@example.net")
    srv.write_config()
    p = srv.cli("check")
    assert p.returncode == 1, p
    assert "postmaster" in p.stderr and "not in domains" in p.stderr, \
        p.stderr


def test_mx_local_sender_refused(server):
    """A sender in our domains without AUTH on mx: 550 5.7.1 with its own
    log reason, at each recipient but postmaster and abuse, which still
    get the mail; the null sender is not affected."""
    before = snap(server, "alice", "abuse")
    log_start = len(server.log())
    with server.client() as c:
        c.ehlo()
        replies, final = send(c, "alice@local.test",
                              ["alice@local.test", "abuse@local.test"])
        assert replies[0].is_(550, "5.7.1"), replies
        assert replies[1].code == 250, replies
        assert final.code == 250, final
        replies, final = send(c, "", ["alice@local.test"])
        assert replies[0].code == 250 and final.code == 250
    assert server.wait_log(lambda t: "reason=mx-local-sender" in t,
                           start=log_start)
    delivered(server, "abuse", before["abuse"])
    delivered(server, "alice", before["alice"])


def test_mx_local_senders_accept(make_server):
    srv = make_server(mx_local_senders="accept")
    before = snap(srv, "bob")
    with srv.client() as c:
        c.ehlo()
        replies, final = send(c, "alice@local.test", ["bob@local.test"])
        assert replies[0].code == 250 and final.code == 250
    delivered(srv, "bob", before["bob"])


def test_redirected_spam_to_abuse(sub_server):
    """An authenticated user reports spam by redirecting it to abuse@,
    its From: unchanged: the From: check does not refuse it; to abuse
    and someone else, it does."""
    srv = sub_server
    before = snap(srv, "abuse")
    spam = (b"From: Spammer <ceo@local.test>\r\nSubject: buy now\r\n\r\n"
            b"cheap\r\n")
    with srv.sub("465", auth=(ALICE, ALICE_PW)) as c:
        replies, final = send(c, ALICE, ["abuse@local.test"], spam)
        assert final.code == 250, final
        replies, final = send(c, ALICE, ["abuse@local.test",
                                         "bob@local.test"], spam)
        assert final.is_(550, "5.7.1"), final
    got = delivered(srv, "abuse", before["abuse"])
    assert b"Spammer <ceo@local.test>" in got[0]


@pytest.mark.parametrize("rcpt", ["postmaster@local.test", "Postmaster"])
def test_postmaster_still_gets_protocol_errors(server, rcpt):
    """Protocol rules still apply to mail for postmaster: a bare LF in the
    content refuses it."""
    before = snap(server, "postmaster")
    with server.client() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.org>", 250)
        c.expect_cmd("RCPT TO:<%s>" % rcpt, 250)
        c.expect_cmd("DATA", 354)
        c.send(b"Subject: x\r\n\r\nbare\nLF\r\n.\r\n")
        c.expect(550, "5.5.2")
    assert set(server.new_files("postmaster")) == before["postmaster"]
