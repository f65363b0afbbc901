package echo

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// start runs ServeListener on 127.0.0.1:0 and returns its address and a
// function that stops it and returns Serve's error.
func start(t *testing.T, name string) (string, func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, name) }()
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("echo server did not stop")
			return nil
		}
	}
	t.Cleanup(func() { cancel() })
	return ln.Addr().String(), stop
}

// raw sends request bytes exactly as given and decodes the answer.
func raw(t *testing.T, addr, request string) (*http.Response, Reply) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var got Reply
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return resp, got
}

func TestServe(t *testing.T) {
	addr, stop := start(t, "blue")
	tests := map[string]struct {
		request string
		want    Reply
	}{
		"raw path is kept, query split off": {
			request: "GET /a/%2Fb/../c?x=1&y=%20 HTTP/1.1\r\n" +
				"Host: app.example.com\r\n" +
				"x-custom-thing: one\r\n" +
				"X-Multi: a\r\n" +
				"X-Multi: b\r\n" +
				"Connection: close\r\n\r\n",
			want: Reply{
				Name: "blue", Host: "app.example.com", Path: "/a/%2Fb/../c", Query: "x=1&y=%20", Method: "GET",
				Headers: map[string]string{
					"Host":           "app.example.com",
					"X-Custom-Thing": "one",
					"X-Multi":        "a, b",
					"Connection":     "close",
				},
			},
		},
		"double slashes and no query": {
			request: "DELETE //x//y/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			want: Reply{
				Name: "blue", Host: "h", Path: "//x//y/", Method: "DELETE",
				Headers: map[string]string{"Host": "h", "Connection": "close"},
			},
		},
		"body is read and ignored": {
			request: "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n" +
				"Content-Length: 5\r\nConnection: close\r\n\r\nhello",
			want: Reply{
				Name: "blue", Host: "h", Path: "/upload", Method: "POST",
				Headers: map[string]string{
					"Host": "h", "Content-Type": "text/plain", "Content-Length": "5", "Connection": "close",
				},
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			resp, got := raw(t, addr, tt.request)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status = %d, want 200", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("reply:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve returned %v after cancel, want nil", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("listener still accepts after shutdown")
	}
}

// TestServeStopsBeforeFirstRequest cancels at once: Serve must still return.
func TestServeStopsBeforeFirstRequest(t *testing.T) {
	_, stop := start(t, "x")
	if err := stop(); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
}

func TestServeBadAddress(t *testing.T) {
	err := Serve(context.Background(), "256.0.0.1:bad", "x")
	if err == nil || !strings.Contains(err.Error(), "listen 256.0.0.1:bad") {
		t.Fatalf("Serve = %v, want a listen error naming the address", err)
	}
}
