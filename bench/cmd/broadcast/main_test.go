package main

import (
	"bytes"
	"compress/flate"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPayload checks the messages: the receivers accept each as it was made and nothing
// else, and a 16 KiB one compresses as application text does, neither hardly nor
// almost to nothing as the byte ramp sent before did (29 to 1).
func TestPayload(t *testing.T) {
	const size = 16 << 10
	makeRecords(size)
	for i := range 2 * bodies {
		p := payload(i, size, time.Now())
		require.NoError(t, check(p, i, size))
		assert.Error(t, check(p, i+1, size), "message %d taken for the next", i)
		p[size/2]++
		assert.Error(t, check(p, i, size), "message %d with a changed byte", i)
	}
	assert.NotEqual(t, body(0), body(1))

	var z bytes.Buffer
	fw, err := flate.NewWriter(&z, flate.BestSpeed)
	require.NoError(t, err)
	fw.Write(payload(0, size, time.Now()))
	require.NoError(t, fw.Flush())
	ratio := float64(size) / float64(z.Len())
	assert.True(t, ratio > 3 && ratio < 6, "16 KiB compressed %.1f to 1", ratio)
}
