package cluster

import (
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
)

// bin is the bridge binary, built once for the package.
var bin string

func TestMain(m *testing.M) { bridgetest.Main(m, &bin) }
