package onvif

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"strings"
	"time"
)

// createdLayout is the wsu:Created format cameras accept most widely:
// UTC with milliseconds and a literal Z.
const createdLayout = "2006-01-02T15:04:05.000Z"

// passwordDigest computes the WS-Security UsernameToken PasswordDigest:
// Base64(SHA-1(nonce + created + password)), nonce as raw bytes.
func passwordDigest(nonce []byte, created, password string) string {
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(created))
	h.Write([]byte(password))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// usernameToken renders a wsse:Security header with a fresh nonce, stamped
// with cameraNow (local time corrected by the camera's clock offset):
// cameras reject tokens whose Created is too far from their own clock.
func usernameToken(user, password string, cameraNow time.Time) string {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails on supported platforms
	created := cameraNow.UTC().Format(createdLayout)
	var b strings.Builder
	b.WriteString(`<wsse:Security s:mustUnderstand="1" xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `">`)
	b.WriteString(`<wsse:UsernameToken><wsse:Username>`)
	_ = xml.EscapeText(&b, []byte(user))
	b.WriteString(`</wsse:Username><wsse:Password Type="` + pwdDigest + `">`)
	b.WriteString(passwordDigest(nonce, created, password))
	b.WriteString(`</wsse:Password><wsse:Nonce EncodingType="` + b64Nonce + `">`)
	b.WriteString(base64.StdEncoding.EncodeToString(nonce))
	b.WriteString(`</wsse:Nonce><wsu:Created>` + created + `</wsu:Created></wsse:UsernameToken></wsse:Security>`)
	return b.String()
}
