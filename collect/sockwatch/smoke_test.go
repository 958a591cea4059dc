package sockwatch

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/flowblame/flowblame/ingest"
)

type printSink struct {
	t *testing.T
	n map[string]int
}

func (p *printSink) Socket(r ingest.SocketRecord) error {
	p.n[r.Kind]++
	if p.n[r.Kind] < 4 || r.Kind == "destroy" && p.n[r.Kind] < 10 {
		b, _ := json.Marshal(r)
		p.t.Log(string(b))
	}
	return nil
}
func (p *printSink) Process(r ingest.ProcessInfo) error {
	p.n["proc"]++
	if p.n["proc"] < 4 {
		b, _ := json.Marshal(r)
		p.t.Log(string(b))
	}
	return nil
}

func TestSmoke(t *testing.T) {
	if os.Getenv("SMOKE") == "" {
		t.Skip()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := &printSink{t: t, n: map[string]int{}}
	st, err := Run(ctx, Config{Interval: time.Second}, s)
	t.Logf("%+v %v %v", st, err, s.n)
}
