package mirror

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardWriter is the least a ResponseWriter can be: what the handler
// itself costs, without a recorder's or a connection's.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkPageCached is one v1 page answered from the page cache, as
// the 50 clients of benchmirror ask for it (docs/benchmarks.md, Mirror).
func BenchmarkPageCached(b *testing.B) {
	for _, withMetrics := range []bool{false, true} {
		name := "metrics=off"
		if withMetrics {
			name = "metrics=on"
		}
		b.Run(name, func(b *testing.B) {
			s := readySet(addrs(1, 1000)...)
			opts := Options{Keys: []Key{{Name: "kamailio1", Key: "bench-mirror-key-0123456789abcdef"}}}
			if withMetrics {
				opts.Metrics = NewMetrics(s)
			}
			h := NewHandler(s, opts)
			r := httptest.NewRequest("GET", "/api/bench-mirror-key-0123456789abcdef/banned/1250", nil)
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, r) // fills the cache
			b.ReportAllocs()
			for b.Loop() {
				r.Body = http.NoBody
				clear(w.h)
				h.ServeHTTP(w, r)
			}
		})
	}
}
