package ipset

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
)

func TestTimeoutSecs(t *testing.T) {
	for d, want := range map[time.Duration]uint32{
		1500 * time.Millisecond: 2,
		365 * 24 * time.Hour:    2147483, // ipset's maximum
		time.Millisecond:        1,
		time.Hour:               3600,
	} {
		if got := timeoutSecs(d); got != want {
			t.Errorf("%s: %d, want %d", d, got, want)
		}
	}
}

func TestNames(t *testing.T) {
	long := strings.Repeat("p", MaxSetPrefix)
	for _, n := range []string{setName(long, MaxSlots-1, families[1]), long + swapSuffix, long + regSuffix} {
		if len(n) > maxName {
			t.Errorf("%s: %d characters, ipset takes %d", n, len(n), maxName)
		}
	}
	for _, c := range []struct {
		name       string
		slot       int
		v6, ok, us bool
	}{
		{"apiban-bridge-0-v4", 0, false, true, true},
		{"apiban-bridge-9999-v6", 9999, true, true, true},
		{"apiban-bridge-007-v4", -1, false, true, true}, // ours, never current
		{"apiban-bridge-swap", 0, false, false, true},
		{"apiban-bridge-origins", 0, false, false, true},
		{"apiban-bridge-v4", 0, false, false, true}, // the first release's: removed on upgrade
		{"apiban-bridge-v6-new", 0, false, false, true},
		{"apiban-bridge-v4-ranges", 0, false, false, false},
		{"apiban-bridge-0-v4-new", 0, false, false, false},
		{"apiban-bridge-x-v4", 0, false, false, false},
		{"apiban-bridge--v4", 0, false, false, false},
		{"apiban-bridge-0-v5", 0, false, false, false},
		{"apiban-bridge2-0-v4", 0, false, false, false},
		{"crowdsec-blacklists-0", 0, false, false, false},
		{"crowdsec-blacklists", 0, false, false, false},
		{"crowdsec6-blacklists-0", 0, false, false, false},
	} {
		slot, v6, ok := ElementSet("apiban-bridge", c.name)
		if ok != c.ok || (ok && (slot != c.slot || v6 != c.v6)) {
			t.Errorf("ElementSet(%s) = %d %v %v", c.name, slot, v6, ok)
		}
		if us := OwnedSet("apiban-bridge", c.name); us != c.us {
			t.Errorf("OwnedSet(%s) = %v", c.name, us)
		}
	}
	for p, ok := range map[string]bool{"apiban-bridge": true, long: true, long + "p": false, "": false,
		"crowdsec-blacklists": false, "Crowdsec-Blacklists-x": false, "a b": false} {
		if err := checkPrefix(p); (err == nil) != ok {
			t.Errorf("checkPrefix(%q): %v", p, err)
		}
	}
}

// TestElementEncoding decodes what appendElem writes, and checks the
// sizes maxBatchBytes was computed from.
func TestElementEncoding(t *testing.T) {
	for _, c := range []struct {
		prefix  string
		timeout uint32
		size    int
	}{
		{"198.51.100.0/24", 3600, 40},
		{"192.0.2.1/32", 0, 32},
		{"2001:db8::/32", 7, 52},
		{"2001:db8::1/128", 0, 44},
	} {
		p := netip.MustParsePrefix(c.prefix)
		b := appendElem(nil, p, c.timeout, 9)
		if len(b) != c.size {
			t.Errorf("%s: %d bytes, want %d", c.prefix, len(b), c.size)
		}
		var data []byte
		for typ, v := range attrs(b) {
			if typ == nl.IPSET_ATTR_DATA {
				data = v
			}
		}
		m := parseMember(data)
		var line uint32
		for typ, v := range attrs(data) {
			if typ == nl.IPSET_ATTR_LINENO {
				line = binary.NativeEndian.Uint32(v)
			}
		}
		if netip.PrefixFrom(m.addr, m.cidr) != p || m.timeout != c.timeout || line != 9 {
			t.Errorf("%s: decoded %+v line %d", c.prefix, m, line)
		}
	}
	reg := appendSlot(nil, 42, strings.Repeat("o", 300), 1)
	var m member
	for _, v := range attrs(reg) {
		m = parseMember(v)
	}
	if m.port != 42 || len(m.comment) != nl.IPSET_MAX_COMMENT_SIZE {
		t.Errorf("registry element: %+v", m)
	}
}

// TestBatchBound: the fullest message fits its attribute length and, with
// the kernel's error header, the receive buffer.
func TestBatchBound(t *testing.T) {
	var data, one []byte
	n := 0
	for {
		one = appendElem(one[:0], netip.MustParsePrefix("2001:db8::/64"), maxTimeoutSecs, uint32(n+1))
		if len(data)+len(one) > maxBatchBytes {
			break
		}
		data = append(data, one...)
		n++
	}
	msg := adtRequest(nl.IPSET_CMD_ADD, strings.Repeat("s", maxName), data).Serialize()
	if n < 1000 {
		t.Errorf("%d IPv6 adds per message", n)
	}
	if adt := len(data) + 4; adt > 65535 {
		t.Errorf("IPSET_ATTR_ADT is %d bytes: over a uint16", adt)
	}
	// The error answer: its header and errno, then the request echoed.
	if reply := unix.SizeofNlMsghdr + 4 + len(msg); reply > nl.RECEIVE_BUFFER_SIZE {
		t.Errorf("an error answer would be %d bytes, over the %d receive buffer", reply, nl.RECEIVE_BUFFER_SIZE)
	}
	t.Logf("%d IPv6 adds, %d bytes per message", n, len(msg))
}

// maxTimeoutSecs is MaxTimeout in seconds.
const maxTimeoutSecs = uint32(MaxTimeout / time.Second)

// TestParseAck reads the line the kernel wrote in its echo of a request.
func TestParseAck(t *testing.T) {
	if line, err := parseAck(make([]byte, 4)); line != 0 || err != nil {
		t.Errorf("ack: %d %v", line, err)
	}
	req := adtRequest(nl.IPSET_CMD_ADD, "apiban-bridge-0-v4", appendElem(nil, netip.MustParsePrefix("0.0.0.0/0"), 1, 1))
	echo := req.Serialize()
	// Where the kernel writes the failing line: the top-level LINENO.
	for off := unix.SizeofNlMsghdr + nl.SizeofNfgenmsg; off+8 <= len(echo); {
		n := int(binary.NativeEndian.Uint16(echo[off:]))
		if binary.NativeEndian.Uint16(echo[off+2:])&nlaTypeMask == nl.IPSET_ATTR_LINENO {
			binary.NativeEndian.PutUint32(echo[off+4:], 1)
			break
		}
		off += align(n)
	}
	errno := int32(-nl.IPSET_ERR_INVALID_CIDR)
	data := append(binary.NativeEndian.AppendUint32(nil, uint32(errno)), echo...)
	line, err := parseAck(data)
	if line != 1 || !errors.Is(err, nl.IPSetError(nl.IPSET_ERR_INVALID_CIDR)) {
		t.Errorf("line %d, %v", line, err)
	}
	// An echo too short to hold a request is no line.
	short := binary.NativeEndian.AppendUint32(nil, uint32(errno))
	short = append(short, binary.NativeEndian.AppendUint32(make([]byte, 0, 20), 8)...)
	if line, err := parseAck(append(short, make([]byte, 16)...)); line != 0 || err == nil {
		t.Errorf("short echo: %d %v", line, err)
	}
	enoent := -int32(unix.ENOENT)
	if _, err := parseAck(binary.NativeEndian.AppendUint32(nil, uint32(enoent))); !errors.Is(err, unix.ENOENT) {
		t.Errorf("short error: %v", err)
	}
}

// TestParseCounters reads real `iptables -L CHAIN -v -x -n` output
// (testdata, captured from iptables 1.8.9, nft and legacy, after the
// traffic of TestKernelIpsetDropped), and older versions' layout.
func TestParseCounters(t *testing.T) {
	want := map[string]map[string]bouncer.Counters{
		"iptables":  {"apiban-bridge-0-v4": {Packets: 2, Bytes: 66}, "apiban-bridge-1-v4": {Packets: 1, Bytes: 33}},
		"ip6tables": {"apiban-bridge-0-v6": {}, "apiban-bridge-1-v6": {Packets: 3, Bytes: 159}},
	}
	for _, file := range []string{"iptables-nft", "iptables-legacy", "ip6tables-nft", "ip6tables-legacy"} {
		out, err := os.ReadFile("testdata/" + file + ".txt")
		if err != nil {
			t.Fatal(err)
		}
		cmd, _, _ := strings.Cut(file, "-")
		if got := parseCounters(string(out)); !equalCounters(got, want[cmd]) {
			t.Errorf("%s: %v, want %v", file, got, want[cmd])
		}
	}
	// iptables up to 1.8.7 prints "all" as the protocol, and ip6tables
	// leaves the option column empty; other targets and rules without a
	// set are skipped.
	old := `Chain APIBAN_BRIDGE (1 references)
    pkts      bytes target     prot opt in     out     source               destination
       5      300 DROP       all      *      *       ::/0                 ::/0                 match-set apiban-bridge-0-v6 src
       7      700 DROP       all  --  *      *       0.0.0.0/0            0.0.0.0/0            match-set apiban-bridge-3-v4 src
       1       10 RETURN     all  --  *      *       0.0.0.0/0            0.0.0.0/0            match-set apiban-bridge-4-v4 src
       1       10 DROP       all  --  *      *       10.0.0.0/8           0.0.0.0/0
`
	wantOld := map[string]bouncer.Counters{"apiban-bridge-0-v6": {Packets: 5, Bytes: 300}, "apiban-bridge-3-v4": {Packets: 7, Bytes: 700}}
	if got := parseCounters(old); !equalCounters(got, wantOld) {
		t.Errorf("older layout: %v", got)
	}
	if got := parseCounters(""); len(got) != 0 {
		t.Errorf("empty: %v", got)
	}
}

func equalCounters(a, b map[string]bouncer.Counters) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Set names hold at most MaxSlots slots: asking for more is a clear error
// (docs/bouncer.md), never a name that does not fit.
func TestFreeSlotsBounded(t *testing.T) {
	b := &Backend{opts: Options{SetPrefix: "apiban-bridge"}}
	taken := map[int]bool{}
	for i := range MaxSlots - 1 {
		taken[i] = true
	}
	if got, err := b.freeSlots(1, taken, map[string]bool{}); err != nil || len(got) != 1 || got[0] != MaxSlots-1 {
		t.Fatalf("last slot: %v, %v", got, err)
	}
	if _, err := b.freeSlots(2, taken, map[string]bool{}); err == nil || !strings.Contains(err.Error(), "at most 10000 slots") {
		t.Fatalf("over the limit: %v", err)
	}
	// A slot whose set exists in the kernel (a leftover) is not free.
	got, err := b.freeSlots(2, nil, map[string]bool{"apiban-bridge-0-v6": true})
	if err != nil || got[0] != 1 || got[1] != 2 {
		t.Errorf("around a leftover: %v, %v", got, err)
	}
}
