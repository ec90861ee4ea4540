package ipset

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
)

// maxBatchBytes bounds the elements of one IPSET_CMD_ADD/DEL message (the
// payload of its IPSET_ATTR_ADT). A nested attribute's length is a
// uint16, so the payload must stay under 65,531 bytes; and when the kernel
// refuses an element it answers with the whole request echoed (at most 96
// bytes more), which must fit the 64 KiB buffer vishvananda/netlink's
// socket receives into. An element is 32 to 52 bytes (an IPv6 add: data
// 4 + address 24 + cidr 8 + timeout 8 + line number 8), so a message holds
// 1,153 to 1,875 of them.
const maxBatchBytes = 60_000

// Netlink constants vishvananda/netlink/nl lacks.
const (
	ipsetFlagListSetname = 1 << 1 // IPSET_FLAG_LIST_SETNAME: names only
	ipsetErrHashFull     = 4352   // IPSET_ERR_HASH_FULL
	nlaTypeMask          = ^(nl.NLA_F_NESTED | nl.NLA_F_NET_BYTEORDER)
	socketTimeout        = 30 * time.Second
)

// conn is our own netlink socket in the backend's namespace, for what
// netlink.Handle does not do: many elements in one message, and dumps
// parsed without its logging of attributes it does not know.
type conn struct {
	mu sync.Mutex
	s  *nl.NetlinkSocket
	// sent, when set (tests), sees each add or delete message.
	sent func(cmd int, set string, elements int)
}

func dial(nsFd int) (*conn, error) {
	ns := netns.None()
	if nsFd != 0 {
		ns = netns.NsHandle(nsFd)
	}
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, err
	}
	tv := unix.NsecToTimeval(socketTimeout.Nanoseconds())
	_ = s.SetSendTimeout(&tv)
	_ = s.SetReceiveTimeout(&tv)
	return &conn{s: s}, nil
}

func (c *conn) close() { c.s.Close() }

// request starts an ipset message: nfgen header, protocol, set name.
func request(cmd, flags int, set string) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(cmd|unix.NFNL_SUBSYS_IPSET<<8, flags)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.AF_INET, Version: nl.NFNETLINK_V0})
	req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_PROTOCOL, nl.Uint8Attr(nl.IPSET_PROTOCOL)))
	if set != "" {
		req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_SETNAME, nl.ZeroTerminated(set)))
	}
	return req
}

// adtRequest is one IPSET_CMD_ADD or _DEL carrying many elements: their
// IPSET_ATTR_DATA side by side in one IPSET_ATTR_ADT, which the kernel
// (ip_set_ad) applies in order, stopping at the first it refuses. There
// is no NLM_F_EXCL: the kernel then sets IPSET_FLAG_EXIST, so that adding
// an element already there replaces its timeout and deleting one that is
// gone (timed out) is no error. Each message can thus be sent again.
func adtRequest(cmd int, set string, data []byte) *nl.NetlinkRequest {
	req := request(cmd, unix.NLM_F_ACK, set)
	// The kernel requires a line number with IPSET_ATTR_ADT; it writes
	// there, in its error answer, the line of the element it refused.
	req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_LINENO, nl.Uint32Attr(0)))
	req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_ADT|int(nl.NLA_F_NESTED), data))
	return req
}

// elemError is a refused element: its index in the batch.
type elemError struct {
	index int
	err   error
}

func (e *elemError) Error() string { return fmt.Sprintf("element %d: %v", e.index, e.err) }
func (e *elemError) Unwrap() error { return e.err }

// batch sends n elements to set in as few messages as maxBatchBytes
// allows, one after the other; enc appends element i's IPSET_ATTR_DATA
// with line number line. A refused element is an *elemError.
func (c *conn) batch(ctx context.Context, cmd int, set string, n int, enc func(dst []byte, i int, line uint32) []byte) error {
	data := make([]byte, 0, maxBatchBytes)
	var one []byte
	first := 0
	for i := range n {
		// Line numbers count from 1: the kernel ignores line 0.
		one = enc(one[:0], i, uint32(i-first+1))
		if len(data) > 0 && len(data)+len(one) > maxBatchBytes {
			if err := c.sendBatch(ctx, cmd, set, data, first, i-first); err != nil {
				return err
			}
			data, first = data[:0], i
			one = enc(one[:0], i, 1)
		}
		data = append(data, one...)
	}
	if len(data) == 0 {
		return nil
	}
	return c.sendBatch(ctx, cmd, set, data, first, n-first)
}

func (c *conn) sendBatch(ctx context.Context, cmd int, set string, data []byte, first, n int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.sent != nil {
		c.sent(cmd, set, n)
	}
	line, err := c.exchange(adtRequest(cmd, set, data), nil)
	switch {
	case err == nil:
		return nil
	case line > 0 && int(line) <= n:
		return &elemError{index: first + int(line) - 1, err: err}
	default:
		return err
	}
}

// exchange sends req and reads the answer: the parts of a dump, handed to
// part, then the final ack or error. line is the element the kernel
// refused, when it says.
func (c *conn) exchange(req *nl.NetlinkRequest, part func(attrs []byte) error) (line uint32, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.s.Send(req); err != nil {
		return 0, fmt.Errorf("netlink send: %w", err)
	}
	for {
		msgs, from, err := c.s.Receive()
		if err != nil {
			return 0, fmt.Errorf("netlink receive: %w", err)
		}
		if from.Pid != nl.PidKernel {
			continue
		}
		for _, m := range msgs {
			if m.Header.Seq != req.Seq {
				continue // a late answer to an earlier request
			}
			switch m.Header.Type {
			case unix.NLMSG_ERROR:
				return parseAck(m.Data)
			case unix.NLMSG_DONE:
				return 0, nil
			}
			if part != nil && len(m.Data) >= nl.SizeofNfgenmsg {
				if err := part(m.Data[nl.SizeofNfgenmsg:]); err != nil {
					return 0, err
				}
			}
		}
	}
}

// parseAck reads an NLMSG_ERROR: the error (nil for an ack) and, from the
// echoed request, the line number the kernel wrote there.
func parseAck(data []byte) (uint32, error) {
	if len(data) < 4 {
		return 0, errors.New("netlink: short ack")
	}
	errno := -int32(binary.NativeEndian.Uint32(data))
	if errno == 0 {
		return 0, nil
	}
	var line uint32
	const head = unix.SizeofNlMsghdr + nl.SizeofNfgenmsg
	if echo := data[4:]; len(echo) >= head {
		n := min(int(binary.NativeEndian.Uint32(echo)), len(echo))
		for typ, v := range attrs(echo[head:max(n, head)]) {
			if typ == nl.IPSET_ATTR_LINENO && len(v) == 4 {
				line = binary.NativeEndian.Uint32(v)
			}
		}
	}
	return line, kernelError(int(errno))
}

// kernelError names an errno, ipset's own ones included.
func kernelError(errno int) error {
	switch {
	case errno == ipsetErrHashFull:
		return fmt.Errorf("%w (the set is full: %d elements)", nl.IPSetError(errno), maxElements)
	case errno >= nl.IPSET_ERR_PRIVATE:
		return nl.IPSetError(errno)
	default:
		return syscall.Errno(errno)
	}
}

// attrs iterates over netlink attributes: type (flags removed) and value.
// It stops at the first malformed one.
func attrs(b []byte) iter.Seq2[uint16, []byte] {
	return func(yield func(uint16, []byte) bool) {
		for len(b) >= 4 {
			n := int(binary.NativeEndian.Uint16(b))
			if n < 4 || n > len(b) {
				return
			}
			if !yield(binary.NativeEndian.Uint16(b[2:])&nlaTypeMask, b[4:n]) {
				return
			}
			b = b[min(align(n), len(b)):]
		}
	}
}

func align(n int) int { return (n + 3) &^ 3 }

// appendAttr appends one attribute, padded.
func appendAttr(b []byte, typ uint16, v []byte) []byte {
	n := 4 + len(v)
	b = binary.NativeEndian.AppendUint16(b, uint16(n))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	return append(b, make([]byte, align(n)-n)...)
}

// appendNested appends a nested attribute whose content fill appends.
func appendNested(b []byte, typ uint16, fill func([]byte) []byte) []byte {
	start := len(b)
	b = fill(append(b, 0, 0, 0, 0))
	binary.NativeEndian.PutUint16(b[start:], uint16(len(b)-start))
	binary.NativeEndian.PutUint16(b[start+2:], typ|nl.NLA_F_NESTED)
	return b
}

// appendElem appends the IPSET_ATTR_DATA of one hash:net element: its
// address and CIDR, its timeout in seconds when not 0 (adds), and its line.
func appendElem(b []byte, p netip.Prefix, timeout, line uint32) []byte {
	return appendNested(b, nl.IPSET_ATTR_DATA, func(b []byte) []byte {
		b = appendNested(b, nl.IPSET_ATTR_IP, func(b []byte) []byte {
			typ := uint16(nl.IPSET_ATTR_IPADDR_IPV4)
			if p.Addr().Is6() {
				typ = nl.IPSET_ATTR_IPADDR_IPV6
			}
			return appendAttr(b, typ|nl.NLA_F_NET_BYTEORDER, p.Masked().Addr().AsSlice())
		})
		b = appendAttr(b, nl.IPSET_ATTR_CIDR, []byte{uint8(p.Bits())})
		if timeout != 0 {
			b = appendAttr(b, nl.IPSET_ATTR_TIMEOUT|nl.NLA_F_NET_BYTEORDER, binary.BigEndian.AppendUint32(nil, timeout))
		}
		return appendAttr(b, nl.IPSET_ATTR_LINENO, binary.NativeEndian.AppendUint32(nil, line))
	})
}

// appendSlot appends the IPSET_ATTR_DATA of one registry element: the
// slot as a port, its origin as the comment (ipset keeps 255 bytes).
func appendSlot(b []byte, slot int, origin string, line uint32) []byte {
	origin = bouncer.CutOrigin(origin, nl.IPSET_MAX_COMMENT_SIZE)
	return appendNested(b, nl.IPSET_ATTR_DATA, func(b []byte) []byte {
		b = appendAttr(b, nl.IPSET_ATTR_PORT|nl.NLA_F_NET_BYTEORDER, binary.BigEndian.AppendUint16(nil, uint16(slot)))
		b = appendAttr(b, nl.IPSET_ATTR_COMMENT, nl.ZeroTerminated(origin))
		return appendAttr(b, nl.IPSET_ATTR_LINENO, binary.NativeEndian.AppendUint32(nil, line))
	})
}

// timeoutSecs is a timeout in whole seconds, rounded up, within what
// ipset takes.
func timeoutSecs(d time.Duration) uint32 {
	return max(uint32(math.Ceil(min(d, MaxTimeout).Seconds())), 1)
}

// member is one element of a dumped set.
type member struct {
	addr    netip.Addr
	cidr    int
	timeout uint32 // seconds left; 0 when the set has none
	port    uint16
	comment string
}

// names lists every set's name (IPSET_FLAG_LIST_SETNAME: no members).
func (c *conn) names() ([]string, error) {
	req := request(nl.IPSET_CMD_LIST, unix.NLM_F_DUMP, "")
	req.AddData(&nl.Uint32Attribute{Type: nl.IPSET_ATTR_FLAGS | nl.NLA_F_NET_BYTEORDER, Value: ipsetFlagListSetname})
	var out []string
	_, err := c.exchange(req, func(b []byte) error {
		for typ, v := range attrs(b) {
			if typ == nl.IPSET_ATTR_SETNAME {
				out = append(out, nl.BytesToString(v))
			}
		}
		return nil
	})
	return out, err
}

// members dumps one set's elements; ENOENT when it does not exist.
func (c *conn) members(set string) ([]member, error) {
	var out []member
	_, err := c.exchange(request(nl.IPSET_CMD_LIST, unix.NLM_F_DUMP, set), func(b []byte) error {
		for typ, v := range attrs(b) {
			if typ != nl.IPSET_ATTR_ADT {
				continue
			}
			for typ, data := range attrs(v) {
				if typ == nl.IPSET_ATTR_DATA {
					out = append(out, parseMember(data))
				}
			}
		}
		return nil
	})
	return out, err
}

func parseMember(data []byte) member {
	var m member
	for typ, v := range attrs(data) {
		switch {
		case typ == nl.IPSET_ATTR_IP:
			for _, a := range attrs(v) {
				m.addr, _ = netip.AddrFromSlice(a)
			}
		case typ == nl.IPSET_ATTR_CIDR && len(v) == 1:
			m.cidr = int(v[0])
		case typ == nl.IPSET_ATTR_TIMEOUT && len(v) == 4:
			m.timeout = binary.BigEndian.Uint32(v)
		case typ == nl.IPSET_ATTR_PORT && len(v) == 2:
			m.port = binary.BigEndian.Uint16(v)
		case typ == nl.IPSET_ATTR_COMMENT:
			m.comment = nl.BytesToString(v)
		}
	}
	return m
}
