// Package csvcell keeps the CSV files Tianyan writes from running as
// spreadsheet formulas (CSV injection, OWASP): a cell that starts with
// = + - @, a tab or a carriage return is written with a leading single
// quote, and the importers take that quote off again so an export
// re-imports to the same values.
//
// It owns two pure functions and must never import anything of ours.
package csvcell

import (
	"strconv"
	"strings"
)

// triggers are the first characters a spreadsheet treats as the start of a formula.
const triggers = "=+-@\t\r"

// Neutralize returns s as a cell no spreadsheet evaluates. A plain
// negative number such as -12.5 is left alone: it is data, not a formula,
// and a longitude west of Greenwich must stay a number.
func Neutralize(s string) string {
	if s == "" || !strings.ContainsRune(triggers, rune(s[0])) {
		return s
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil && s[0] == '-' {
		return s
	}
	return "'" + s
}

// Restore undoes Neutralize: a quote followed by a formula trigger is
// dropped; anything else is returned as it is.
func Restore(s string) string {
	if len(s) >= 2 && s[0] == '\'' && strings.ContainsRune(triggers, rune(s[1])) {
		return s[1:]
	}
	return s
}
