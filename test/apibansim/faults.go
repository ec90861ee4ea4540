package apibansim

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault is a misbehaviour served instead of the next answer.
type Fault int

const (
	// Fault500, Fault502 and Fault503 answer with that status and an
	// HTML page, as a proxy in front of the service would.
	Fault500 Fault = iota + 1
	Fault502
	Fault503
	// FaultReset drops the connection with a TCP reset, no response.
	FaultReset
	// FaultHang never answers: it holds the request until the client
	// gives up, the Sim closes or Options.MaxHang passes.
	FaultHang
	// FaultTruncated is 200 with JSON cut off half-way.
	FaultTruncated
	// FaultEmpty is 200 with an empty body.
	FaultEmpty
	// FaultEmptyObject is 200 with "{}".
	FaultEmptyObject
	// FaultOversized is 200 with a body of Options.OversizeBytes.
	FaultOversized
	// FaultMalformed is 200 with a body that is not JSON.
	FaultMalformed
	// Fault429 is the rate-limit answer, whatever the real count.
	Fault429

	// The hostile kinds below are well-formed answers that a client must
	// refuse rather than retry; they are not in Faults. Their pages list
	// fresh addresses, HostileEntries(k, n) for the k-th hostile page the
	// Sim served, so a test can tell what came from them.

	// FaultCursorCycle is a full page whose ID alternates: 1000 for the
	// first one served, 2000 for the second, 1000, 2000, ...
	FaultCursorCycle
	// FaultCursorBack is a full page whose ID goes down: 3000 for the
	// first one served, then 2000, 1000, and 1 from then on.
	FaultCursorBack
	// FaultOverlong is one page of Options.OverlongEntries entries, more
	// than a page holds, with an ID above every listed one.
	FaultOverlong
	// Fault302 redirects to the same path under /moved on the Sim, where
	// a client that follows it is counted as EndpointOther.
	Fault302

	// NoFault, queued, lets one request through to its normal answer, so
	// that good pages can come before a fault.
	NoFault
)

// Faults lists every kind a retry can get past, for table tests.
func Faults() []Fault {
	return []Fault{Fault500, Fault502, Fault503, FaultReset, FaultHang, FaultTruncated,
		FaultEmpty, FaultEmptyObject, FaultOversized, FaultMalformed, Fault429}
}

// HostileFaults lists the kinds a client must refuse without retrying.
func HostileFaults() []Fault {
	return []Fault{FaultCursorCycle, FaultCursorBack, FaultOverlong, Fault302}
}

func (f Fault) String() string {
	names := map[Fault]string{
		Fault500: "500", Fault502: "502", Fault503: "503", FaultReset: "reset",
		FaultHang: "hang", FaultTruncated: "truncated", FaultEmpty: "empty",
		FaultEmptyObject: "empty-object", FaultOversized: "oversized",
		FaultMalformed: "malformed", Fault429: "429",
		FaultCursorCycle: "cursor-cycle", FaultCursorBack: "cursor-back",
		FaultOverlong: "overlong", Fault302: "302", NoFault: "no-fault",
	}
	if n, ok := names[f]; ok {
		return n
	}
	return "Fault(" + strconv.Itoa(int(f)) + ")"
}

// FailNext queues faults; each is served instead of the answer to one
// upcoming request, in order, on any endpoint.
func (s *Sim) FailNext(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faults...)
}

// PendingFaults is the number of queued faults not yet served.
func (s *Sim) PendingFaults() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.faults)
}

// popFault takes the next queued fault; the caller holds s.mu.
func (s *Sim) popFault() (Fault, bool) {
	if len(s.faults) == 0 {
		return 0, false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f, true
}

func (s *Sim) serveFault(w http.ResponseWriter, r *http.Request, f Fault) {
	switch f {
	case Fault500, Fault502, Fault503:
		writeHTML(w, map[Fault]int{Fault500: 500, Fault502: 502, Fault503: 503}[f])
	case FaultReset:
		ResetConn(w)
	case FaultHang:
		s.hang(r)
	case FaultTruncated:
		writeRaw(w, http.StatusOK, `{"ipaddress":["192.0.2.1","198.51.100.`)
	case FaultEmpty:
		writeRaw(w, http.StatusOK, "")
	case FaultEmptyObject:
		writeRaw(w, http.StatusOK, "{}")
	case FaultOversized:
		s.writeOversized(w)
	case FaultMalformed:
		writeRaw(w, http.StatusOK, `{"ipaddress": [192.0.2.1], ID: none`)
	case Fault429:
		writeRateLimited(w)
	case FaultCursorCycle, FaultCursorBack, FaultOverlong:
		s.writeHostile(w, f)
	case Fault302:
		w.Header().Set("Location", "/moved"+r.URL.EscapedPath())
		writeRaw(w, http.StatusFound, "")
	default:
		panic(fmt.Sprintf("apibansim: unknown fault %d", int(f)))
	}
}

func writeHTML(w http.ResponseWriter, status int) {
	text := strconv.Itoa(status) + " " + http.StatusText(status)
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "<html><head><title>%s</title></head><body><center><h1>%s</h1></center><hr><center>nginx</center></body></html>\n", text, text)
}

func writeRaw(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// ResetConn takes the connection over and closes it with SO_LINGER 0, so
// the client reads "connection reset by peer" rather than a clean EOF.
// Other test servers (the LAPI proxy of test/faults) use it too.
func ResetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// hang holds the request, then drops the connection without answering.
func (s *Sim) hang(r *http.Request) {
	timer := time.NewTimer(s.maxHang)
	defer timer.Stop()
	select {
	case <-r.Context().Done():
	case <-s.closing:
	case <-timer.C:
	}
	panic(http.ErrAbortHandler)
}

// writeOversized streams a well-formed page padded past the size, so
// only a size cap, not a parse error, can stop a client.
func (s *Sim) writeOversized(w http.ResponseWriter) {
	const head, tail = `{"ipaddress":["192.0.2.1","`, `"],"ID":"1"}`
	pad := s.oversize - len(head) - len(tail)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(head)+max(pad, 0)+len(tail)))
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = bw.WriteString(head)
	chunk := strings.Repeat("x", 64<<10)
	for pad > 0 {
		n := min(pad, len(chunk))
		if _, err := bw.WriteString(chunk[:n]); err != nil {
			return // the client stopped reading, as a capped client should
		}
		pad -= n
	}
	_, _ = bw.WriteString(tail)
	_ = bw.Flush()
}
