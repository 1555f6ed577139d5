# A WSGI app with the framing bugs upstreams have, for the leak tests:
# after its own response it writes a whole second response, straight to
# the worker's connection (as a buggy C extension or a leaked socket
# would), plus a body on HEAD and more bytes than its Content-Length.
# /forged writes a whole response in portico's own framing, with a wrong
# id, ahead of its real one. If portico ever read those bytes as the
# answer to a request, a client would see "STRAY".
import os
import struct
import sys

STRAY = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
         b"Cache-Control: public, max-age=3600\r\nContent-Length: 5\r\n\r\nSTRAY")


class Body:
    """The response body; close() (called by the adapter once the response
    is sent) writes the stray bytes in a second write."""

    def __init__(self, chunks, sock):
        self.chunks = chunks
        self.sock = sock

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        try:
            self.sock.sendall(STRAY)
            print("strayapp: stray bytes written", file=sys.stderr)
        except OSError as e:
            print("strayapp: stray write failed: %s" % e, file=sys.stderr)


def forged_frames():
    """A whole response in portico's worker framing (adapter.py), with an
    id no request of portico's has: what a library replaying a buffer it
    kept from an earlier request would send."""
    rid = struct.unpack(">Q", os.urandom(8))[0]
    head = b"200 OK\r\nContent-Type: text/plain\r\nCache-Control: public, max-age=3600"
    return (struct.pack(">cIQ", b"H", 8 + len(head), rid) + head
            + struct.pack(">cI", b"D", 5) + b"STRAY"
            + struct.pack(">cIQB", b"Z", 9, rid, 2))


def raw_socket(environ):
    # wsgi.input reads the worker's connection: reach its socket.
    return environ["wsgi.input"].rfile.raw._sock


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/clean":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"clean"]
    sock = raw_socket(environ)
    if path == "/forged":
        # Framed stray bytes ahead of the app's own response: they have the
        # right shape, only the id is wrong.
        sock.sendall(forged_frames())
        print("strayapp: stray bytes written", file=sys.stderr)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
        return [b"forged"]
    if path == "/overflow":
        # Promises 2 bytes, yields 10, then writes a response of its own.
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return Body([b"ok", b"-and-more"], sock)
    # /stray: a correct response (a body even on HEAD), then stray bytes.
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
    return Body([b"good"], sock)
