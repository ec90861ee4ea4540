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

func writeJSON(w http.ResponseWriter, status int, r reply) {
	body, _ := json.Marshal(r) // strings and string lists always encode
	writeBody(w, status, body)
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// The answers, each as APIBAN sends it (docs/sip.md lists them).
func writePage(w http.ResponseWriter, body []byte) {
	writeBody(w, http.StatusOK, body)
}

func pageBody(ips []string, id string) []byte {
	body, _ := json.Marshal(reply{IPAddress: ips, ID: id})
	return body
}

func writeEnd(w http.ResponseWriter) {
	writeJSON(w, http.StatusBadRequest, reply{IPAddress: []string{"no new bans"}, ID: "none"})
}

func writeUnauthorized(w http.ResponseWriter) {
	writeJSON(w, http.StatusForbidden, reply{IPAddress: "none", ID: "unauthorized"})
}

func writeRateLimited(w http.ResponseWriter) {
	writeJSON(w, http.StatusTooManyRequests, reply{IPAddress: "rate limit exceeded", ID: "unauthorized"})
}

func writeListed(w http.ResponseWriter, ip, id string) {
	writeJSON(w, http.StatusOK, reply{IPAddress: []string{ip}, ID: id})
}

func writeNotListed(w http.ResponseWriter) {
	writeJSON(w, http.StatusBadRequest, reply{IPAddress: []string{"not blocked"}, ID: "none"})
}

// writeBadRequest refuses a malformed request. Its ID is not "none", so
// that a client sending a bad cursor never takes it for the end of the
// list.
func writeBadRequest(w http.ResponseWriter, why string) {
	writeJSON(w, http.StatusBadRequest, reply{IPAddress: why, ID: "error"})
}

// writeNotReady: LAPI's first answer has not arrived; APIBAN's clients
// retry a 5xx later and keep their cursor.
func writeNotReady(w http.ResponseWriter) {
	writeJSON(w, http.StatusServiceUnavailable, reply{IPAddress: "not ready", ID: "error"})
}
