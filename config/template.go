package config

import _ "embed"

// Template is the packaged configuration file, with comments and
// ${APIBAN_API_KEY} / ${CROWDSEC_APIBAN_PASSWORD} placeholders; loaded with
// those two variables set it yields exactly Default() (a test checks).
// Treat it as read-only: go:embed cannot export a constant.
//
//go:embed crowdsec-apiban-bridge.yaml
var Template []byte
