"""A small Flask app served by portico (examples/flask/portico.toml):
routing, a form, JSON, a session cookie, a file upload and a streamed
response. Debian: apt-get install python3-flask."""
import hashlib
import os
import time

from flask import Flask, Response, jsonify, redirect, request, session, stream_with_context, url_for

app = Flask(__name__)
# From the wsgi section's env in portico.toml; a real deployment sets its own.
app.secret_key = os.environ.get("FLASK_SECRET_KEY", "dev only")
app.config["MAX_CONTENT_LENGTH"] = 8 << 20

ITEMS = []


@app.get("/")
def home():
    return (
        "<!doctype html><title>Flask on portico</title>"
        "<h1>Flask on portico</h1>"
        f'<p><a href="{url_for("hello", name="world")}">hello</a> · '
        f'<a href="{url_for("form")}">form</a> · '
        f'<a href="{url_for("items")}">JSON</a> · '
        f'<a href="{url_for("me")}">session</a> · '
        f'<a href="{url_for("stream")}">stream</a></p>'
        f'<link rel="stylesheet" href="{url_for("static", filename="style.css")}">'
    )


@app.get("/hello/<name>")
def hello(name):
    return f"Hello, {name}!\n", 200, {"Content-Type": "text/plain; charset=utf-8"}


@app.route("/form", methods=["GET", "POST"])
def form():
    if request.method == "POST":
        name = request.form.get("name", "").strip() or "stranger"
        colors = request.form.getlist("color")
        return f"Thanks, {name}; you like {', '.join(colors) or 'no colour'}.\n"
    return (
        '<form method="post"><input name="name">'
        '<label><input type="checkbox" name="color" value="red">red</label>'
        '<label><input type="checkbox" name="color" value="blue">blue</label>'
        "<button>Send</button></form>"
    )


@app.route("/api/items", methods=["GET", "POST"])
def items():
    if request.method == "POST":
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return jsonify(error='want {"name": "..."}'), 400
        item = {"id": len(ITEMS) + 1, "name": data["name"], "pid": os.getpid()}
        ITEMS.append(item)
        return jsonify(item), 201
    return jsonify(items=ITEMS, pid=os.getpid())


@app.post("/login")
def login():
    session["user"] = request.form.get("user", "anonymous")
    session["visits"] = 0
    return redirect(url_for("me"))


@app.get("/me")
def me():
    if "user" not in session:
        return jsonify(user=None), 401
    session["visits"] = session.get("visits", 0) + 1
    return jsonify(user=session["user"], visits=session["visits"])


@app.post("/logout")
def logout():
    session.clear()
    return "", 204


@app.post("/upload")
def upload():
    f = request.files.get("file")
    if f is None:
        return jsonify(error="no file field"), 400
    data = f.read()
    return jsonify(filename=f.filename, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                   note=request.form.get("note", ""))


@app.get("/stream")
def stream():
    count = min(int(request.args.get("n", "5")), 100)
    pause = min(float(request.args.get("pause", "0.2")), 2.0)

    @stream_with_context
    def lines():
        for i in range(count):
            yield f"line {i} at {time.time():.3f}\n"
            time.sleep(pause)
    return Response(lines(), mimetype="text/plain")


@app.get("/boom")
def boom():
    raise RuntimeError("a bug in a view: one traceback in portico's log")
