package apiban

import (
	"testing"
	"time"
)

func TestPacerSlidingWindow(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	p := newPacer(3, time.Second)
	for _, ms := range []int{0, 100, 200} {
		if d := p.delay(at(ms)); d != 0 {
			t.Fatalf("delay at %dms = %s, want 0 while under the limit", ms, d)
		}
		p.record(at(ms))
	}
	steps := []struct {
		now  int
		want time.Duration
	}{
		{300, 700 * time.Millisecond}, // the oldest stamp (0) leaves at 1000
		{999, time.Millisecond},
		{1000, 0}, // a stamp exactly a window old no longer counts
	}
	for _, s := range steps {
		if d := p.delay(at(s.now)); d != s.want {
			t.Fatalf("delay at %dms = %s, want %s", s.now, d, s.want)
		}
	}
	p.record(at(1000))
	if d := p.delay(at(1000)); d != 100*time.Millisecond {
		t.Fatalf("after a 4th request, delay = %s, want until the 100ms stamp leaves", d)
	}
}

func TestPacerOff(t *testing.T) {
	p := newPacer(0, time.Second)
	for range 100 {
		p.record(time.Unix(0, 0))
	}
	if d := p.delay(time.Unix(0, 0)); d != 0 || len(p.stamps) != 0 {
		t.Fatalf("an unpaced client waited %s and kept %d stamps", d, len(p.stamps))
	}
}
