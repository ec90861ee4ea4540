// Package pgtest runs a throw-away PostgreSQL 15 cluster (Debian's
// postgresql package) as the postgres user in a temporary directory,
// optionally inside a network namespace: no system service, removed by
// Stop. test/cluster and the scale-out bench put LAPI on it.
package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// Bin is Debian bookworm's PostgreSQL 15.
const Bin = "/usr/lib/postgresql/15/bin"

// Password is the crowdsec role's.
const Password = "pgtest-crowdsec-password"

// PG is one running cluster listening on Addr:Port inside NS ("" is the
// caller's namespace).
type PG struct {
	Dir, NS, Addr string
	Port          int
}

// Start initialises and starts a cluster with an empty crowdsec database
// owned by the crowdsec role.
func Start(ns, addr string, port int) (*PG, error) {
	if _, err := os.Stat(filepath.Join(Bin, "initdb")); err != nil {
		return nil, fmt.Errorf("PostgreSQL 15 not installed (bash test/deps.sh installs Debian's postgresql): %w", err)
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("no postgres user (Debian's postgresql creates it): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Not a test's TempDir: its parents are root's, mode 0700.
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	p := &PG{Dir: dir, NS: ns, Addr: addr, Port: port}
	if err := p.start(uid, gid); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *PG) start(uid, gid int) error {
	if err := os.Chmod(p.Dir, 0o755); err != nil {
		return err
	}
	if err := os.Chown(p.Dir, uid, gid); err != nil {
		return err
	}
	if out, err := p.as("initdb", "-D", p.path("data"), "-A", "trust", "-U", "postgres"); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// LAPIs may connect from other namespaces' addresses.
	hba, err := os.OpenFile(p.path("data/pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fmt.Fprintln(hba, "host all all 0.0.0.0/0 trust")
	hba.Close()
	opts := fmt.Sprintf("-k %s -p %d -c listen_addresses=%s -c max_connections=300", p.Dir, p.Port, p.Addr)
	if out, err := p.as("pg_ctl", "-D", p.path("data"), "-o", opts, "-l", p.path("log"), "-w", "start"); err != nil {
		log, _ := os.ReadFile(p.path("log"))
		return fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	return p.CreateDB()
}

// Stop stops the cluster at once and removes its directory.
func (p *PG) Stop() {
	_, _ = p.as("pg_ctl", "-D", p.path("data"), "-m", "immediate", "-w", "stop")
	_ = os.RemoveAll(p.Dir)
}

// DBConfig is LAPI's db_config body for the crowdsec database.
func (p *PG) DBConfig() string {
	return fmt.Sprintf("type: postgresql\nuser: crowdsec\npassword: %s\ndb_name: crowdsec\nhost: %s\nport: %d\nsslmode: disable\n",
		Password, p.Addr, p.Port)
}

func (p *PG) path(name string) string { return filepath.Join(p.Dir, name) }

// as runs a PostgreSQL program as the postgres user, in p's namespace.
func (p *PG) as(prog string, args ...string) (string, error) {
	argv := append([]string{"runuser", "-u", "postgres", "--", filepath.Join(Bin, prog)}, args...)
	if p.NS != "" {
		argv = append([]string{"ip", "netns", "exec", p.NS}, argv...)
	}
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}

// SQL runs statements in db as the superuser and returns the unaligned
// output.
func (p *PG) SQL(db string, stmts ...string) (string, error) {
	args := []string{"-h", p.Addr, "-p", strconv.Itoa(p.Port), "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-tA"}
	for _, s := range stmts {
		args = append(args, "-c", s)
	}
	out, err := p.as("psql", args...)
	if err != nil {
		return "", fmt.Errorf("psql %q: %w\n%s", stmts, err, out)
	}
	return strings.TrimSpace(out), nil
}

// CreateDB makes the crowdsec role (once) and an empty crowdsec database.
func (p *PG) CreateDB() error {
	n, err := p.SQL("postgres", "select count(*) from pg_roles where rolname = 'crowdsec'")
	if err != nil {
		return err
	}
	if n == "0" {
		if _, err := p.SQL("postgres", "create user crowdsec password '"+Password+"'"); err != nil {
			return err
		}
	}
	_, err = p.SQL("postgres", "create database crowdsec owner crowdsec")
	return err
}

// DropDB drops the crowdsec database, as a lost or replaced database
// server leaves LAPI.
func (p *PG) DropDB() error {
	_, err := p.SQL("postgres", "drop database crowdsec with (force)")
	return err
}

// ActiveRows counts, per value, the active decisions of origin.
func (p *PG) ActiveRows(origin string) (map[string]int, error) {
	out, err := p.SQL("crowdsec", "select value || ' ' || count(*) from decisions where origin = '"+origin+"' and until > now() group by value")
	if err != nil {
		return nil, err
	}
	rows := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			return nil, errors.New("pgtest: unexpected row " + line)
		}
		rows[f[0]] = n
	}
	return rows, nil
}
