package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestRunExitCode(t *testing.T) {
	status := map[string]int{"/readyz": http.StatusOK, "/down": http.StatusServiceUnavailable}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, ok := status[r.URL.Path]
		if !ok {
			code = http.StatusNotFound
		}
		w.WriteHeader(code)
		w.Write([]byte("kafka: connection refused\n"))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)

	// A listener that was closed: nothing answers on its port.
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()

	f := func(name string, args []string, httpAddr string, want int, wantErr string) {
		t.Helper()
		var stderr bytes.Buffer
		env := func(k string) string {
			if k == "METRICPIPE_HTTP_ADDR" {
				return httpAddr
			}
			return ""
		}
		got := run(context.Background(), args, env, &stderr)
		if got != want {
			t.Errorf("%s: exit %d, want %d (stderr %q)", name, got, want, stderr.String())
		}
		if !strings.Contains(stderr.String(), wantErr) {
			t.Errorf("%s: stderr %q, want it to contain %q", name, stderr.String(), wantErr)
		}
	}
	f("200 by URL", []string{srv.URL + "/readyz"}, "", 0, "")
	f("200 from METRICPIPE_HTTP_ADDR", nil, "0.0.0.0:"+u.Port(), 0, "")
	f("503", []string{srv.URL + "/down"}, "", 1, "503 Service Unavailable: kafka: connection refused")
	f("503 by path", []string{"/down"}, ":"+u.Port(), 1, "503")
	f("404", []string{srv.URL + "/nope"}, "", 1, "404")
	f("unreachable", []string{goneURL + "/readyz"}, "", 1, "connection refused")
	f("no target", nil, "", 1, "METRICPIPE_HTTP_ADDR is not set")
	f("two arguments", []string{"/a", "/b"}, ":1", 1, "at most one argument")
}

func TestTargetURL(t *testing.T) {
	f := func(args []string, httpAddr, want string) {
		t.Helper()
		got, err := targetURL(args, httpAddr)
		if err != nil {
			if want != "error" {
				t.Errorf("targetURL(%q, %q): %v, want %s", args, httpAddr, err, want)
			}
			return
		}
		if got != want {
			t.Errorf("targetURL(%q, %q) = %s, want %s", args, httpAddr, got, want)
		}
	}
	f(nil, "0.0.0.0:9101", "http://127.0.0.1:9101/readyz")
	f(nil, ":9102", "http://127.0.0.1:9102/readyz")
	f(nil, "[::]:9103", "http://127.0.0.1:9103/readyz")
	f(nil, "127.0.0.1:9103", "http://127.0.0.1:9103/readyz")
	f(nil, "10.1.2.3:9103", "http://10.1.2.3:9103/readyz")
	f([]string{"/healthz"}, "0.0.0.0:9101", "http://127.0.0.1:9101/healthz")
	f([]string{"http://consumer:9102/healthz"}, "", "http://consumer:9102/healthz")
	f([]string{"healthz"}, "0.0.0.0:9101", "error")
	f(nil, "9101", "error")
	f(nil, "", "error")
}
