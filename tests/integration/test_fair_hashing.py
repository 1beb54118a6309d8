"""Fair hashing in the guard (issue 12 item 4, docs/performance.md "Login
under attack"): password hashes are verified one client network (IPv4 /24,
IPv6 /48) after another, not first come first served, so a login from a
quiet network waits for about one hash per active network however many
guesses another network has queued; and a network with
auth-queue-per-network logins waiting gets 454 4.7.0 at once, alone.

The order is read from the guard's log (auth-failure and auth-ok lines
are written when a hash is done), not from a clock: the guard has one
hashing thread, the verification cache is off and every address is in
auth-allow (nothing is locked, every guess costs a full hash)."""

import re
import threading

from conftest import ALICE, ALICE_PW
from helpers import plain_b64

AUTH_OK = b"235 2.7.0 Authentication successful\r\n"
AUTH_TEMP = b"454 4.7.0 Temporary authentication failure, try later\r\n"
ATTACK_FROM = "127.0.9.2"  # 127.0.9.0/24; alice comes from 127.0.0.1
N_GUESSES = 30


def _guess_all(srv, n, source, replies):
    """n sessions from `source`, each on 465 ready for AUTH; then all send
    one wrong AUTH PLAIN at once. Returns the threads (replies appended
    to `replies` as they come)."""
    clients = [srv.sub("465", source=source, timeout=120) for _ in range(n)]
    barrier = threading.Barrier(n)

    def one(i, c):
        try:
            barrier.wait(60)
            c.send("AUTH PLAIN %s\r\n" % plain_b64(
                "guess%d@local.test" % i, "wrong-%d" % i))
            replies.append(c.reply(120).raw)
        except Exception as e:  # reported by the count check
            replies.append(repr(e).encode())
        finally:
            c.close()

    threads = [threading.Thread(target=one, args=(i, c), daemon=True)
               for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    return threads


def _failures_from(text, source):
    return len(re.findall(r"guard auth-failure client=%s " %
                          re.escape(source), text))


def test_quiet_network_is_not_queued_behind_a_busy_one(make_server):
    srv = make_server(submission=True, auth_threads=1, auth_cache_ttl=0,
                      auth_allow="127.0.0.0/8")
    start = len(srv.log())
    replies = []
    threads = _guess_all(srv, N_GUESSES, ATTACK_FROM, replies)
    # The first guess is hashed: the other guesses, sent at the same
    # moment, wait in the guard's queue (a hash takes far longer than
    # a frame's way from the worker to the guard).
    assert srv.wait_log(lambda t: _failures_from(t, ATTACK_FROM) >= 1,
                        timeout=60, start=start), srv.log()[start:]
    c = srv.sub("465", timeout=120)
    r = c.cmd("AUTH PLAIN " + plain_b64(ALICE, ALICE_PW), timeout=120)
    c.close()
    assert r.raw == AUTH_OK, r
    for t in threads:
        t.join(120)
    assert len(replies) == N_GUESSES, replies
    log = srv.log()[start:]
    ok = re.search(r"guard auth-ok client=127\.0\.0\.1 account=%s" %
                   re.escape('"%s"' % ALICE), log)
    assert ok, log
    before = _failures_from(log[:ok.start()], ATTACK_FROM)
    after = _failures_from(log[ok.start():], ATTACK_FROM)
    # Served in turn: alice's hash came right after the one being
    # hashed when she arrived and at most one more of the busy network
    # (first come first served: all N_GUESSES came first).
    assert before <= 3, (before, after)
    # ... and the busy network's queue was long when she came, so the
    # check above means something.
    assert after >= N_GUESSES // 2, (before, after)


def test_full_network_queue_answers_454_to_that_network_only(make_server):
    srv = make_server(submission=True, auth_threads=1, auth_cache_ttl=0,
                      auth_allow="127.0.0.0/8", auth_queue_per_network=4)
    start = len(srv.log())
    replies = []
    threads = _guess_all(srv, 12, ATTACK_FROM, replies)
    for t in threads:
        t.join(120)
    assert len(replies) == 12, replies
    # one hashing, 4 waiting at most: the others got 454 at once
    assert replies.count(AUTH_TEMP) >= 12 - 5, replies
    assert all(r in (AUTH_TEMP, b"535 5.7.8 Authentication credentials "
                     b"invalid\r\n") for r in replies), replies
    log = srv.log()[start:]
    assert re.search(r"guard auth-busy client=127\.0\.9\.2 account=\S+ "
                     r"role=submissions reason=network-queue-full "
                     r"network=127\.0\.9\.0/24", log), log
    # another network is not refused
    c = srv.sub("465", timeout=60)
    assert c.cmd("AUTH PLAIN " + plain_b64(ALICE, ALICE_PW),
                 timeout=60).raw == AUTH_OK
    c.close()
