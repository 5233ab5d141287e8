// Command healthcheck probes a metricpipe service's HTTP endpoint from inside
// its container and exits 0 when it answers 2xx, 1 otherwise: the image is
// distroless (no shell, no curl), so Docker's HEALTHCHECK needs a binary of
// its own.
//
//	healthcheck              GET http://127.0.0.1:PORT/readyz, PORT from METRICPIPE_HTTP_ADDR
//	healthcheck /healthz     the same address, another path
//	healthcheck URL          GET URL
//
// It uses the standard library only, so it builds static with CGO_ENABLED=0
// and adds about 5 MB to the image.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// timeout bounds the whole probe. The services bound their own readiness
// checks to 3 s, so 5 s leaves room for a slow answer while staying under the
// 10 s healthcheck timeout the compose file sets.
const timeout = 5 * time.Second

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stderr))
}

// run probes the target its arguments and environment name and returns the
// process exit code: 0 healthy, 1 unhealthy or misused (Docker reserves 2).
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	target, err := targetURL(args, getenv("METRICPIPE_HTTP_ADDR"))
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		// No proxy: the target is this container or a peer, never behind
		// the HTTP_PROXY an image may inherit.
		client := &http.Client{Transport: &http.Transport{Proxy: nil}}
		err = probe(ctx, client, target)
	}
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	return 0
}

// targetURL returns the URL to probe: args[0] when it is a URL, else the
// path args[0] (default /readyz) on the address httpAddr listens on, with an
// unspecified host (":9102", "0.0.0.0:9102", "[::]:9102") replaced by
// 127.0.0.1.
func targetURL(args []string, httpAddr string) (string, error) {
	if len(args) > 1 {
		return "", fmt.Errorf("want at most one argument (a URL or a path), got %q", args)
	}
	path := "/readyz"
	if len(args) == 1 {
		if strings.Contains(args[0], "://") {
			if _, err := url.Parse(args[0]); err != nil {
				return "", err
			}
			return args[0], nil
		}
		if !strings.HasPrefix(args[0], "/") {
			return "", fmt.Errorf("argument %q: want a URL or a path starting with /", args[0])
		}
		path = args[0]
	}
	if httpAddr == "" {
		return "", errors.New("METRICPIPE_HTTP_ADDR is not set: pass the URL to probe")
	}
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return "", fmt.Errorf("METRICPIPE_HTTP_ADDR %q: %w", httpAddr, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// probe GETs target and returns nil when it answers 2xx; otherwise an error
// naming the status and the start of the body (/readyz names the failing
// checks there). ctx bounds the request.
func probe(ctx context.Context, client *http.Client, target string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s: %s", target, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
