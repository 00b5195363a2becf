package load

import (
	"math/rand/v2"
	"strconv"
)

// The compressed scenario needs payloads that compress the way application messages do:
// the same keys over and over, values drawn from small vocabularies, numbers that vary.
// Random printable bytes, which the other scenarios send, hardly compress at all.

var (
	recordEvents = []string{"login", "logout", "click", "scroll", "purchase", "refund",
		"search", "view", "share", "comment", "like", "upload", "download", "error"}
	recordWords = []string{"amber", "birch", "cedar", "delta", "ember", "fjord", "glade",
		"harbor", "islet", "juniper", "kestrel", "lagoon", "meadow", "nimbus", "orchid",
		"prairie", "quartz", "raven", "sierra", "tundra", "umber", "vale", "willow", "yarrow"}
	recordRegions = []string{"eu-west", "eu-central", "us-east", "us-west", "ap-south", "sa-east"}
)

// appendRecords appends JSON records, one a line, to b until it holds n bytes, and cuts
// the last one there. The text is ASCII, so any cut of it is a valid text message.
func appendRecords(b []byte, rng *rand.Rand, n int) []byte {
	id := rng.IntN(1_000_000)
	ts := 1_700_000_000 + rng.Int64N(10_000_000)
	for len(b) < n {
		id += 1 + rng.IntN(7)
		ts += rng.Int64N(5000)
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, int64(id), 10)
		b = append(b, `,"user":"`...)
		b = append(b, recordWords[rng.IntN(len(recordWords))]...)
		b = strconv.AppendInt(b, int64(rng.IntN(1000)), 10)
		b = append(b, `","event":"`...)
		b = append(b, recordEvents[rng.IntN(len(recordEvents))]...)
		b = append(b, `","region":"`...)
		b = append(b, recordRegions[rng.IntN(len(recordRegions))]...)
		b = append(b, `","ts":`...)
		b = strconv.AppendInt(b, ts, 10)
		b = append(b, `,"amount":`...)
		b = strconv.AppendInt(b, int64(rng.IntN(100_000)), 10)
		b = append(b, '.')
		cents := rng.IntN(100)
		b = append(b, byte('0'+cents/10), byte('0'+cents%10))
		b = append(b, `,"tags":[`...)
		for i := range rng.IntN(4) {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, recordWords[rng.IntN(len(recordWords))]...)
			b = append(b, '"')
		}
		b = append(b, `],"ok":`...)
		b = strconv.AppendBool(b, rng.IntN(10) != 0)
		b = append(b, "}\n"...)
	}
	return b[:n]
}

// Records returns n bytes of JSON records, as appendRecords makes them, the same for the
// same seed: cmd/broadcast's messages, which its server and its receivers both make.
func Records(seed uint64, n int) []byte {
	return appendRecords(make([]byte, 0, n), rand.New(rand.NewPCG(seed, 0)), n)
}
