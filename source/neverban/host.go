package neverban

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Resolver is the part of net.Resolver Discover needs.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Host says where Discover reads this host's addresses from. Empty paths
// and nil functions mean the real ones (Linux).
type Host struct {
	InterfaceAddrs func() ([]net.Addr, error)
	Resolver       Resolver
	// LAPIURL is crowdsec.lapi_url (and bouncer.lapi_url, if set).
	LAPIURLs []string
	// RouteV4, RouteV6 and ResolvConf default to /proc/net/route,
	// /proc/net/ipv6_route and /etc/resolv.conf.
	RouteV4, RouteV6, ResolvConf string
}

func (h Host) defaults() Host {
	if h.InterfaceAddrs == nil {
		h.InterfaceAddrs = net.InterfaceAddrs
	}
	if h.Resolver == nil {
		h.Resolver = net.DefaultResolver
	}
	if h.RouteV4 == "" {
		h.RouteV4 = "/proc/net/route"
	}
	if h.RouteV6 == "" {
		h.RouteV6 = "/proc/net/ipv6_route"
	}
	if h.ResolvConf == "" {
		h.ResolvConf = "/etc/resolv.conf"
	}
	return h
}

// Discover returns the addresses banning which would cut this host off:
// its own interface addresses (each as a single address: the host owns
// it, not its subnet), the LAPI hosts', its route gateways and its
// resolvers. Whatever can be read is returned; what cannot is in the
// error, which the caller may log and survive (a bridge that does not
// start while DNS is down protects nothing).
func Discover(ctx context.Context, h Host) ([]Entry, error) {
	h = h.defaults()
	var out []Entry
	var errs []error
	add := func(reason string) func([]netip.Addr, error) {
		return func(addrs []netip.Addr, err error) { collect(&out, &errs, reason, addrs, err) }
	}
	add(ReasonSelf)(interfaceAddrs(h.InterfaceAddrs))
	for _, u := range h.LAPIURLs {
		add(ReasonLAPI)(hostAddrs(ctx, u, h.Resolver))
	}
	add(ReasonGateway)(gateways(h.RouteV4, h.RouteV6))
	add(ReasonResolver)(resolvers(h.ResolvConf))
	return out, errors.Join(errs...)
}

// collect appends addrs as single-address entries for reason, and err.
func collect(out *[]Entry, errs *[]error, reason string, addrs []netip.Addr, err error) {
	if err != nil {
		*errs = append(*errs, err)
	}
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		*out = append(*out, Entry{Prefix: netip.PrefixFrom(a, a.BitLen()), Reason: reason})
	}
}

func interfaceAddrs(list func() ([]net.Addr, error)) ([]netip.Addr, error) {
	addrs, err := list()
	if err != nil {
		err = fmt.Errorf("listing interface addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		var ip net.IP
		switch v := a.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		if addr, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, addr)
		}
	}
	return out, err
}

// hostAddrs resolves the host of a LAPI URL.
func hostAddrs(ctx context.Context, lapiURL string, r Resolver) ([]netip.Addr, error) {
	u, err := url.Parse(lapiURL)
	if err != nil {
		return nil, fmt.Errorf("crowdsec.lapi_url: %w", err)
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolving the LAPI host %q: %w", host, err)
	}
	return addrs, nil
}

// gateways reads the next hops of every route (the default one included).
func gateways(v4, v6 string) ([]netip.Addr, error) {
	a, err4 := readLines(v4, gatewayV4)
	b, err6 := readLines(v6, gatewayV6)
	if errors.Is(err6, os.ErrNotExist) {
		err6 = nil // IPv6 disabled
	}
	return append(a, b...), errors.Join(err4, err6)
}

// gatewayV4 parses a /proc/net/route line: Iface Destination Gateway
// Flags ..., addresses in host (little-endian) hex.
func gatewayV4(f []string) (netip.Addr, bool) {
	if len(f) < 4 || f[0] == "Iface" {
		return netip.Addr{}, false
	}
	v, err := strconv.ParseUint(f[2], 16, 32)
	if err != nil || v == 0 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}), true
}

// gatewayV6 parses a /proc/net/ipv6_route line: dst dst_len src src_len
// next_hop metric refcnt use flags iface, addresses in 32 hex digits.
func gatewayV6(f []string) (netip.Addr, bool) {
	if len(f) < 10 {
		return netip.Addr{}, false
	}
	raw, err := hex.DecodeString(f[4])
	if err != nil || len(raw) != 16 {
		return netip.Addr{}, false
	}
	a := netip.AddrFrom16([16]byte(raw))
	return a, !a.IsUnspecified()
}

// resolvers reads the nameserver lines of resolv.conf.
func resolvers(path string) ([]netip.Addr, error) {
	return readLines(path, func(f []string) (netip.Addr, bool) {
		if len(f) < 2 || f[0] != "nameserver" {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(f[1])
		return a, err == nil
	})
}

func readLines(path string, parse func([]string) (netip.Addr, bool)) ([]netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	return scan(f, parse)
}

func scan(r io.Reader, parse func([]string) (netip.Addr, bool)) ([]netip.Addr, error) {
	var out []netip.Addr
	s := bufio.NewScanner(r)
	for s.Scan() {
		if a, ok := parse(strings.Fields(s.Text())); ok {
			out = append(out, a)
		}
	}
	return out, s.Err()
}
