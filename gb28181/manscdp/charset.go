package manscdp

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// Charsets Marshal writes and Parse reports.
const (
	CharsetUTF8    = "UTF-8"
	CharsetGB2312  = "GB2312"
	CharsetGBK     = "GBK"
	CharsetGB18030 = "GB18030"
)

// declaredEncoding returns the encoding label of an XML prolog at the start
// of b ("" when there is no prolog or no encoding pseudo-attribute).
func declaredEncoding(b []byte) string {
	b = bytes.TrimLeft(b, " \t\r\n")
	if !bytes.HasPrefix(b, []byte("<?xml")) && !bytes.HasPrefix(b, []byte("<?XML")) {
		return ""
	}
	end := bytes.Index(b, []byte("?>"))
	if end < 0 || end > 512 {
		return ""
	}
	prolog := strings.ToLower(string(b[:end]))
	i := strings.Index(prolog, "encoding")
	if i < 0 {
		return ""
	}
	rest := strings.TrimLeft(prolog[i+len("encoding"):], " \t\r\n")
	if !strings.HasPrefix(rest, "=") {
		return ""
	}
	rest = strings.TrimLeft(rest[1:], " \t\r\n")
	if rest == "" || (rest[0] != '"' && rest[0] != '\'') {
		return ""
	}
	q := rest[0]
	j := strings.IndexByte(rest[1:], q)
	if j < 0 {
		return ""
	}
	return strings.TrimSpace(rest[1 : 1+j])
}

// canonicalGB maps a declared label to one of the GB charsets, or "".
func canonicalGB(label string) string {
	switch strings.ToLower(strings.ReplaceAll(label, "_", "-")) {
	case "gb2312", "euc-cn", "csgb2312", "gb-2312", "x-euc-cn":
		return CharsetGB2312
	case "gbk", "cp936", "x-gbk", "windows-936", "ms936":
		return CharsetGBK
	case "gb18030", "gb-18030":
		return CharsetGB18030
	}
	return ""
}

// toUTF8 returns the body as UTF-8 and the charset the device speaks (the
// declared GB charset, or GBK for undeclared non-UTF-8). Prologs lie both
// ways: devices declare UTF-8 and send GBK, and declare GB2312 and send
// UTF-8. Chinese text in GBK is practically never valid UTF-8, so the bytes
// decide: valid UTF-8 is used as is, anything else is decoded as GB18030 (a
// superset of GBK and GB2312).
func toUTF8(b []byte) ([]byte, string, error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	cs := canonicalGB(declaredEncoding(b))
	if utf8.Valid(b) {
		if cs == "" {
			cs = CharsetUTF8
		}
		return b, cs, nil
	}
	if cs == "" {
		cs = CharsetGBK
	}
	out, err := simplifiedchinese.GB18030.NewDecoder().Bytes(b)
	if err != nil {
		return nil, "", fmt.Errorf("manscdp: decode %s body: %w", cs, err)
	}
	return out, cs, nil
}

// encoderFor returns the encoder for a Marshal charset (nil for UTF-8).
func encoderFor(charset string) (*encoding.Encoder, string, error) {
	switch strings.ToUpper(strings.TrimSpace(charset)) {
	case "", "UTF-8", "UTF8":
		return nil, CharsetUTF8, nil
	case CharsetGB2312:
		// GBK's encoder writes GB2312 for every GB2312 character; a rare
		// character outside GB2312 becomes a GBK code rather than an error.
		return simplifiedchinese.GBK.NewEncoder(), CharsetGB2312, nil
	case CharsetGBK:
		return simplifiedchinese.GBK.NewEncoder(), CharsetGBK, nil
	case CharsetGB18030:
		return simplifiedchinese.GB18030.NewEncoder(), CharsetGB18030, nil
	}
	return nil, "", fmt.Errorf("manscdp: unsupported charset %q", charset)
}

// encodeLossy encodes b, writing '?' for each character the charset lacks
// (an emoji in a channel name must not cost the whole catalog answer, and
// the encoder's own substitute, 0x1A, is not allowed in XML).
func encodeLossy(enc *encoding.Encoder, b []byte) ([]byte, error) {
	if out, err := enc.Bytes(b); err == nil {
		return out, nil
	}
	out := make([]byte, 0, len(b))
	var one [utf8.UTFMax]byte
	for _, r := range string(b) {
		n := utf8.EncodeRune(one[:], r)
		e, err := enc.Bytes(one[:n])
		if err != nil {
			out = append(out, '?')
			continue
		}
		out = append(out, e...)
	}
	return out, nil
}
