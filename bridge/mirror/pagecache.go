package mirror

import "sync"

// maxCachedPages bounds the page cache: 2,048 pages of 250 are 512,000
// entries, about 10 MB of encoded JSON.
const maxCachedPages = 2048

// pageCache holds encoded pages of one set generation by cursor. Fifty
// clients pulling the list from the start ask for the same cursors, so
// each page is encoded once per generation instead of once per client
// (docs/benchmarks.md, Mirror).
type pageCache struct {
	mu    sync.Mutex
	gen   uint64
	pages map[int64]cachedPage
}

// cachedPage is one encoded page: its body, its Content-Length value and
// the entries it holds.
type cachedPage struct {
	body    []byte
	length  []string
	entries int
}

func (c *pageCache) get(gen uint64, cursor int64) (cachedPage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return cachedPage{}, false
	}
	p, ok := c.pages[cursor]
	return p, ok
}

func (c *pageCache) put(gen uint64, cursor int64, p cachedPage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case gen < c.gen:
		return // a request that began before the set changed
	case gen > c.gen || c.pages == nil:
		c.gen, c.pages = gen, make(map[int64]cachedPage)
	}
	if len(c.pages) < maxCachedPages {
		c.pages[cursor] = p
	}
}
