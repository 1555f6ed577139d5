#!/usr/bin/env python3
"""Sample CGI Script, in Python 3.

A page with a form: post a message, and the page shows the message the
previous visitor left. Everything the visitor sends is escaped before it is
shown. Uses urllib.parse and html (the old `cgi` module is gone since 3.13).

The message is kept in the file named by SAMPLE_CGI_DATA (set it in the
route's `env`), else in the system temporary folder. Scripts usually run as
an unprivileged user (`nobody`): the file's folder must be writable by it.
"""
import html
import os
import sys
import tempfile
import urllib.parse

MAX_BODY = 64 * 1024
MAX_MESSAGE = 2000
DATA = os.environ.get("SAMPLE_CGI_DATA") or os.path.join(
    tempfile.gettempdir(), "portico-sample-cgi.txt")


def read_form():
    """Returns the form fields of a GET query or a urlencoded POST body."""
    if os.environ.get("REQUEST_METHOD") == "POST":
        try:
            length = int(os.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = sys.stdin.buffer.read(min(length, MAX_BODY)) if length > 0 else b""
        query = body.decode("utf-8", "replace")
    else:
        query = os.environ.get("QUERY_STRING", "")
    return urllib.parse.parse_qs(query, keep_blank_values=True)


def load():
    try:
        with open(DATA, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def save(message):
    """Writes atomically: a reader never sees half a message."""
    folder = os.path.dirname(DATA) or "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".sample-cgi-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(message)
        os.replace(tmp, DATA)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def main():
    form = read_form()
    previous = load()
    note = ""
    if os.environ.get("REQUEST_METHOD") == "POST":
        message = form.get("message", [""])[0].strip()[:MAX_MESSAGE]
        if message:
            try:
                save(message)
                note = "Thank you, your message is saved for the next visitor."
            except OSError as e:
                print("sample.py: cannot save message: %s" % e, file=sys.stderr)
                note = "Sorry, the message could not be saved."
        else:
            note = "Please type a message."

    esc = html.escape
    action = esc(os.environ.get("SCRIPT_NAME", ""), quote=True)
    if previous:
        shown = "<p>The previous message was:</p>\n<blockquote>%s</blockquote>" % esc(previous)
    else:
        shown = "<p>No message yet: be the first.</p>"
    page = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sample CGI Script</title></head>
<body>
<h1>Sample CGI Script</h1>
%s
%s
<form method="post" action="%s">
<label>Your message: <input name="message" size="40" maxlength="%d"></label>
<button type="submit">Post</button>
</form>
</body>
</html>
""" % ("<p><em>%s</em></p>" % esc(note) if note else "", shown, action, MAX_MESSAGE)
    out = sys.stdout.buffer
    out.write(b"Content-Type: text/html; charset=utf-8\r\n")
    out.write(b"Cache-Control: no-store\r\n\r\n")
    out.write(page.encode("utf-8"))


if __name__ == "__main__":
    main()
