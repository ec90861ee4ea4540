package cluster

import (
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/pgtest"
)

// pg is pgtest's cluster failing the test on errors; it is stopped and
// removed at test end.
type pg struct {
	*pgtest.PG
}

func startPG(t *testing.T, ns, addr string, port int) *pg {
	t.Helper()
	p, err := pgtest.Start(ns, addr, port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return &pg{p}
}

func (p *pg) dbConfig() string { return p.DBConfig() }

func (p *pg) createDB(t *testing.T) {
	t.Helper()
	if err := p.CreateDB(); err != nil {
		t.Fatal(err)
	}
}

func (p *pg) dropDB(t *testing.T) {
	t.Helper()
	if err := p.DropDB(); err != nil {
		t.Fatal(err)
	}
}

func (p *pg) sql(t *testing.T, db string, stmts ...string) string {
	t.Helper()
	out, err := p.SQL(db, stmts...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (p *pg) activeRows(t *testing.T, origin string) map[string]int {
	t.Helper()
	rows, err := p.ActiveRows(origin)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
