#!/usr/bin/python3
"""A small HTTP front for a real docker-registry, for the image tests. It can
  --bearer USER:PASS  demand Bearer tokens, issued by its own /token endpoint after Basic auth;
  --drop-after N      cut the first response of each blob after N bytes (the client must resume);
  --redirect          send blob GETs (307) to another origin (localhost instead of 127.0.0.1),
                      which refuses any request carrying an Authorization header;
  --delay-blobs S     wait S seconds before answering a blob GET (to interrupt a pull);
  --realm-host H      name its token endpoint on host H (e.g. localhost: another host than the
                      registry's 127.0.0.1), where a request carrying credentials is answered 400
                      and logged as LEAKED;
  --anonymous         issue tokens without credentials (a public repository).
Written for sealroot's tests; stdlib only."""
import argparse
import base64
import http.client
import http.server
import secrets
import socketserver
import sys
import threading
import time

args = None
tokens = set()
dropped = set()
lock = threading.Lock()


class Front(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        sys.stderr.write("front: " + (fmt % a) + "\n")

    def reply(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path
        if path.startswith("/token"):
            return self.issue_token()
        if path.startswith("/redirected/"):
            if self.headers.get("Authorization"):
                return self.reply(400, b"Authorization leaked to another origin\n")
            return self.proxy(path[len("/redirected"):])
        if args.bearer and not self.authorized():
            repo = path.split("/")[2] if path.count("/") > 2 else ""
            challenge = 'Bearer realm="http://%s:%d/token",service="front",scope="repository:%s:pull"' % (
                args.realm_host, args.port, repo)
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                              [("WWW-Authenticate", challenge), ("Content-Type", "application/json")])
        if args.delay_blobs and "/blobs/" in path:
            time.sleep(args.delay_blobs)
        if args.redirect and "/blobs/" in path:
            return self.reply(307, b"", [("Location", "http://localhost:%d/redirected%s" % (args.port, path))])
        return self.proxy(path)

    def authorized(self):
        auth = self.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in tokens

    def issue_token(self):
        sent = self.headers.get("Authorization")
        if sent and not self.headers.get("Host", "").startswith("127.0.0.1:"):
            sys.stderr.write("front: LEAKED credentials to another host\n")
            return self.reply(400, b"credentials sent to another host\n")
        want = "Basic " + base64.b64encode(args.bearer.encode()).decode()
        if sent != want and not args.anonymous:
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
        token = secrets.token_hex(16)
        tokens.add(token)
        return self.reply(200, ('{"token":"%s","expires_in":300}' % token).encode(),
                          [("Content-Type", "application/json")])

    def proxy(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", args.backend)
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "range")}
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        drop = False
        if args.drop_after and "/blobs/" in path and resp.status == 200:
            with lock:
                drop = path not in dropped
                dropped.add(path)
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if drop:
            self.wfile.write(body[:args.drop_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--backend", type=int, required=True)
    p.add_argument("--bearer", default="")
    p.add_argument("--drop-after", type=int, default=0)
    p.add_argument("--redirect", action="store_true")
    p.add_argument("--delay-blobs", type=float, default=0)
    p.add_argument("--realm-host", default="127.0.0.1")
    p.add_argument("--anonymous", action="store_true")
    args = p.parse_args()
    Server(("127.0.0.1", args.port), Front).serve_forever()


if __name__ == "__main__":
    main()
