// Package cluster runs the bridge as a provider runs CrowdSec at scale
// (docs/scale-out.md): a real PostgreSQL cluster, two LAPI processes on
// it, the bridge pushing to one, five PBX hosts running the bridge binary
// in bouncer-only mode pulling from the other, each in its own network
// namespace joined by a bridge device in a hub namespace. It needs root,
// Debian's postgresql (test/deps.sh) and the LAPI binaries `make lapi`
// builds; in -short mode it is skipped.
package cluster
