package catalog

import (
	"strings"
	"unicode"

	"github.com/mozillazg/go-pinyin"
)

// initials returns the pinyin initials of the Han characters in s, with
// ASCII letters and digits kept (lower-cased) and everything else dropped:
// "前海水库A区" gives "qhskaq", so operators can type initials as they do in
// every Chinese search box. Heteronyms take their most common reading.
//
// It reads go-pinyin's dictionary directly: the package's own converters
// run regular expressions per character, too slow for indexing 100k names.
func initials(s string) string {
	var b strings.Builder
	han := false
	for _, r := range s {
		switch {
		case r < utf8RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(unicode.ToLower(r))
		case unicode.Is(unicode.Han, r):
			if c := firstLetter(r); c != 0 {
				b.WriteByte(c)
				han = true
			}
		}
	}
	if !han {
		// Without Han characters the initials add nothing to the key.
		return ""
	}
	return b.String()
}

const utf8RuneSelf = 0x80

// firstLetter returns the ASCII first letter of r's first pinyin reading, or 0.
func firstLetter(r rune) byte {
	py, ok := pinyin.PinyinDict[int(r)]
	if !ok || py == "" {
		return 0
	}
	for _, c := range py {
		return toneless(c)
	}
	return 0
}

// toneless maps the first rune of a toned pinyin syllable to its ASCII letter.
func toneless(c rune) byte {
	if c < utf8RuneSelf {
		return byte(unicode.ToLower(c))
	}
	switch c {
	case 'ā', 'á', 'ǎ', 'à':
		return 'a'
	case 'ē', 'é', 'ě', 'è', 'ê', 'ế', 'ề':
		return 'e'
	case 'ō', 'ó', 'ǒ', 'ò':
		return 'o'
	case 'ḿ':
		return 'm'
	case 'ń', 'ň', 'ǹ':
		return 'n'
	}
	return 0
}
