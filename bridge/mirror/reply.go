package mirror

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// reply is APIBAN's one answer shape: ipaddress is a list or a string
// depending on the case, as APIBAN mixes them. Bodies are one line:
// Kamailio's http_client keeps only the first line.
type reply struct {
	IPAddress any    `json:"ipaddress,omitempty"`
	ID        string `json:"ID"`
}

// jsonType is every JSON answer's Content-Type, one value shared by all
// answers: net/http only reads a handler's header values.
var jsonType = []string{"application/json"}

// Each write returns the status it answered, for the metrics.
func writeJSON(w http.ResponseWriter, status int, r reply) int {
	body, _ := json.Marshal(r) // strings and string lists always encode
	return writeBody(w, status, body, []string{strconv.Itoa(len(body))})
}

func writeBody(w http.ResponseWriter, status int, body []byte, length []string) int {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Content-Length"] = length
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return status
}

// The answers, each as APIBAN sends it (docs/sip.md lists them).
func writePage(w http.ResponseWriter, p cachedPage) int {
	return writeBody(w, http.StatusOK, p.body, p.length)
}

// newCachedPage encodes a page once, with its Content-Length, for every
// client that asks for it.
func newCachedPage(ips []string, id string) cachedPage {
	body, _ := json.Marshal(reply{IPAddress: ips, ID: id})
	return cachedPage{body: body, length: []string{strconv.Itoa(len(body))}, entries: len(ips)}
}

func writeEnd(w http.ResponseWriter) int {
	return writeJSON(w, http.StatusBadRequest, reply{IPAddress: []string{"no new bans"}, ID: "none"})
}

func writeUnauthorized(w http.ResponseWriter) int {
	return writeJSON(w, http.StatusForbidden, reply{IPAddress: "none", ID: "unauthorized"})
}

func writeRateLimited(w http.ResponseWriter) int {
	return writeJSON(w, http.StatusTooManyRequests, reply{IPAddress: "rate limit exceeded", ID: "unauthorized"})
}

func writeListed(w http.ResponseWriter, ip, id string) int {
	return writeJSON(w, http.StatusOK, reply{IPAddress: []string{ip}, ID: id})
}

func writeNotListed(w http.ResponseWriter) int {
	return writeJSON(w, http.StatusBadRequest, reply{IPAddress: []string{"not blocked"}, ID: "none"})
}

// writeBadRequest refuses a malformed request. Its ID is not "none", so
// that a client sending a bad cursor never takes it for the end of the
// list.
func writeBadRequest(w http.ResponseWriter, why string) int {
	return writeJSON(w, http.StatusBadRequest, reply{IPAddress: why, ID: "error"})
}

// writeNotReady: LAPI's first answer has not arrived; APIBAN's clients
// retry a 5xx later and keep their cursor.
func writeNotReady(w http.ResponseWriter) int {
	return writeJSON(w, http.StatusServiceUnavailable, reply{IPAddress: "not ready", ID: "error"})
}
