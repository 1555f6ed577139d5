"""A small WSGI app with no dependencies, served by portico at /app/.

    /app/            a page with a form and links
    /app/hello?name= a greeting
    /app/env         the WSGI environ the app received (as text)
    /app/stream      a response sent in chunks, one per second
    POST /app/echo   the posted form, decoded
"""
import html
import os
import time
from urllib.parse import parse_qs


def application(environ, start_response):
    path = environ.get("PATH_INFO") or "/"
    base = environ.get("SCRIPT_NAME", "")  # "/app": build links with it
    if path == "/":
        return page(start_response, "portico WSGI example", f"""
<p>Served by worker pid {os.getpid()} (reload: another worker may answer).</p>
<ul>
  <li><a href="{base}/hello?name=world">{base}/hello?name=world</a></li>
  <li><a href="{base}/env">{base}/env</a>: the environ</li>
  <li><a href="{base}/stream">{base}/stream</a>: a streamed response</li>
</ul>
<form method="post" action="{base}/echo">
  <input name="message" value="hello"> <button>POST it</button>
</form>""")
    if path == "/hello":
        q = parse_qs(environ.get("QUERY_STRING", ""))
        name = q.get("name", ["stranger"])[0]
        return page(start_response, "Hello", f"<p>Hello, {html.escape(name)}!</p>")
    if path == "/env":
        lines = [f"{k} = {v!r}" for k, v in sorted(environ.items())]
        body = ("\n".join(lines) + "\n").encode()
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                                  ("Cache-Control", "no-store")])
        return countdown()
    if path == "/echo" and environ["REQUEST_METHOD"] == "POST":
        size = int(environ.get("CONTENT_LENGTH") or 0)
        form = parse_qs(environ["wsgi.input"].read(size).decode("utf-8", "replace"))
        items = "".join(f"<li>{html.escape(k)} = {html.escape(', '.join(v))}</li>" for k, v in form.items())
        return page(start_response, "You posted", f"<ul>{items}</ul><p><a href=\"{base}/\">back</a></p>")
    return page(start_response, "Not found", f"<p>No page at {html.escape(base + path)}.</p>",
                status="404 Not Found")


def countdown():
    for i in range(5, 0, -1):
        yield f"{i}...\n".encode()
        time.sleep(1)
    yield b"liftoff\n"


def page(start_response, title, body, status="200 OK"):
    data = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/style.css"></head>
<body><h1>{title}</h1>{body}</body></html>
""".encode()
    start_response(status, [("Content-Type", "text/html; charset=utf-8"),
                            ("Content-Length", str(len(data)))])
    return [data]
