// Names of our sets and the origins kept in comments.

package nftables

import (
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
)

type setKind struct {
	v6, ranges bool
}

type setKey struct {
	origin string
	kind   setKind
}

var kinds = []setKind{{false, false}, {false, true}, {true, false}, {true, true}}

func (k setKind) suffix() string {
	s := "-v4"
	if k.v6 {
		s = "-v6"
	}
	if k.ranges {
		s += "-ranges"
	}
	return s
}

func (k setKind) ipType() string {
	if k.v6 {
		return "ipv6"
	}
	return "ipv4"
}

// maxOriginInName bounds the origin's part of a set name; longer origins
// are cut and told apart by a hash. The kernel takes 255 characters, but
// names stay short enough to read and type.
const maxOriginInName = 32

// setName is PREFIX-ORIGIN-KIND, the origin cleaned to letters, digits,
// '_' and '-' so that the name can be typed in an nft command. A cleaned,
// cut or already used name gets a hash of the origin appended.
func (b *Backend) setName(origin string, k setKind) string {
	clean := strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, origin)
	if clean == "" {
		clean = "none"
	}
	name := b.opts.SetPrefix + "-" + clean + k.suffix()
	if clean == origin && len(clean) <= maxOriginInName && b.free(name, origin) {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(origin))
	name = fmt.Sprintf("%s-%s-%08x%s", b.opts.SetPrefix, clean[:min(len(clean), maxOriginInName)], h.Sum32(), k.suffix())
	if !b.free(name, origin) {
		// Two origins with the same 32-bit hash: count on.
		for i := 2; !b.free(name, origin); i++ {
			name = fmt.Sprintf("%s-%s-%08x-%d%s", b.opts.SetPrefix, clean[:min(len(clean), maxOriginInName)], h.Sum32(), i, k.suffix())
		}
	}
	return name
}

func (b *Backend) free(name, origin string) bool {
	o, used := b.names[name]
	return !used || o == origin
}

// maxComment bounds the origin in a set's and a rule's comment: the
// kernel takes 256 bytes of userdata, and an interval set's userdata also
// holds google/nftables' key byte order (6 bytes) besides the comment's
// type, length and terminating zero.
const maxComment = 200

// comment is the origin as kept in a set's and a rule's comment.
func comment(origin string) string { return bouncer.CutOrigin(origin, maxComment) }
