"""MTA-STS (RFC 8461) beyond one lookup: every address of the policy
host, the cache's expiry on disk, and the proactive refresh (3.3).

As test_outbound_mtasts.py: NSD serves a zone per domain, the receiving
server is a second postern on 127.0.0.30:25 (certificate for
mx.sts2.example), the policy server Python's http.server over TLS on
127.0.0.31:443. Nothing listens on 127.0.0.32-34 nor on [::1]:443
(refused at once). The resolver gives a name's IPv4 addresses in an
order of its own (round robin) but IPv6 first: mta-sts.DOMAIN of the
address tests has ::1 and three dead IPv4 addresses before the policy
server's, so that its first address is always a dead one.

The cache sweep and refresh pass runs every minute; the tests that wait
for it set $POSTERN_TEST_MTASTS_TICK (a -Dtest_hooks=true build, as
`make integration` makes: the queue process logs `mta-sts test-hook
tick=N`), the others set it to 0 (no pass: what they see is the lookup's
own doing).
"""

import os
import time

import pytest

from helpers import list_dir, wait_for
from outbound_fixtures import DnsServer
from test_outbound_mtasts import (PolicyServer, delivered, lines,
                                  make_policy_cert, submit)

WAIT = 30.0
RCV_ADDR = "127.0.0.30"
HTTPS_ADDR = "127.0.0.31"
DEAD = ["127.0.0.32", "127.0.0.33", "127.0.0.34"]
MX = "mx.sts2.example"


def policy(mode, mx, max_age=86400):
    return "version: STSv1\nmode: %s\nmx: %s\nmax_age: %d\n" % (
        mode, mx, max_age)


OURS = policy("enforce", MX)
OTHER = policy("enforce", "mx.elsewhere.example")

# domain -> (TXT id, addresses of mta-sts.DOMAIN, policy)
DOMAINS = {
    # (a) ::1 first, the live policy server after dead ones
    "addrs.example": ("a1", ["::1"] + DEAD + [HTTPS_ADDR], OURS),
    "addrsdefer.example": ("a2", ["::1"] + DEAD + [HTTPS_ADDR], OTHER),
    "alldead.example": ("a3", ["::1"] + DEAD, OTHER),
    # (b)
    "expired.example": ("e1", [HTTPS_ADDR], OURS),
    "live.example": ("l1", [HTTPS_ADDR], OURS),
    "readexp.example": ("r1", [DEAD[0]], OTHER),
    "touch.example": ("t1", [HTTPS_ADDR], OURS),
    # (c)
    "refresh.example": ("new7", [HTTPS_ADDR], OURS),
    "refail.example": ("new8", [DEAD[1]], OURS),
    "stale.example": ("s1", [HTTPS_ADDR], OURS),
}


def zones():
    z = {"sts2.example": ["mx IN A " + RCV_ADDR]}
    for d, (txt_id, addrs, _) in DOMAINS.items():
        z[d] = ["@ IN MX 10 %s." % MX,
                "_mta-sts IN TXT \"v=STSv1; id=%s;\"" % txt_id] + \
            ["mta-sts IN %s %s" % ("AAAA" if ":" in a else "A", a)
             for a in addrs]
    return z


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from conftest import Server
    root = str(tmp_path_factory.mktemp("mtasts2"))
    rcv = Server(os.path.join(root, "rcv"), submission=True, hostname=MX,
                 domains=" ".join(DOMAINS),
                 mailbox=" ".join("bob@" + d for d in DOMAINS))
    rcv.listen = ["%s:25 mx" % RCV_ADDR]
    rcv.write_config()
    rcv.start()
    cert, key = make_policy_cert(root, list(DOMAINS))
    bundle = os.path.join(root, "ca-bundle.pem")
    with open(bundle, "w") as out:
        for path in (rcv.cert, cert):
            with open(path) as f:
                out.write(f.read())
    answers = {"mta-sts." + d: (200, "text/plain", v[2], {})
               for d, v in DOMAINS.items()}
    https = PolicyServer(HTTPS_ADDR, cert, key, answers)
    dns = DnsServer(os.path.join(root, "dns"), zones=zones(),
                    signed=()).start()
    w = {"rcv": rcv, "dns": dns, "https": https, "bundle": bundle}
    yield w
    https.stop()
    dns.stop()
    rcv.stop()


def sender(world, make_server, monkeypatch, tick):
    monkeypatch.setenv("POSTERN_TEST_MTASTS_TICK", str(tick))
    srv = make_server(submission=True, outbound_delivery="yes",
                      outbound_tls_ca=world["bundle"],
                      **world["dns"].directives())
    assert wait_for(lambda: "mta-sts test-hook tick=%d" % tick in srv.log(),
                    10), "needs a -Dtest_hooks=true build"
    return srv


def cache_dir(srv):
    return os.path.join(srv.spool, "queue", "mta-sts")


def cache_text(txt_id, expires, body, mailed=None):
    head = "postern-mta-sts 1\nid %s\nexpires %d\n" % (txt_id, expires)
    if mailed is not None:
        head += "mailed %d\n" % mailed
    return head + "\n" + body


def write_files(srv, files, links=()):
    """Cache entries written while the server is stopped, owned as the
    queue process made its directory; `links`: (name, target) symlinks."""
    d = cache_dir(srv)
    assert wait_for(lambda: os.path.isdir(d), 10)
    srv.stop()
    st = os.stat(d)
    for name, text in files.items():
        path = os.path.join(d, name)
        if text is None:
            os.mkdir(path)
        else:
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o600)
        os.chown(path, st.st_uid, st.st_gid)
    for name, target in links:
        os.symlink(target, os.path.join(d, name))
    srv.start()


def read(path):
    with open(path) as f:
        return f.read()


# --- (a) every address of the policy host --------------------------------


def test_policy_host_addresses_tried_in_turn(world, make_server,
                                             monkeypatch):
    """mta-sts.DOMAIN has five addresses: ::1 (asked first) and three
    more refuse, the policy server's gives the policy, which is enforced
    (a listed MX: verified TLS; an unlisted one: deferred)."""
    srv = sender(world, make_server, monkeypatch, 0)
    submit(srv, "bob@addrs.example")
    assert wait_for(lambda: delivered(world, "addrs.example"), WAIT), \
        srv.log()[-3000:]
    assert wait_for(lambda: lines(srv, "status=sent"), 10)
    assert "verified=mta-sts" in lines(srv, "tls relay=%s" % MX)[0]
    assert "mta-sts domain=addrs.example id=a1 mode=enforce " \
        "max_age=86400 policy=fetched" in srv.log(), srv.log()[-3000:]
    tried = [l.split(" addr=")[1].split()[0]
             for l in lines(srv, "domain=addrs.example fetch=")
             if "next=yes" in l]
    assert tried[0] == "::1" and set(tried[1:]) <= set(DEAD) and \
        len(set(tried)) == len(tried), tried
    submit(srv, "bob@addrsdefer.example")
    assert wait_for(lambda: lines(srv, "status=deferred"), WAIT), \
        srv.log()[-3000:]
    line = lines(srv, "status=deferred")[0]
    assert "dsn=4.7.5" in line and "does not list MX host %s" % MX in line
    assert not delivered(world, "addrsdefer.example")
    # one request each: the dead addresses never answered
    assert world["https"].hosts().count("mta-sts.addrs.example") == 1
    assert world["https"].hosts().count("mta-sts.addrsdefer.example") == 1


def test_policy_host_all_addresses_dead(world, make_server, monkeypatch):
    """No address answers: each of the four is tried once, then no policy
    (the mail goes with opportunistic TLS; the policy would have
    deferred it)."""
    srv = sender(world, make_server, monkeypatch, 0)
    submit(srv, "bob@alldead.example")
    assert wait_for(lambda: delivered(world, "alldead.example"), WAIT), \
        srv.log()[-3000:]
    tried = [l.split(" addr=")[1].split()[0]
             for l in lines(srv, "domain=alldead.example fetch=")
             if "next=yes" in l]
    assert len(tried) == 3 and tried[0] == "::1" and \
        set(tried[1:]) < set(DEAD), tried
    last = lines(srv, "domain=alldead.example fetch=mta-sts."
                 "alldead.example error=")
    assert last == [l for l in last if l.endswith(
        'error="connection failed" policy=none')] and len(last) == 1, last


# --- (b) expired cache files go -------------------------------------------


def test_sweep_removes_expired_keeps_live(world, make_server, monkeypatch,
                                          tmp_path):
    """The periodic pass removes an expired policy and an unfinished
    temporary file; a live policy, a symbolic link (to an expired
    policy outside), a directory and names this code does not write
    stay. Not one of these domains is mailed."""
    srv = sender(world, make_server, monkeypatch, 1)
    outside = tmp_path / "outside"
    outside.write_text(cache_text("x1", 1000, OURS))
    expired = cache_text("e1", 1000, OURS)
    live = cache_text("l1", 4000000000, OURS)
    write_files(srv, {"p.expired.example": expired,
                      "p.live.example": live,
                      "t.live.example": live,
                      "notes": expired,
                      "p.UPPER.example": expired,
                      "p.dir.example": None},
                links=[("p.link.example", str(outside))])
    assert wait_for(lambda: lines(srv, "mta-sts cache pass removed="),
                    WAIT), srv.log()[-3000:]
    assert lines(srv, "mta-sts cache pass removed=")[0].endswith(
        "removed=2 refreshing=0")
    assert "mta-sts cache=p.expired.example removed reason=expired" in \
        srv.log()
    assert "mta-sts cache=t.live.example removed reason=unfinished" in \
        srv.log()
    d = cache_dir(srv)
    assert sorted(os.listdir(d)) == ["notes", "p.UPPER.example",
                                     "p.dir.example", "p.link.example",
                                     "p.live.example"]
    assert read(os.path.join(d, "p.live.example")) == live
    assert os.path.islink(os.path.join(d, "p.link.example"))
    assert read(str(outside)) == cache_text("x1", 1000, OURS)
    assert read(os.path.join(d, "notes")) == expired
    assert "mta-sts domain=" not in srv.log()  # nothing looked up


def test_expired_cache_removed_when_read(world, make_server, monkeypatch):
    """No pass: a lookup reads the expired policy, removes it, and (the
    policy server not answering) the domain has no policy and no file."""
    srv = sender(world, make_server, monkeypatch, 0)
    write_files(srv, {"p.readexp.example": cache_text("r1", 1000, OTHER)})
    submit(srv, "bob@readexp.example")
    assert wait_for(lambda: delivered(world, "readexp.example"), WAIT), \
        srv.log()[-3000:]
    assert "mta-sts domain=readexp.example cache=p.readexp.example " \
        "removed reason=expired" in srv.log()
    assert "domain=readexp.example fetch=mta-sts.readexp.example " \
        "error=" in srv.log()
    assert "p.readexp.example" not in list_dir(cache_dir(srv))


def test_cached_policy_records_mail(world, make_server, monkeypatch):
    """A cached policy that mail uses gets its `mailed` time (here, a
    file of the format without the line), which the refresh needs."""
    srv = sender(world, make_server, monkeypatch, 0)
    path = os.path.join(cache_dir(srv), "p.touch.example")
    write_files(srv, {"p.touch.example": cache_text("t1", 4000000000,
                                                    OURS)})
    before = int(time.time())
    submit(srv, "bob@touch.example")
    assert wait_for(lambda: delivered(world, "touch.example"), WAIT), \
        srv.log()[-3000:]
    assert wait_for(lambda: "\nmailed " in read(path), 10), read(path)
    text = read(path)
    mailed = int(text.split("\nmailed ")[1].split("\n")[0])
    assert before <= mailed <= int(time.time())
    assert text == cache_text("t1", 4000000000, OURS, mailed)
    assert "mta-sts.touch.example" not in world["https"].hosts()


# --- (c) proactive refresh -------------------------------------------------


def test_refresh_before_expiry(world, make_server, monkeypatch):
    """Three cached policies in the last part of their max_age:
    - refresh.example (mailed now, TXT id changed, its cached policy lists
      another MX): refetched by the pass, no mail waiting; the next mail
      then goes with the new policy, without a fetch of its own;
    - refail.example (mailed now, TXT id changed, its policy host dead):
      the refresh fails, logged, the cached policy stays as
      it was and still applies (mail to it is deferred);
    - stale.example (last mailed more than max_age ago): not refreshed.
    """
    srv = sender(world, make_server, monkeypatch, 1)
    now = int(time.time())
    refail = cache_text("old8", now + 3600, OTHER, now)
    stale = cache_text("s0", now + 3600, OURS, now - 90000)
    write_files(srv, {
        "p.refresh.example": cache_text("old7", now + 3600, OTHER, now),
        "p.refail.example": refail,
        "p.stale.example": stale})
    d = cache_dir(srv)
    assert wait_for(lambda: lines(srv, "policy=refreshed") and
                    lines(srv, "domain=refail.example refresh="), WAIT), \
        srv.log()[-3000:]
    passes = lines(srv, "mta-sts cache pass")
    assert passes[0].endswith("removed=0 refreshing=2"), passes
    assert "mta-sts domain=refresh.example id=new7 mode=enforce " \
        "max_age=86400 policy=refreshed" in srv.log()
    text = read(os.path.join(d, "p.refresh.example"))
    assert text.startswith("postern-mta-sts 1\nid new7\n"), text
    assert text.endswith("\nmailed %d\n\n" % now + OURS), text
    fail = lines(srv, "domain=refail.example refresh=")
    assert len(fail) == 1 and \
        'refresh=mta-sts.refail.example error="' in fail[0] and \
        fail[0].endswith("policy=cached id=old8"), fail
    assert read(os.path.join(d, "p.refail.example")) == refail
    assert read(os.path.join(d, "p.stale.example")) == stale
    assert "mta-sts.stale.example" not in world["https"].hosts()
    assert "mta-sts domain=stale.example" not in srv.log()
    # The refreshed policy serves the next mail: no fetch, delivered.
    n = world["https"].hosts().count("mta-sts.refresh.example")
    assert n == 1
    submit(srv, "bob@refresh.example")
    assert wait_for(lambda: delivered(world, "refresh.example"), WAIT), \
        srv.log()[-3000:]
    assert wait_for(lambda: lines(srv, "status=sent"), 10)
    assert "verified=mta-sts" in lines(srv, "tls relay=%s" % MX)[0]
    assert world["https"].hosts().count("mta-sts.refresh.example") == n
    assert "policy=fetched" not in srv.log()
    # The old policy of refail.example is still in force.
    submit(srv, "bob@refail.example")
    assert wait_for(lambda: lines(srv, "status=deferred"), WAIT), \
        srv.log()[-3000:]
    assert "does not list MX host %s" % MX in \
        lines(srv, "status=deferred")[0]
    assert not delivered(world, "refail.example")
