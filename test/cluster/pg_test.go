package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// pgBin is Debian bookworm's PostgreSQL (package postgresql, 15).
const pgBin = "/usr/lib/postgresql/15/bin"

// pg is a throw-away PostgreSQL cluster run by the postgres user in a
// temporary directory, listening on addr:port inside a namespace (or the
// test's, when ns is ""). It is stopped and removed at test end.
type pg struct {
	dir, ns, addr string
	port          int
}

// dbConfig is LAPI's db_config body for the crowdsec database.
func (p *pg) dbConfig() string {
	return fmt.Sprintf("type: postgresql\nuser: crowdsec\npassword: %s\ndb_name: crowdsec\nhost: %s\nport: %d\nsslmode: disable\n",
		dbPassword, p.addr, p.port)
}

const dbPassword = "cluster-db-password"

func startPG(t *testing.T, ns, addr string, port int) *pg {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pgBin, "initdb")); err != nil {
		t.Fatalf("PostgreSQL 15 not installed (bash test/deps.sh installs Debian's postgresql): %v", err)
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("no postgres user (Debian's postgresql creates it): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Not t.TempDir: its parents are root's, mode 0700.
	dir, err := os.MkdirTemp("", "cluster-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &pg{dir: dir, ns: ns, addr: addr, port: port}
	t.Cleanup(func() {
		_, _ = p.as("pg_ctl", "-D", p.path("data"), "-m", "immediate", "-w", "stop")
		_ = os.RemoveAll(dir)
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if out, err := p.as("initdb", "-D", p.path("data"), "-A", "trust", "-U", "postgres"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	// LAPIs connect from other namespaces' addresses.
	hba, err := os.OpenFile(p.path("data/pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(hba, "host all all 0.0.0.0/0 trust")
	hba.Close()
	opts := fmt.Sprintf("-k %s -p %d -c listen_addresses=%s", dir, port, addr)
	if out, err := p.as("pg_ctl", "-D", p.path("data"), "-o", opts, "-l", p.path("log"), "-w", "start"); err != nil {
		log, _ := os.ReadFile(p.path("log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	p.createDB(t)
	return p
}

func (p *pg) path(name string) string { return filepath.Join(p.dir, name) }

// as runs a PostgreSQL program as the postgres user, in p's namespace.
func (p *pg) as(prog string, args ...string) (string, error) {
	argv := append([]string{"runuser", "-u", "postgres", "--", filepath.Join(pgBin, prog)}, args...)
	if p.ns != "" {
		argv = append([]string{"ip", "netns", "exec", p.ns}, argv...)
	}
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}

// sql runs statements as the superuser and returns the unaligned output.
func (p *pg) sql(t *testing.T, db string, stmts ...string) string {
	t.Helper()
	args := []string{"-h", p.addr, "-p", strconv.Itoa(p.port), "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-tA"}
	for _, s := range stmts {
		args = append(args, "-c", s)
	}
	out, err := p.as("psql", args...)
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", stmts, err, out)
	}
	return strings.TrimSpace(out)
}

// createDB makes the crowdsec role and an empty crowdsec database.
func (p *pg) createDB(t *testing.T) {
	t.Helper()
	if p.sql(t, "postgres", "select count(*) from pg_roles where rolname = 'crowdsec'") == "0" {
		p.sql(t, "postgres", "create user crowdsec password '"+dbPassword+"'")
	}
	p.sql(t, "postgres", "create database crowdsec owner crowdsec")
}

// dropDB drops the crowdsec database, as a lost or replaced database
// server leaves LAPI: nothing of it is left.
func (p *pg) dropDB(t *testing.T) {
	t.Helper()
	p.sql(t, "postgres", "drop database crowdsec with (force)")
}

// activeRows counts, per value, the active decisions of origin in the
// crowdsec database.
func (p *pg) activeRows(t *testing.T, origin string) map[string]int {
	t.Helper()
	out := p.sql(t, "crowdsec", "select value || ' ' || count(*) from decisions where origin = '"+origin+"' and until > now() group by value")
	rows := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		n, _ := strconv.Atoi(f[1])
		rows[f[0]] = n
	}
	return rows
}
