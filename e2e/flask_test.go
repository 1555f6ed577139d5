package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// flaskDir copies examples/flask into a temp folder that the workers (run
// as nobody when the tests run as root) can enter, on a free port.
func flaskDir(t *testing.T) string {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import flask").Run(); err != nil {
		t.Fatalf("Debian's python3-flask is not installed (.ci/run installs it): %v", err)
	}
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	if out, err := exec.Command("cp", "-a", "../examples/flask/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy example: %v %s", err, out)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "portico.toml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(cfg), `listen = ["127.0.0.1:8080"]`, `listen = ["127.0.0.1:0"]`, 1)
	s = strings.Replace(s, `access_log = "stdout"`, `access_log = "off"`, 1)
	writeFiles(t, dir, map[string]string{"portico.toml": s})
	return dir
}

// The Flask example end to end: routing, static files beside the app, a
// form, JSON, a session cookie across workers, a file upload, a streamed
// response, an exception logged as one entry, workers run as nobody.
func TestFlaskExample(t *testing.T) {
	dir := flaskDir(t)
	p := startPortico(t, dir, 1, "run", "-c", "portico.toml")

	if resp, body := get(t, p.URL("/hello/w%C3%B6rld")); resp.StatusCode != 200 || body != "Hello, wörld!\n" {
		t.Errorf("routing: %d %q", resp.StatusCode, body)
	}
	resp, body := get(t, p.URL("/"))
	if resp.StatusCode != 200 || !strings.Contains(body, `href="/static/style.css"`) || !strings.Contains(body, `href="/hello/world"`) {
		t.Errorf("home: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, p.URL("/static/style.css")); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Errorf("static: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, _ := get(t, p.URL("/nothing-here")); resp.StatusCode != 404 {
		t.Errorf("unknown route: %d", resp.StatusCode)
	}

	// A form, with a repeated field.
	form := url.Values{"name": {"Ada"}, "color": {"red", "blue"}}
	resp, body = do(t, "POST", p.URL("/form"), strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != 200 || body != "Thanks, Ada; you like red, blue.\n" {
		t.Errorf("form: %d %q", resp.StatusCode, body)
	}

	// JSON in and out.
	resp, body = do(t, "POST", p.URL("/api/items"), strings.NewReader(`{"name":"pen"}`), "Content-Type", "application/json")
	var item struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	}
	if resp.StatusCode != 201 || json.Unmarshal([]byte(body), &item) != nil || item.Name != "pen" || item.ID < 1 {
		t.Errorf("JSON POST: %d %q", resp.StatusCode, body)
	}
	if resp, body := do(t, "POST", p.URL("/api/items"), strings.NewReader(`[1]`), "Content-Type", "application/json"); resp.StatusCode != 400 || !strings.Contains(body, "error") {
		t.Errorf("bad JSON: %d %q", resp.StatusCode, body)
	}

	// A session cookie: signed by Flask, good on either worker. The login
	// redirect to /me is the first visit.
	jar, _ := cookiejar.New(nil)
	jc := &http.Client{Jar: jar, Timeout: 15 * time.Second}
	r, err := jc.PostForm(p.URL("/login"), url.Values{"user": {"ada"}})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	for want := 1; want <= 4; want++ {
		r, err := jc.Get(p.URL("/me"))
		if err != nil {
			t.Fatal(err)
		}
		var me struct {
			User   string `json:"user"`
			Visits int    `json:"visits"`
		}
		json.NewDecoder(r.Body).Decode(&me)
		r.Body.Close()
		if r.StatusCode != 200 || me.User != "ada" || me.Visits != want+1 {
			t.Errorf("session visit %d: %d %+v", want, r.StatusCode, me)
		}
	}
	if resp, _ := get(t, p.URL("/me")); resp.StatusCode != 401 {
		t.Errorf("no cookie: %d, want 401", resp.StatusCode)
	}

	// A multipart upload.
	blob := make([]byte, 300<<10)
	rand.Read(blob)
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("file", "blob.bin")
	fw.Write(blob)
	mw.WriteField("note", "hi")
	mw.Close()
	resp, body = do(t, "POST", p.URL("/upload"), &mp, "Content-Type", mw.FormDataContentType())
	sum := sha256.Sum256(blob)
	var up struct {
		Filename, Sha256, Note string
		Size                   int
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &up) != nil || up.Filename != "blob.bin" ||
		up.Size != len(blob) || up.Sha256 != hex.EncodeToString(sum[:]) || up.Note != "hi" {
		t.Errorf("upload: %d %q", resp.StatusCode, body)
	}

	// Streaming: the first line reaches the client before the app has
	// produced the third (each line carries the time it was produced).
	r, err = client.Get(p.URL("/stream?n=3&pause=0.3"))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(r.Body)
	first, err := br.ReadString('\n')
	gotFirst := float64(time.Now().UnixNano()) / 1e9
	if err != nil || !strings.HasPrefix(first, "line 0 at ") {
		t.Fatalf("first streamed line %q, %v", first, err)
	}
	rest, _ := io.ReadAll(br)
	r.Body.Close()
	lines := strings.Split(strings.TrimSpace(string(rest)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "line 2 at ") {
		t.Fatalf("stream rest %q", rest)
	}
	third, _ := strconv.ParseFloat(strings.TrimPrefix(lines[1], "line 2 at "), 64)
	if gotFirst >= third {
		t.Errorf("line 0 reached the client at %.3f, after line 2 was produced at %.3f: not streamed", gotFirst, third)
	}

	// An exception in a view: 500, and its traceback is one log entry.
	if resp, _ := get(t, p.URL("/boom")); resp.StatusCode != 500 {
		t.Errorf("/boom: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.Stderr.String(), "RuntimeError: a bug in a view") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	var tb []string
	for _, line := range strings.Split(p.Stderr.String(), "\n") {
		if strings.Contains(line, "Traceback") || strings.Contains(line, "RuntimeError") || strings.Contains(line, `File \"`) {
			tb = append(tb, line)
		}
	}
	if len(tb) != 1 || !strings.Contains(tb[0], "Traceback (most recent call last)") || !strings.Contains(tb[0], "RuntimeError: a bug in a view") {
		t.Errorf("the traceback should be one log entry, got %d:\n%s", len(tb), strings.Join(tb, "\n"))
	}

	// As root, the workers run as nobody (user = "nobody").
	if os.Geteuid() == 0 {
		for _, pid := range workerPIDs(t, dir) {
			st, _ := os.ReadFile("/proc/" + pid + "/status")
			if !strings.Contains(string(st), "\nUid:\t65534\t") {
				t.Errorf("worker %s does not run as nobody:\n%s", pid, st)
			}
		}
	}
}

// Quick mode: `portico serve --wsgi module:callable` serves the app at /.
func TestServeWSGIQuickMode(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"hello.py": `def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("quick " + environ["PATH_INFO"]).encode()]
`})
	p := startPortico(t, dir, 1, "serve", "-b", "127.0.0.1", "--wsgi", "hello:app", "0")
	if resp, body := get(t, p.URL("/some/path")); resp.StatusCode != 200 || body != "quick /some/path" {
		t.Errorf("GET: %d %q", resp.StatusCode, body)
	}
	code, _, errOut := runPortico(t, dir, "serve", "--wsgi", "hello", "0")
	if code == 0 || !strings.Contains(errOut, "module:callable") {
		t.Errorf("--wsgi hello: exit %d, %q", code, errOut)
	}
	code, _, errOut = runPortico(t, dir, "serve", "--wsgi", "nosuchmodule:app", "-b", "127.0.0.1", "0")
	if code == 0 || !strings.Contains(errOut, "ModuleNotFoundError") {
		t.Errorf("--wsgi nosuchmodule:app: exit %d, %q", code, errOut)
	}
	_ = fmt.Sprint
}
