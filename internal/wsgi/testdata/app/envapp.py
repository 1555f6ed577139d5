# Test app for internal/wsgi: each path exercises one behaviour.
import json
import os
import sys
import time

print("envapp imported", flush=True)
if os.environ.get("ENVAPP_IMPORT_SLEEP"):
    time.sleep(float(os.environ["ENVAPP_IMPORT_SLEEP"]))


hoard = []
warmed = []  # the query strings of the warm-up requests this process got


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path.endswith("/sleep"):
        secs = float(environ.get("QUERY_STRING") or "0.5")
        time.sleep(secs)
        return reply(start_response, {"pid": os.getpid(), "slept": secs})
    if path.endswith("/pid"):
        return reply(start_response, {"pid": os.getpid()})
    if path.endswith("/echo"):
        body = environ["wsgi.input"].read()
        rest = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body + rest]
    if path.endswith("/stream"):
        return stream(start_response, float(environ.get("QUERY_STRING") or "1"))
    if path.endswith("/write"):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"via write; ")
        return [b"then iterable"]
    if path.endswith("/raise"):
        raise RuntimeError("boom from envapp")
    if path.endswith("/log"):
        print("a line on stderr from the app", file=environ["wsgi.errors"], flush=True)
        return reply(start_response, {"pid": os.getpid()})
    if path.endswith("/big"):
        # QUERY_STRING: "cl" (one element, a Content-Length) or "chunked".
        block = b"x" * 65536
        n = 256  # 16 MiB: more than the socket buffers between here and a client
        if environ.get("QUERY_STRING") == "cl":
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return [block * n]
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (block for _ in range(n))
    if path.endswith("/partial"):
        # Promises 10 bytes, sends 5, then hangs.
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        def gen():
            yield b"12345"
            time.sleep(30)
            yield b"67890"
        return gen()
    if path.endswith("/badheader"):
        start_response("200 OK", [("X-Bad(", "v")])
        return [b"never sent"]
    if path.endswith("/nocontent"):
        start_response("204 No Content", [])
        return [b""]
    if path.endswith("/spawn"):
        import subprocess
        child = subprocess.Popen(["sleep", "60"])
        return reply(start_response, {"pid": os.getpid(), "child": child.pid})
    if path.endswith("/grow"):
        # Keeps QUERY_STRING MB resident (written, so the pages are real).
        hoard.append(b"x" * (int(environ["QUERY_STRING"]) << 20))
        return reply(start_response, {"pid": os.getpid()})
    if path.endswith("/warm"):
        warmed.append(environ.get("QUERY_STRING", ""))
        return reply(start_response, {"pid": os.getpid()})
    if path.endswith("/warmed"):
        return reply(start_response, {"pid": os.getpid(), "warmed": warmed})
    if path.endswith("/whoami"):
        return reply(start_response, {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(),
                                      "greeting": os.environ.get("PORTICO_TEST_GREETING")})
    if path.endswith("/exit"):
        os._exit(3)
    if path.endswith("/exc-info"):
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("changed my mind")
        except ValueError:
            start_response("418 I'm a teapot", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"short and stout"]
    env = {}
    for k, v in environ.items():
        if isinstance(v, str):
            env[k] = v
        elif isinstance(v, (bool, int, tuple)):
            env[k] = v
    env["pid"] = os.getpid()
    return reply(start_response, env)


def reply(start_response, obj):
    data = json.dumps(obj).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


class stream:
    closed = False

    def __init__(self, start_response, pause):
        self.pause = pause
        start_response("200 OK", [("Content-Type", "text/plain")])

    def __iter__(self):
        yield b"first\n"
        time.sleep(self.pause)
        yield b"second\n"

    def close(self):
        print("stream closed", file=sys.stderr, flush=True)
