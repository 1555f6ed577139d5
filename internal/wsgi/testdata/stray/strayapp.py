# A WSGI app with the framing bugs upstreams have, for the leak tests:
# after its own response it writes a whole second response, straight to
# the worker's connection (as a buggy C extension or a leaked socket
# would), plus a body on HEAD and more bytes than its Content-Length.
# If portico ever read those bytes as the answer to a later request, a
# client would see "STRAY".
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


def raw_socket(environ):
    # wsgi.input reads the worker's connection: reach its socket.
    return environ["wsgi.input"].rfile.raw._sock


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/clean":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"clean"]
    sock = raw_socket(environ)
    if path == "/overflow":
        # Promises 2 bytes, yields 10, then writes a response of its own.
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return Body([b"ok", b"-and-more"], sock)
    # /stray: a correct response (a body even on HEAD), then stray bytes.
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
    return Body([b"good"], sock)
