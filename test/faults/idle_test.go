package faults

import "net/http"

// closeIdle drops net/http's idle keep-alive connections, whose reader
// goroutines outlive any client until the process ends.
func closeIdle() {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
}
