package mirror

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzRequest sends arbitrary paths, bearer keys and bodies through the
// handler: never a panic, only APIBAN's statuses, and every answer one
// line of JSON in APIBAN's shape (or the ipset list).
func FuzzRequest(f *testing.F) {
	f.Add("GET", "/api/"+testKey+"/banned/100", "", "")
	f.Add("POST", "/api/get", testKey, `{"set":"sip","id":"100"}`)
	f.Add("POST", "/api/check", testKey, `{"set":"sip","ipaddress":"203.0.113.7"}`)
	f.Add("GET", "/api/"+testKey+"/check/198.51.100.3", "", "")
	f.Add("POST", "/api/get", testKey, `{"id":1e999}`)
	h := NewHandler(readySet(decision(5, "Ip", "203.0.113.7"), decision(7, "Range", "198.51.100.0/24")),
		Options{Keys: []Key{{Name: "k", Key: testKey}}})
	f.Fuzz(func(t *testing.T, method, path, auth, body string) {
		req, err := http.NewRequest(method, "http://mirror"+path, bytes.NewBufferString(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 403, 404, 405, 429:
		default:
			t.Fatalf("status %d", rec.Code)
		}
		out := rec.Body.Bytes()
		if rec.Code == 405 || rec.Header().Get("Content-Type") == "text/plain; charset=utf-8" {
			return // the mux's method answer; the ipset list
		}
		var r struct {
			ID *string `json:"ID"`
		}
		if bytes.ContainsRune(out, '\n') || json.Unmarshal(out, &r) != nil || r.ID == nil {
			t.Fatalf("answer %q", out)
		}
	})
}
