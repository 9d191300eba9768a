#!/usr/bin/python3
"""A TCP proxy in front of a loopback registry, for the tool tests:
  --rate B        forward at most B bytes per second from the registry to the client (the link);
  --cut-after N   after N bytes towards clients, close every connection and accept no more
                  (a link that goes away for good: the client's run fails);
  --log FILE      append each request line the client sends ("GET /v2/.../blobs/sha256:...").
Usage: throttle_proxy.py LISTEN_PORT TARGET_PORT [options]. Prints "ready" once listening.
Written for sealroot's tests; stdlib only."""
import argparse
import re
import socket
import sys
import threading
import time

lock = threading.Lock()
sent = 0          # bytes forwarded towards clients, all connections
cut = threading.Event()
conns = []
REQUEST = re.compile(rb"(GET|HEAD|POST|PUT) (\S+) HTTP/1\.[01]\r\n")


class Bucket:
    """A token bucket shared by all connections: the link's rate."""

    def __init__(self, rate):
        self.rate = rate
        self.tokens = 0.0
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def take(self, n):
        if self.rate <= 0:
            return
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.rate / 10, self.tokens + (now - self.last) * self.rate)
                self.last = now
                if self.tokens >= n:
                    self.tokens -= n
                    return
                wait = (n - self.tokens) / self.rate
            time.sleep(min(wait, 0.05))


def close_all():
    cut.set()
    with lock:
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()


def pump_up(client, server, log):
    try:
        while True:
            data = client.recv(65536)
            if not data:
                break
            if log:  # a client writes each request (line and headers) at once
                for m in REQUEST.finditer(data):
                    with lock, open(log, "a") as f:
                        f.write(m.group(1).decode() + " " + m.group(2).decode() + "\n")
            server.sendall(data)
    except OSError:
        pass
    try:
        server.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def pump_down(server, client, bucket, cut_after):
    global sent
    try:
        while not cut.is_set():
            data = server.recv(16384 if bucket.rate <= 0 else max(1024, min(16384, int(bucket.rate / 20))))
            if not data:
                break
            bucket.take(len(data))
            with lock:
                allowed = len(data) if cut_after <= 0 else max(0, min(len(data), cut_after - sent))
                sent += allowed
            if allowed:
                client.sendall(data[:allowed])
            if allowed < len(data):
                close_all()
                return
    except OSError:
        pass
    try:
        client.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("listen", type=int)
    p.add_argument("target", type=int)
    p.add_argument("--rate", type=float, default=0)
    p.add_argument("--cut-after", type=int, default=0)
    p.add_argument("--log", default="")
    a = p.parse_args()
    bucket = Bucket(a.rate)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.listen))
    ls.listen(64)
    print("ready", flush=True)
    while True:
        client, _ = ls.accept()
        if cut.is_set():
            client.close()
            continue
        server = socket.create_connection(("127.0.0.1", a.target))
        with lock:
            conns.extend([client, server])
        threading.Thread(target=pump_up, args=(client, server, a.log), daemon=True).start()
        threading.Thread(target=pump_down, args=(server, client, bucket, a.cut_after), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
