"""The tarpit (THREATS X-03 #2, N-01 #3): past 10 errors and refusals in a
session, each further error reply waits error-delay before it is sent, so
guessing addresses costs the guesser time; successes are not delayed."""

import time


def test_errors_past_the_soft_limit_are_slow(server):
    with server.client() as c:
        c.ehlo()
        assert c.cmd(b"MAIL FROM:<>").code == 250
        fast = []
        for i in range(10):
            t = time.monotonic()
            r = c.cmd(b"RCPT TO:<guess%d@local.test>" % i)
            fast.append(time.monotonic() - t)
            assert r.is_(550, "5.1.1"), r
        t = time.monotonic()
        r = c.cmd(b"RCPT TO:<guess10@local.test>", timeout=10)
        slow = time.monotonic() - t
        assert r.is_(550, "5.1.1"), r
        # the default error-delay is 1 s; nothing before the limit waits
        assert slow >= 0.8, slow
        assert max(fast) < 0.8, fast
        t = time.monotonic()
        r = c.cmd(b"RCPT TO:<alice@local.test>", timeout=10)
        assert r.code == 250, r


def test_error_delay_zero_turns_it_off(make_server):
    srv = make_server(error_delay="0")
    with srv.client() as c:
        c.ehlo()
        assert c.cmd(b"MAIL FROM:<>").code == 250
        t = time.monotonic()
        for i in range(15):
            r = c.cmd(b"RCPT TO:<guess%d@local.test>" % i, timeout=10)
            assert r.code == 550, r
        assert time.monotonic() - t < 4, "replies were delayed"
