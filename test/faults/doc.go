// Package faults holds the fault-injection and crash-safety end-to-end
// suites: the real bridge binary against a real LAPI (test/lapitest) and
// the APIBAN simulator, with faults injected on both sides. Everything is
// in _test files; see docs/reliability.md.
package faults
