#!/usr/bin/python3
"""bench/idle_conns.py - open and hold many idle SMTP connections.

Opens up to N (at most 10,000) TCP connections to HOST:PORT, reads the 220
greeting on each and then holds them open without sending anything, so the
server carries N idle sessions. At most `window` connections are in flight
(connecting or waiting for the greeting) at once, so a listen backlog is not
flooded. Bounded in count and in time: whatever is not greeted by the
deadline counts as failed.

Used by bench/run; also runs alone:
    bench/idle_conns.py [-n 10000] [--hold SECONDS] PORT
"""

import argparse
import errno
import resource
import selectors
import socket
import sys
import time

MAX_CONNS = 10000


class Holder:
    """The connections to one server, opened by open_all()."""

    def __init__(self, host, port, count, deadline=120.0, window=256):
        self.addr = (host, port)
        self.count = min(count, MAX_CONNS)
        self.deadline = deadline
        self.window = window
        self.sel = selectors.DefaultSelector()
        self.greeted = []       # sockets that read a 220 line
        self.failed = 0
        self.errors = {}        # reason -> count
        self.seconds = 0.0

    def _fail(self, sock, why):
        self.failed += 1
        self.errors[why] = self.errors.get(why, 0) + 1
        try:
            self.sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    def _start_one(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(self.addr)
        if err not in (0, errno.EINPROGRESS):
            self.failed += 1
            why = errno.errorcode.get(err, str(err))
            self.errors[why] = self.errors.get(why, 0) + 1
            s.close()
            return
        self.sel.register(s, selectors.EVENT_READ, bytearray())

    def _on_read(self, key):
        s, buf = key.fileobj, key.data
        try:
            chunk = s.recv(1024)
        except OSError as e:
            self._fail(s, errno.errorcode.get(e.errno, str(e)))
            return
        if not chunk:
            self._fail(s, "closed before greeting")
            return
        buf += chunk
        if len(buf) > 4096:
            self._fail(s, "greeting too long")
            return
        # The greeting may be multi-line (220-...); its last line is
        # "220 ...".
        lines = bytes(buf).split(b"\r\n")
        for line in lines[:-1]:
            if line.startswith(b"220 "):
                self.sel.unregister(s)
                self.greeted.append(s)
                return
            if not line.startswith(b"220-"):
                self._fail(s, "reply " + line[:3].decode("ascii",
                                                         "replace"))
                return

    def open_all(self):
        """Open connections until `count` are greeted or failed, or the
        deadline passes."""
        t0 = time.monotonic()
        started = 0
        while len(self.greeted) + self.failed < self.count:
            left = self.deadline - (time.monotonic() - t0)
            if left <= 0:
                break
            pending = started - len(self.greeted) - self.failed
            while started < self.count and pending < self.window:
                self._start_one()
                started += 1
                pending += 1
            for key, _ in self.sel.select(timeout=min(left, 1.0)):
                self._on_read(key)
        # Whatever is still waiting counts as failed.
        for key in list(self.sel.get_map().values()):
            self._fail(key.fileobj, "no greeting before deadline")
        self.seconds = time.monotonic() - t0
        return len(self.greeted)

    def stats(self):
        return {"greeted": len(self.greeted), "failed": self.failed,
                "errors": dict(self.errors), "seconds": self.seconds}

    def close_all(self):
        for s in self.greeted:
            s.close()
        self.greeted = []
        self.sel.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("-n", type=int, default=MAX_CONNS)
    ap.add_argument("--hold", type=float, default=5.0,
                    help="seconds to hold them (at most 600)")
    ap.add_argument("--deadline", type=float, default=120.0)
    args = ap.parse_args()
    if not args.host.startswith("127.") and args.host != "::1":
        sys.exit("idle_conns: loopback addresses only")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n = min(args.n, MAX_CONNS, hard - 100)
    h = Holder(args.host, args.port, n, args.deadline)
    try:
        h.open_all()
        print(h.stats(), flush=True)
        time.sleep(min(max(args.hold, 0.0), 600.0))
    finally:
        h.close_all()


if __name__ == "__main__":
    main()
