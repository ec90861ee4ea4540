// Package tlstest holds the end-to-end suites of TLS to LAPI: a real LAPI
// (crowdsec v1.7.8, test/lapitest) serving HTTPS from a PKI made at test
// time, the embedded bouncer's Run with API key, client certificate,
// wrong CA and insecure_skip_verify, the real bridge binary's machine
// login with password and with a client certificate, and the two LAPI
// clients of one process keeping their own TLS identities. Everything is
// in _test files; see docs/configuration.md, "TLS to LAPI".
package tlstest
