# portico's bundled WSGI adapter: one synchronous worker process.
#
# Usage (run by portico, not by hand):
#     python3 adapter.py SOCKET MODULE:CALLABLE DIR
#     python3 adapter.py --check MODULE:CALLABLE DIR   (import, report, exit)
#
# The worker imports the app (DIR first on sys.path, and as the working
# directory), listens on the unix socket SOCKET, and only then writes
# "ready" to file descriptor 3. If the import fails it writes
# "error <reason>" there instead, prints the traceback on stderr and exits 1.
#
# It then serves portico on the socket, one connection at a time, one
# request at a time (a sync worker). portico keeps that connection open
# and sends request after request on it, each one only once the previous
# one is settled. Nothing on it is HTTP text: both ways it is a stream of
# frames, each a kind byte, a 4-byte big-endian payload length, the
# payload. portico builds the environ itself (it has read the whole
# request body already, and applied its header rules: httpoxy, aliasing,
# hop-by-hop):
#
#   portico -> worker
#     Q  a request: id (8 bytes), body length (8), PATH_INFO's length (4),
#        PATH_INFO (latin-1 bytes, may hold any byte), then the other
#        string environ items as KEY NUL VALUE NUL ... (no trailing NUL).
#        The body follows the frame, raw, exactly body-length bytes.
#     P  a ping: id (8). Answered with S at once; the app is not involved.
#   worker -> portico, for request id
#     H  the response head: id (8), then the status ("200 OK") and the
#        header lines ("Name: value"), joined by CRLF (latin-1), hop-by-hop
#        headers removed.
#     E  instead of H: the app failed before its response began; the
#        traceback is in the log, portico answers its own 500.
#     D  body bytes (any number of frames; none for HEAD, 204, 304).
#     Z  the end of the body: id (8), flags (1): 1 = cut short (the app
#        raised after its headers, or sent less than its Content-Length:
#        the client must not take it as whole), 2 = settled: the
#        iterable has no close(), no code of the app's runs for this
#        request any more (body bytes the app left unread are drained
#        before the next frame is read).
#     S  settled: id (8); sent after a Z that was not settled, once the
#        iterable's close() has run and unread body bytes are drained.
#
# The ids are portico's guard against stray bytes (an app or a C extension
# writing to this connection behind the adapter's back): portico checks
# the id of every H, E, Z and S, and the kind and length of every frame,
# and drops the connection on any doubt; the worker then serves the next
# connection. portico sends no request until the previous one is settled,
# so bytes written by close() can only land where S belongs, never where
# the next answer is read. A request frame this side cannot make sense of
# closes the connection too.
#
# Only the standard library is used.

import json
import os
import re
import stat
import signal
import socket
import struct
import sys
import threading
import traceback

# Response headers the adapter owns (framing) and drops from the app's list.
SKIP_RESPONSE = {
    "connection", "keep-alive", "transfer-encoding", "te", "trailer",
    "upgrade", "proxy-connection",
}

NO_BODY_STATUS = {204, 304}

# A header name (RFC 9110 section 5.6.2 token).
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")

FRAME = struct.Struct(">cI")        # kind, payload length
REQUEST = struct.Struct(">QQI")     # id, body length, PATH_INFO length
ID = struct.Struct(">Q")
END = struct.Struct(">cIQB")        # a whole Z frame
SHORT_FRAME = struct.Struct(">cIQ")  # a whole S or E frame
CUT, SETTLED = 1, 2                 # Z flags
MAX_REQUEST_FRAME = 64 << 20        # portico's own header limits are far below
MAX_DATA_FRAME = 1 << 30


# A multi-line message (a traceback, one write to wsgi.errors) goes to
# stderr as one framed line, which portico logs as one record: LOG_FRAME, a
# kind, a space, the text as a JSON string.
LOG_FRAME = "\x1eportico:"
MAX_FRAME_TEXT = 60000  # portico splits longer lines


def log_message(kind, text):
    if len(text) > MAX_FRAME_TEXT:
        text = text[:MAX_FRAME_TEXT // 2] + "\n[... cut ...]\n" + text[-MAX_FRAME_TEXT // 2:]
    try:
        sys.stderr.write(LOG_FRAME + kind + " " + json.dumps(text) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def log_exception():
    """The exception being handled, as one log record."""
    log_message("traceback", traceback.format_exc())


class ErrorStream:
    """wsgi.errors: what the app writes up to a newline is one log record,
    so a traceback written by its logger (Flask, Django) is one entry."""

    def __init__(self):
        self.buf = []

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("wsgi.errors takes str, not %s" % type(s).__name__)
        self.buf.append(s)
        if s.endswith("\n"):
            self.flush()

    def writelines(self, seq):
        for s in seq:
            self.write(s)

    def flush(self):
        text = "".join(self.buf)
        self.buf = []
        if not text:
            return
        if "\n" in text.rstrip("\n"):
            log_message("errors", text)
        else:
            try:
                sys.stderr.write(text if text.endswith("\n") else text + "\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass


def load_app(spec, app_dir):
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError("want MODULE:CALLABLE, got %r" % spec)
    __import__(module_name)
    obj = sys.modules[module_name]
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(
                "module %r has no attribute %r" % (module_name, attr)) from None
    if not callable(obj):
        raise TypeError("%s:%s is not callable (it is %s)" % (
            module_name, attr, type(obj).__name__))
    return obj


class Input:
    """wsgi.input: the request body, bounded to CONTENT_LENGTH so an app
    reading to EOF never blocks on the connection."""

    def __init__(self, rfile, length):
        self.rfile = rfile
        self.left = length

    def read(self, size=-1):
        if self.left <= 0:
            return b""
        if size is None or size < 0 or size > self.left:
            size = self.left
        data = self.rfile.read(size)
        self.left -= len(data)
        if not data:
            self.left = 0
        return data

    def readline(self, size=-1):
        if self.left <= 0:
            return b""
        if size is None or size < 0 or size > self.left:
            size = self.left
        data = self.rfile.readline(size)
        self.left -= len(data)
        if not data:
            self.left = 0
        return data

    def readlines(self, hint=-1):
        lines, total = [], 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line


class PorticoGone(Exception):
    """portico closed the connection: the client left, or portico dropped
    the connection (a timeout, a framing doubt). The request ends here."""


class Broken(Exception):
    """The stream can no longer be framed (a data frame promised more
    bytes than could be sent): the connection must be closed."""


# The environ items that are the same for every request (PEP 3333); the
# string ones come from portico with each request.
BASE_ENVIRON = {
    "SERVER_SOFTWARE": "portico",
    "wsgi.version": (1, 0),
    "wsgi.multithread": False,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
    "wsgi.input_terminated": True,
}


class Request:
    """One request on portico's connection: runs the app and frames its
    response (the protocol comment at the top)."""

    def __init__(self, conn, rid, app):
        self.conn = conn  # the Connection
        self.id = rid
        self.rid = ID.pack(rid)
        self.app = app
        self.status = None
        self.out_headers = None
        self.headers_sent = False
        self.no_body = False
        self.length = None  # Content-Length promised by the app
        self.written = 0
        self.head = False
        self.pending = None  # framed bytes held back for the next send
        self.hold = False  # a whole small body is held back too

    def run(self, environ):
        """Runs the app and sends its response; returns False when the
        connection can no longer be used."""
        self.head = environ["REQUEST_METHOD"] == "HEAD"
        result = closer = None
        flags = 0
        try:
            try:
                result = self.app(environ, self.start_response)
                closer = getattr(result, "close", None)
                if not (isinstance(result, FileWrapper) and self.send_file(result)):
                    self.send_iterable(result)
                if self.length is not None and not self.no_body and self.written < self.length:
                    print("portico wsgi: app sent %d of the %d bytes its Content-Length promised"
                          % (self.written, self.length), file=sys.stderr)
                    flags = CUT
            except (PorticoGone, Broken):
                raise
            except Exception:
                log_exception()
                if not self.headers_sent or self.pending is not None:
                    # Nothing has gone out yet: portico answers a clean 500.
                    self.pending = None
                    self.headers_sent = True
                    self.send(SHORT_FRAME.pack(b"E", 8, self.id))
                else:
                    flags = CUT  # the client must not take it as whole
            if closer is None:
                # No code of the app's runs after this: Z settles the
                # request (body bytes left unread are drained before the
                # next frame is read).
                self.send(END.pack(b"Z", 9, self.id, flags | SETTLED))
                drain(environ["wsgi.input"])
                return True
            self.send(END.pack(b"Z", 9, self.id, flags))
            call_close(closer)
            closer = None
            drain(environ["wsgi.input"])
            self.conn.sendall(SHORT_FRAME.pack(b"S", 8, self.id))
            return True
        except (PorticoGone, Broken, OSError):
            return False
        finally:
            call_close(closer)
            sys.stderr.flush()

    def send_iterable(self, result):
        # A one-element list is a complete body: give it a length
        # instead of streaming it (as gunicorn does), and hold it for the
        # end frame: nothing more can come from a list, so the whole
        # response leaves in one write.
        if (isinstance(result, (list, tuple)) and len(result) == 1
                and self.status is not None and not self.headers_sent
                and not self.bodiless()):
            if self.length is None:
                data = result[0]
                if not isinstance(data, bytes):
                    raise TypeError("app returned %s in its body, want bytes"
                                    % type(data).__name__)
                self.out_headers.append(("Content-Length", str(len(data))))
                self.length = len(data)
            self.hold = True
        for data in result:
            self.write(data)
            if self.head and self.headers_sent:
                break  # HEAD: the headers are all there is to send
        if not self.headers_sent:
            if self.status is None:
                raise RuntimeError("app returned without calling start_response")
            if self.length is None and not self.bodiless():
                self.out_headers.append(("Content-Length", "0"))
                self.length = 0
            self.send_headers()

    def send_file(self, wrapper):
        """wsgi.file_wrapper over a regular file: the kernel copies it to
        the socket (os.sendfile), no bytes pass through Python. Returns
        False, having sent nothing, when the fast path does not apply."""
        if self.status is None or self.headers_sent:
            return False
        try:
            fd = wrapper.filelike.fileno()
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return False
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        except (AttributeError, OSError, ValueError):
            return False
        left = max(st.st_size - offset, 0)
        if self.length is None:
            self.out_headers.append(("Content-Length", str(left)))
            self.length = left
        left = min(left, self.length)
        self.send_headers()
        if self.no_body:
            return True
        out = self.conn.fileno()
        while left > 0:
            frame = min(left, MAX_DATA_FRAME)
            self.send(FRAME.pack(b"D", frame))  # the headers go with it
            sent = 0
            while sent < frame:
                try:
                    n = os.sendfile(out, fd, offset, frame - sent)
                except BlockingIOError:
                    continue
                except OSError:
                    raise PorticoGone() from None
                if n == 0:
                    # The file shrank: the frame cannot be completed.
                    print("portico wsgi: file_wrapper's file shrank while it was sent",
                          file=sys.stderr)
                    raise Broken()
                offset += n
                sent += n
            left -= frame
            self.written += frame
        return True

    def bodiless(self):
        return self.head or int(self.status[:3]) in NO_BODY_STATUS

    def start_response(self, status, headers, exc_info=None):
        if exc_info:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        if not isinstance(status, str) or len(status) < 4 or not status[:3].isdigit() \
                or status[3] != " " or "\r" in status or "\n" in status:
            raise ValueError("invalid status %r" % (status,))
        if int(status[:3]) < 200:
            # 1xx are not final responses: WSGI has no way to send them.
            raise ValueError("status %r is not a final response" % (status,))
        out = []
        length = None
        for item in headers:
            name, value = item
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError("header %r: name and value must be str" % (item,))
            if not TOKEN.match(name) or "\r" in value or "\n" in value or "\0" in value:
                raise ValueError("invalid header %r" % (item,))
            lname = name.lower()
            if lname in SKIP_RESPONSE:
                continue
            if lname == "content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise ValueError("invalid Content-Length %r" % value) from None
                if length < 0:
                    raise ValueError("invalid Content-Length %r" % value)
            out.append((name, value))
        self.status = status
        self.out_headers = out
        self.length = length
        return self.write

    def send_headers(self):
        lines = [self.status]
        for name, value in self.out_headers:
            lines.append(name + ": " + value)
        text = "\r\n".join(lines).encode("latin-1")
        self.no_body = self.bodiless()
        self.headers_sent = True
        # Held until the first body bytes (or the end), so that a small
        # response leaves in one write.
        self.pending = FRAME.pack(b"H", 8 + len(text)) + self.rid + text

    def send(self, data):
        if self.pending is not None:
            data = self.pending + data
            self.pending = None
        try:
            self.conn.sendall(data)
        except OSError:
            raise PorticoGone() from None

    def write(self, data):
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("app wrote %s, want bytes" % type(data).__name__)
        if self.status is None:
            raise AssertionError("write() before start_response")
        if not data:
            return
        if not self.headers_sent:
            self.send_headers()
        if self.no_body:
            return
        if self.length is not None:
            room = self.length - self.written
            if room <= 0:
                return
            if len(data) > room:
                data = data[:room]
        self.written += len(data)
        if len(data) <= 65536:
            frame = FRAME.pack(b"D", len(data)) + bytes(data)
            if self.hold:
                self.pending += frame  # send_headers has set it
                return
            self.send(frame)
            return
        view = memoryview(data)
        for i in range(0, len(view), MAX_DATA_FRAME):
            part = view[i:i + MAX_DATA_FRAME]
            self.send(FRAME.pack(b"D", len(part)))
            self.send(part)


def call_close(closer):
    if closer is not None:
        try:
            closer()
        except Exception:
            log_exception()


def drain(body):
    while body.read(65536):
        pass


class FileWrapper:
    """wsgi.file_wrapper: iterate a file-like object in blocks."""

    def __init__(self, filelike, blksize=65536):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        while True:
            data = self.filelike.read(self.blksize)
            if not data:
                return
            yield data


class Server:
    """The worker's unix socket: one connection at a time (a sync
    worker); portico keeps it open across requests."""

    def __init__(self, path, app):
        self.app = app
        self.errors = ErrorStream()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except ConnectionAbortedError:
                continue  # the peer gave up before accept
            try:
                self.serve_connection(conn)
            except Exception:
                log_exception()
            finally:
                conn.close()

    def serve_connection(self, conn):
        """Requests on one connection until portico closes it, or until a
        frame makes no sense (then the connection is closed)."""
        rfile = conn.makefile("rb")
        try:
            while True:
                head = rfile.read(FRAME.size)
                if len(head) < FRAME.size:
                    return  # portico closed the connection
                kind, n = FRAME.unpack(head)
                if n > MAX_REQUEST_FRAME:
                    print("portico wsgi: request frame of %d bytes; closing the connection" % n,
                          file=sys.stderr)
                    return
                payload = rfile.read(n)
                if len(payload) < n:
                    return
                if kind == b"P" and n == ID.size:
                    # portico checking that an idle worker still answers.
                    conn.sendall(SHORT_FRAME.pack(b"S", 8, ID.unpack(payload)[0]))
                    continue
                if kind != b"Q" or n < REQUEST.size:
                    print("portico wsgi: unexpected frame %r; closing the connection" % kind,
                          file=sys.stderr)
                    return
                rid, body_length, path_length = REQUEST.unpack_from(payload)
                at = REQUEST.size + path_length
                items = payload[at:].decode("latin-1").split("\0")
                environ = dict(zip(items[::2], items[1::2]))
                environ.update(BASE_ENVIRON)
                environ["PATH_INFO"] = payload[REQUEST.size:at].decode("latin-1")
                environ["wsgi.errors"] = self.errors
                environ["wsgi.input"] = Input(rfile, body_length)
                environ["wsgi.file_wrapper"] = FileWrapper
                if not Request(conn, rid, self.app).run(environ):
                    return
        except OSError:
            return
        finally:
            rfile.close()


def watch_parent(ppid):
    # If portico dies without stopping us (SIGKILL), exit instead of
    # lingering as an orphan.
    import time
    while True:
        time.sleep(1)
        if os.getppid() != ppid:
            os._exit(1)


def main():
    sock_path, spec, app_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    try:
        os.set_inheritable(3, False)  # not for the app's own children
        status = os.fdopen(3, "w")
    except OSError:
        status = None

    def report(line):
        if status is not None:
            status.write(line.replace("\n", " ").strip() + "\n")
            status.flush()

    # The app's folder comes first on sys.path; the adapter's own is removed.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p != here]
    sys.path.insert(0, app_dir)
    try:
        os.chdir(app_dir)
        app = load_app(spec, app_dir)
    except BaseException as e:
        log_exception()
        report("error %s: %s" % (type(e).__name__, e))
        sys.exit(1)

    if sock_path == "--check":  # portico check: the import is all
        report("ready %d" % os.getpid())
        sys.exit(0)
    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    server = Server(sock_path, app)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    report("ready %d" % os.getpid())
    if status is not None:
        status.close()
    try:
        server.serve()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.sock.close()


if __name__ == "__main__":
    main()
