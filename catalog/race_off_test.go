//go:build !race

package catalog

// raceEnabled reports whether the race detector is on, which makes timings meaningless.
const raceEnabled = false
