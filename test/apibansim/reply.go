package apibansim

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// EndForm is one of the ways APIBAN (or a mock of it) says that nothing
// follows the cursor.
type EndForm int

const (
	// EndArray400 is the documented form:
	// 400 {"ipaddress":["no new bans"],"ID":"none"}.
	EndArray400 EndForm = iota
	// EndString400 is 400 {"ipaddress":"no new bans","ID":"none"}.
	EndString400
	// EndArray404 is 404 {"ipaddress":["no new bans"],"ID":"none"}.
	EndArray404
	// EndString404 is 404 {"ipaddress":"no new bans","ID":"none"}.
	EndString404
	// EndIDOnly200 is 200 {"ID":"none"}, as some mocks send.
	EndIDOnly200
)

// EndForms lists every form, for table tests.
func EndForms() []EndForm {
	return []EndForm{EndArray400, EndString400, EndArray404, EndString404, EndIDOnly200}
}

func (f EndForm) String() string {
	switch f {
	case EndArray400:
		return "400-array"
	case EndString400:
		return "400-string"
	case EndArray404:
		return "404-array"
	case EndString404:
		return "404-string"
	case EndIDOnly200:
		return "200-id-only"
	}
	return "EndForm(" + strconv.Itoa(int(f)) + ")"
}

const noNewBans = "no new bans"

// reply is APIBAN's one response shape. IPAddress is a []string or a
// string depending on the case, exactly as the service mixes them.
type reply struct {
	IPAddress any    `json:"ipaddress,omitempty"`
	ID        string `json:"ID"`
}

func writeJSON(w http.ResponseWriter, status int, r reply) {
	body, err := json.Marshal(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeEnd(w http.ResponseWriter, f EndForm) {
	switch f {
	case EndString400:
		writeJSON(w, http.StatusBadRequest, reply{IPAddress: noNewBans, ID: "none"})
	case EndArray404:
		writeJSON(w, http.StatusNotFound, reply{IPAddress: []string{noNewBans}, ID: "none"})
	case EndString404:
		writeJSON(w, http.StatusNotFound, reply{IPAddress: noNewBans, ID: "none"})
	case EndIDOnly200:
		writeJSON(w, http.StatusOK, reply{ID: "none"})
	default:
		writeJSON(w, http.StatusBadRequest, reply{IPAddress: []string{noNewBans}, ID: "none"})
	}
}

func writePage(w http.ResponseWriter, ips []string, lastID int64) {
	writeJSON(w, http.StatusOK, reply{IPAddress: ips, ID: strconv.FormatInt(lastID, 10)})
}

func writeUnauthorized(w http.ResponseWriter) {
	writeJSON(w, http.StatusForbidden, reply{IPAddress: "none", ID: "unauthorized"})
}

func writeRateLimited(w http.ResponseWriter) {
	writeJSON(w, http.StatusTooManyRequests, reply{IPAddress: "rate limit exceeded", ID: "unauthorized"})
}

// writeBadRequest answers requests the real service would refuse. The ID
// is deliberately not "none" so that a client bug sending a malformed
// request is not mistaken for the end of the list.
func writeBadRequest(w http.ResponseWriter, why string) {
	writeJSON(w, http.StatusBadRequest, reply{IPAddress: why, ID: "error"})
}

// writeCheck answers the check endpoints.
func writeCheck(w http.ResponseWriter, ip string, id int64, listed bool) {
	if !listed {
		writeJSON(w, http.StatusBadRequest, reply{IPAddress: []string{"not blocked"}, ID: "none"})
		return
	}
	writeJSON(w, http.StatusOK, reply{IPAddress: []string{ip}, ID: strconv.FormatInt(id, 10)})
}
