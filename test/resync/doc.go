// Package resynctest checks, against a real LAPI, that the stream readers
// (the embedded bouncer and the APIBAN-compatible mirror) repair what
// LAPI's decision stream never tells them: decisions its alert flush
// deleted, and a database replaced under them (docs/bouncer.md,
// "Resync").
package resynctest
