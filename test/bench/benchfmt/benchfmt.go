// Package benchfmt formats the figures the benchmark commands print, so
// every row of `make bench` reads the same way.
package benchfmt

import (
	"fmt"
	"strings"
	"time"
)

// Num writes n with thousands separators: 100000 -> "100,000".
func Num(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Secs is a duration in seconds with two decimals.
func Secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// Ms is a duration in milliseconds, with two decimals below 10 ms.
func Ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0f ms", float64(d)/1e6)
}
