package camsim

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"time"
)

// HTTP Digest realm and how long one of its nonces stays good.
const (
	digestRealm    = "camsim"
	digestNonceTTL = 5 * time.Minute
)

// usernameToken is a WS-Security UsernameToken as found in a SOAP header.
type usernameToken struct {
	Username string `xml:"Username"`
	Password struct {
		Type  string `xml:"Type,attr"`
		Value string `xml:",chardata"`
	} `xml:"Password"`
	Nonce   string `xml:"Nonce"`
	Created string `xml:"Created"`
}

// verify checks a PasswordDigest token: Base64(SHA1(nonce + created +
// password)), nonce being the decoded bytes. Plain-text passwords are
// refused, as ONVIF requires the digest.
func (t *usernameToken) verify(user, pass string) bool {
	if t == nil || !strings.HasSuffix(strings.TrimSpace(t.Password.Type), "#PasswordDigest") {
		return false
	}
	nonce, err := base64.StdEncoding.DecodeString(strings.TrimSpace(t.Nonce))
	if err != nil {
		return false
	}
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(strings.TrimSpace(t.Created)))
	h.Write([]byte(pass))
	want := base64.StdEncoding.EncodeToString(h.Sum(nil))
	userOK := subtle.ConstantTimeCompare([]byte(strings.TrimSpace(t.Username)), []byte(user)) == 1
	passOK := subtle.ConstantTimeCompare([]byte(strings.TrimSpace(t.Password.Value)), []byte(want)) == 1
	return userOK && passOK
}

// httpDigest is the server side of HTTP Digest authentication (RFC 7616,
// MD5 and SHA-256, qop=auth). Nonces are stateless: a timestamp signed with
// a per-camera key, so no table grows with clients.
type httpDigest struct {
	key []byte
}

func newHTTPDigest() (*httpDigest, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return &httpDigest{key: key}, nil
}

func (d *httpDigest) nonce(now time.Time) string {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(now.UnixNano()))
	mac := hmac.New(sha256.New, d.key)
	mac.Write(ts[:])
	return hex.EncodeToString(ts[:]) + hex.EncodeToString(mac.Sum(nil)[:16])
}

func (d *httpDigest) nonceValid(nonce string, now time.Time) bool {
	raw, err := hex.DecodeString(nonce)
	if err != nil || len(raw) != 24 {
		return false
	}
	mac := hmac.New(sha256.New, d.key)
	mac.Write(raw[:8])
	if !hmac.Equal(mac.Sum(nil)[:16], raw[8:]) {
		return false
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(raw[:8])))
	return now.Sub(issued) < digestNonceTTL && !issued.After(now)
}

// challenge sets WWW-Authenticate: Digest (MD5, which every client speaks),
// and Basic too when allowed.
func (d *httpDigest) challenge(w http.ResponseWriter, basic bool) {
	w.Header().Add("WWW-Authenticate", fmt.Sprintf(`Digest realm=%q, qop="auth", algorithm=MD5, nonce=%q`, digestRealm, d.nonce(time.Now())))
	if basic {
		w.Header().Add("WWW-Authenticate", fmt.Sprintf(`Basic realm=%q`, digestRealm))
	}
}

// verify checks an Authorization: Digest header against user and pass.
func (d *httpDigest) verify(r *http.Request, user, pass string) bool {
	h := r.Header.Get("Authorization")
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Digest") {
		return false
	}
	p, err := parseAuthParams(rest)
	if err != nil || !d.nonceValid(p["nonce"], time.Now()) {
		return false
	}
	// The uri parameter must name this request, or a response captured for
	// one resource could be replayed against another.
	if p["uri"] != r.URL.RequestURI() {
		return false
	}
	var newHash func() hash.Hash
	switch strings.ToUpper(p["algorithm"]) {
	case "", "MD5":
		newHash = md5.New
	case "SHA-256":
		newHash = sha256.New
	default:
		return false
	}
	hx := func(s string) string {
		h := newHash()
		h.Write([]byte(s))
		return hex.EncodeToString(h.Sum(nil))
	}
	ha1 := hx(user + ":" + digestRealm + ":" + pass)
	ha2 := hx(r.Method + ":" + p["uri"])
	var want string
	switch p["qop"] {
	case "auth":
		want = hx(strings.Join([]string{ha1, p["nonce"], p["nc"], p["cnonce"], "auth", ha2}, ":"))
	case "":
		want = hx(ha1 + ":" + p["nonce"] + ":" + ha2)
	default:
		return false
	}
	userOK := subtle.ConstantTimeCompare([]byte(p["username"]), []byte(user)) == 1
	respOK := subtle.ConstantTimeCompare([]byte(strings.ToLower(p["response"])), []byte(want)) == 1
	return userOK && respOK
}

// parseAuthParams reads the comma-separated key=value and key="quoted"
// pairs of an Authorization header.
func parseAuthParams(s string) (map[string]string, error) {
	const maxParams = 32
	out := map[string]string{}
	for n := 0; ; n++ {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out, nil
		}
		if n == maxParams {
			return nil, fmt.Errorf("too many parameters")
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("malformed parameter %q", s)
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated quoted value for %s", key)
			}
			val, s = b.String(), s[i+1:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val, s = strings.TrimSpace(s[:end]), s[end:]
		}
		out[key] = val
	}
}

// basicOK checks an Authorization: Basic header.
func basicOK(r *http.Request, user, pass string) bool {
	u, p, ok := r.BasicAuth()
	if !ok {
		return false
	}
	userOK := subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1
	passOK := subtle.ConstantTimeCompare([]byte(p), []byte(pass)) == 1
	return userOK && passOK
}
