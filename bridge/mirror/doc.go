// Package mirror serves LAPI's active ban decisions in APIBAN's own wire
// format (v1 and v2 lists and checks, the ipset list), so that SIP proxies
// and firewalls already set up for APIBAN read CrowdSec with only their
// URL and key changed. Cursors are LAPI decision IDs plus CursorBase, so
// they stay valid across restarts; the long why is in docs/sip.md.
package mirror
