package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hybi/websocket"
	"github.com/hybi/websocket/internal/leak"
)

// TestMain fails the run if a test left goroutines running.
func TestMain(m *testing.M) { leak.Main(m) }

// message is one message the fake server sends in a case, expecting it back.
type message struct {
	typ websocket.MessageType
	p   []byte
}

// fuzzingServer is a stand-in for the suite's fuzzingserver: it serves the case count,
// runs each case by sending its messages and checking the echoes, then closes with the
// case's status, and accepts the request to update the reports. It records every request
// it gets.
type fuzzingServer struct {
	t     *testing.T
	cases []fakeCase

	mu       sync.Mutex
	requests []string
	handlers sync.WaitGroup
}

type fakeCase struct {
	msgs []message
	code websocket.StatusCode // the status the server closes with
}

func (s *fuzzingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handlers.Add(1)
	defer s.handlers.Done()
	s.mu.Lock()
	s.requests = append(s.requests, r.URL.RequestURI())
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()

	if r.URL.Path == "/runCase" {
		// The compression cases (12.x, 13.x) need the client to offer permessage-deflate.
		assert.Contains(s.t, r.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Compression: websocket.CompressionContextTakeover})
	if !assert.NoError(s.t, err) {
		return
	}
	defer c.CloseNow()
	switch r.URL.Path {
	case "/getCaseCount":
		assert.NoError(s.t, c.Write(ctx, websocket.MessageText, []byte(fmt.Sprint(len(s.cases)))))
		assert.NoError(s.t, c.Close(websocket.StatusNormalClosure, ""))
	case "/runCase":
		var n int
		_, err := fmt.Sscan(r.URL.Query().Get("case"), &n)
		if !assert.NoError(s.t, err) || !assert.True(s.t, n >= 1 && n <= len(s.cases), "case %d", n) {
			return
		}
		c.SetReadLimit(16 << 20)
		tc := s.cases[n-1]
		for i, m := range tc.msgs {
			errc := make(chan error, 1)
			go func() { errc <- c.Write(ctx, m.typ, m.p) }()
			typ, p, err := c.Read(ctx)
			assert.NoError(s.t, <-errc, "case %d message %d", n, i)
			if !assert.NoError(s.t, err, "case %d message %d", n, i) {
				return
			}
			assert.Equal(s.t, m.typ, typ, "case %d message %d", n, i)
			assert.True(s.t, bytes.Equal(m.p, p), "case %d message %d: the echo differs", n, i)
		}
		assert.NoError(s.t, c.Close(tc.code, "case over"), "case %d", n)
	case "/updateReports":
		assert.NoError(s.t, c.Close(websocket.StatusNormalClosure, ""))
	default:
		s.t.Errorf("unexpected request %s", r.URL)
	}
}

// start runs the fake server and returns its ws:// URL. The test waits for its handlers
// when it ends.
func (s *fuzzingServer) start() string {
	srv := httptest.NewServer(s)
	s.t.Cleanup(func() {
		srv.Close()
		s.handlers.Wait() // hijacked connections are not waited for by Close
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func (s *fuzzingServer) requestLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func testCases() []fakeCase {
	big := make([]byte, 2<<20) // over the library's default read limit of 1 MiB
	for i := range big {
		big[i] = byte(i)
	}
	return []fakeCase{
		{msgs: []message{
			{websocket.MessageText, []byte("Hello, κόσμε")},
			{websocket.MessageBinary, []byte{0x00, 0xff, 0x80}},
			{websocket.MessageText, []byte{}},
		}, code: websocket.StatusNormalClosure},
		{msgs: []message{{websocket.MessageBinary, big}}, code: websocket.StatusNormalClosure},
		{msgs: []message{
			{websocket.MessageText, bytes.Repeat([]byte("compressible text, "), 5000)},
			{websocket.MessageText, bytes.Repeat([]byte("compressible text, "), 5000)},
		}, code: websocket.StatusNormalClosure},
		{code: websocket.StatusGoingAway},
	}
}

func TestRunAllCases(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	fs := &fuzzingServer{t: t, cases: testCases()}
	u := fs.start()

	var out bytes.Buffer
	require.NoError(t, run(ctx, u+"/", "our agent", 0, 0, &out))
	assert.Equal(t, []string{
		"/getCaseCount",
		"/runCase?case=1&agent=our+agent",
		"/runCase?case=2&agent=our+agent",
		"/runCase?case=3&agent=our+agent",
		"/runCase?case=4&agent=our+agent",
		"/updateReports?agent=our+agent",
	}, fs.requestLog())
	assert.Equal(t, `running cases 1 to 4 of 4 as "our agent"
case 1: server closed with 1000
case 2: server closed with 1000
case 3: server closed with 1000
case 4: server closed with 1001
reports updated
`, out.String())
}

func TestRunSomeCases(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	fs := &fuzzingServer{t: t, cases: testCases()}
	u := fs.start()

	var out bytes.Buffer
	require.NoError(t, run(ctx, u, "hybi-websocket", 2, 3, &out))
	assert.Equal(t, []string{
		"/getCaseCount",
		"/runCase?case=2&agent=hybi-websocket",
		"/runCase?case=3&agent=hybi-websocket",
		"/updateReports?agent=hybi-websocket",
	}, fs.requestLog())
}

func TestRunPastLastCase(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	fs := &fuzzingServer{t: t, cases: testCases()}
	u := fs.start()

	assert.Error(t, run(ctx, u, "hybi-websocket", 1, len(fs.cases)+1, &bytes.Buffer{}))
	assert.Equal(t, []string{"/getCaseCount"}, fs.requestLog(), "no case runs")
}

func TestParseRange(t *testing.T) {
	for _, tt := range []struct {
		in          string
		first, last int
		ok          bool
	}{
		{"", 0, 0, true},
		{"7", 7, 7, true},
		{"1-517", 1, 517, true},
		{"3-3", 3, 3, true},
		{"0-5", 0, 0, false},
		{"5-3", 0, 0, false},
		{"1-", 0, 0, false},
		{"-3", 0, 0, false},
		{"a-b", 0, 0, false},
		{"1-2-3", 0, 0, false},
	} {
		first, last, err := parseRange(tt.in)
		if tt.ok {
			assert.NoError(t, err, tt.in)
		} else {
			assert.Error(t, err, tt.in)
		}
		assert.Equal(t, [2]int{tt.first, tt.last}, [2]int{first, last}, tt.in)
	}
}
