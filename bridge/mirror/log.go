package mirror

import (
	"io"
	"log"
)

// discardLog silences net/http's own error log: its TLS handshake and
// header errors may quote a request, whose v1 path holds a key.
func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }
