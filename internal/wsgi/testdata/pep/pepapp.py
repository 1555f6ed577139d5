# Test app for PEP 3333 conformance (internal/wsgi/pep_test.go). PEP_DATA
# names a folder the test shares with the app (files, signals, counts).
import io
import os
import sys
import time
from wsgiref.validate import validator

DATA = os.environ.get("PEP_DATA", "/nonexistent")

# Count the adapter's os.sendfile calls: the file_wrapper fast path.
_sendfile = os.sendfile
sendfile_calls = 0


def counting_sendfile(*args):
    global sendfile_calls
    sendfile_calls += 1
    return _sendfile(*args)


os.sendfile = counting_sendfile


def note(name, line):
    with open(os.path.join(DATA, name), "a") as f:
        f.write(line + "\n")


class Closing:
    """An iterable whose close() is counted in DATA/closes."""

    def __init__(self, tag, chunks, pause=0.0):
        self.tag, self.chunks, self.pause = tag, chunks, pause

    def __iter__(self):
        for c in self.chunks:
            if self.pause:
                time.sleep(self.pause)
            yield c

    def close(self):
        note("closes", self.tag)


def forever():
    deadline = time.time() + 10
    while time.time() < deadline:
        yield b"tick\n"
        time.sleep(0.02)


def plain(environ, start_response):
    path = environ["PATH_INFO"]
    method = environ["REQUEST_METHOD"]
    if path == "/hello":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello ", environ["QUERY_STRING"].encode("latin-1")]
    if path == "/echo":
        inp = environ["wsgi.input"]
        first = inp.readline()
        rest = b"".join(inp)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [first, rest, inp.read(10)]
    if path == "/read-sized":
        inp = environ["wsgi.input"]
        parts = []
        while True:
            b = inp.read(7)
            if not b:
                break
            parts.append(b)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"|".join(parts)]
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"one,")
        write(b"two,")
        return [b"three"]
    if path == "/write-only":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"only via write")
        return []
    if path == "/exc-before":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("before the headers")
        except ValueError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"app's own error page"]
    if path == "/exc-after":
        def gen():
            yield b"partial body "
            try:
                raise ValueError("after the headers")
            except ValueError:
                # PEP 3333: headers are sent, so this re-raises.
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
            yield b"never sent"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return gen()
    if path == "/file":
        f = open(os.path.join(DATA, "blob.bin"), "rb")
        f.seek(int(environ["QUERY_STRING"] or "0"))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](f, 8192)
    if path == "/file-bytesio":
        with open(os.path.join(DATA, "blob.bin"), "rb") as f:
            data = f.read()
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](io.BytesIO(data), 8192)
    if path == "/sendfile-calls":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(sendfile_calls).encode()]
    if path == "/close":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing("normal", [b"a", b"b", b"c"])
    if path == "/close-raise":
        start_response("200 OK", [("Content-Type", "text/plain")])

        class Failing(Closing):
            def __iter__(self):
                yield b"x"
                raise RuntimeError("fails mid-body")
        return Failing("raise", [])
    if path == "/close-gone":
        start_response("200 OK", [("Content-Type", "text/plain")])

        class Endless(Closing):
            def __iter__(self):
                return forever()
        return Endless("gone", [])
    if path == "/flush":
        def gen():
            yield b"one "
            signal = os.path.join(DATA, "go")
            deadline = time.time() + 10
            while not os.path.exists(signal) and time.time() < deadline:
                time.sleep(0.01)
            yield b"two" if os.path.exists(signal) else b"late"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return gen()
    if path == "/head":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"" if method == "HEAD" else b"12345"]
    if path == "/nocontent":
        start_response("204 No Content", [])
        return []
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no route " + path.encode("latin-1")]


# Everything, checked by the standard library's PEP 3333 validator: it
# raises AssertionError on any breach by the server (environ, input,
# errors, start_response) or by the app.
application = validator(plain)
