//go:build race

package server

// floodUnderRace reports whether the race detector is on: its shadow memory
// grows RSS with every byte argon2 touches, so the flood test then bounds the
// Go runtime's own memory instead of RSS.
const floodUnderRace = true
