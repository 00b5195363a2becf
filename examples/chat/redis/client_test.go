package main

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hybi/websocket/examples/chat/internal/chat"
)

// TestClientFailover runs the terminal client of examples/chat/client with two nodes'
// URLs: when its node stops, it resumes on the other, and prints what Ann said
// meanwhile, once.
func TestClientFailover(t *testing.T) {
	ctx := testContext(t)
	r := startRedis(t)
	a, b, c := startNode(t, r.addr()), startNode(t, r.addr()), startNode(t, r.addr())

	bin := filepath.Join(t.TempDir(), "client")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/hybi/websocket/examples/chat/client")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	ann, _ := join(ctx, t, a, "room=go&name=ann")
	endpoint := func(n *node) string { return strings.TrimSuffix(n.url, "?") }
	cmd := exec.Command(bin, "-name", "bob", "-room", "go", "-url", endpoint(b)+","+endpoint(c))
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func() string {
		t.Helper()
		select {
		case l := <-lines:
			return l
		case <-ctx.Done():
			t.Fatalf("no line: %v", ctx.Err())
			return ""
		}
	}
	t.Cleanup(func() {
		// The end of its input ends the client; a client that does not end is killed.
		stdin.Close()
		exited := make(chan error, 1)
		go func() {
			for range lines {
			}
			exited <- cmd.Wait()
		}()
		select {
		case err := <-exited:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("the client did not end at the end of its input")
			<-exited
		}
	})

	assert.Equal(t, "* in go with ann, bob", next())
	require.Equal(t, chat.Event{Type: "join", Name: "bob"}, ann.next(ctx, t))
	ann.send(ctx, t, "one")
	assert.Equal(t, "ann: one", next())

	b.stop(t)
	assert.True(t, strings.HasPrefix(next(), "* disconnected"))
	ann.send(ctx, t, "two")
	assert.Equal(t, "* in go with ann, bob", next())
	assert.Equal(t, "ann: two", next())
	ann.send(ctx, t, "three")
	assert.Equal(t, "ann: three", next())
}
