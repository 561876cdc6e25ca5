package onvif

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"sync"
)

// challenge is one scheme offered in a WWW-Authenticate header.
type challenge struct {
	scheme string            // lower case: "digest", "basic"
	params map[string]string // keys lower case
}

// parseChallenges reads every challenge from WWW-Authenticate header
// values. A header may hold several challenges ("Digest ..., Basic ...").
func parseChallenges(values []string) []challenge {
	var out []challenge
	for _, s := range values {
		var cur *challenge
		i := 0
		for i < len(s) {
			for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
				i++
			}
			start := i
			for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != ',' && s[i] != '=' {
				i++
			}
			tok := s[start:i]
			if tok == "" {
				if i < len(s) {
					i++ // a stray '=' cannot start anything
				}
				continue
			}
			j := i
			for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
				j++
			}
			if j < len(s) && s[j] == '=' {
				i = j + 1
				for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
					i++
				}
				var val string
				if i < len(s) && s[i] == '"' {
					i++
					var b strings.Builder
					for i < len(s) && s[i] != '"' {
						if s[i] == '\\' && i+1 < len(s) {
							i++
						}
						b.WriteByte(s[i])
						i++
					}
					i++ // closing quote
					val = b.String()
				} else {
					vs := i
					for i < len(s) && s[i] != ',' {
						i++
					}
					val = strings.TrimSpace(s[vs:i])
				}
				if cur != nil {
					cur.params[strings.ToLower(tok)] = val
				}
				continue
			}
			out = append(out, challenge{scheme: strings.ToLower(tok), params: map[string]string{}})
			cur = &out[len(out)-1]
		}
	}
	return out
}

// digestAuth answers an RFC 7616 Digest challenge (MD5, MD5-sess, SHA-256,
// SHA-256-sess; qop=auth or the RFC 2069 form without qop) and keeps the
// nonce count so later requests can authenticate without another 401.
type digestAuth struct {
	mu        sync.Mutex
	realm     string
	nonce     string
	opaque    string
	algorithm string // as the server spelled it, echoed back
	sess      bool
	qop       string // "auth" or ""
	userhash  bool
	newHash   func() hash.Hash
	nc        uint32
}

// newDigestAuth builds the state for a Digest challenge, or returns an
// error when the challenge asks for something this package cannot do.
func newDigestAuth(ch challenge) (*digestAuth, error) {
	p := ch.params
	d := &digestAuth{realm: p["realm"], nonce: p["nonce"], opaque: p["opaque"], algorithm: p["algorithm"]}
	if d.nonce == "" {
		return nil, fmt.Errorf("digest challenge without nonce")
	}
	switch strings.ToUpper(d.algorithm) {
	case "", "MD5":
		d.newHash = md5.New
	case "MD5-SESS":
		d.newHash, d.sess = md5.New, true
	case "SHA-256":
		d.newHash = sha256.New
	case "SHA-256-SESS":
		d.newHash, d.sess = sha256.New, true
	default:
		return nil, fmt.Errorf("digest algorithm %q not supported", d.algorithm)
	}
	if q, ok := p["qop"]; ok {
		for _, v := range strings.Split(q, ",") {
			if strings.TrimSpace(strings.ToLower(v)) == "auth" {
				d.qop = "auth"
			}
		}
		if d.qop == "" {
			return nil, fmt.Errorf("digest qop %q not supported (only auth)", q)
		}
	}
	d.userhash = strings.EqualFold(p["userhash"], "true")
	return d, nil
}

func (d *digestAuth) h(parts ...string) string {
	hh := d.newHash()
	hh.Write([]byte(strings.Join(parts, ":")))
	return hex.EncodeToString(hh.Sum(nil))
}

// response computes the request-digest for the given cnonce and nc; split
// out so the RFC 7616 example vectors can be checked.
func (d *digestAuth) response(method, uri, user, password, cnonce, nc string) string {
	ha1 := d.h(user, d.realm, password)
	if d.sess {
		ha1 = d.h(ha1, d.nonce, cnonce)
	}
	ha2 := d.h(method, uri)
	if d.qop == "" {
		return d.h(ha1, d.nonce, ha2)
	}
	return d.h(ha1, d.nonce, nc, cnonce, d.qop, ha2)
}

// authorization returns the Authorization header value for one request.
func (d *digestAuth) authorization(method, uri, user, password string) string {
	d.mu.Lock()
	d.nc++
	nc := fmt.Sprintf("%08x", d.nc)
	d.mu.Unlock()
	cb := make([]byte, 16)
	_, _ = rand.Read(cb)
	cnonce := hex.EncodeToString(cb)
	name := user
	if d.userhash {
		name = d.h(user, d.realm)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username=%s, realm=%s, nonce=%s, uri=%s`, quote(name), quote(d.realm), quote(d.nonce), quote(uri))
	if d.algorithm != "" {
		fmt.Fprintf(&b, `, algorithm=%s`, d.algorithm)
	}
	fmt.Fprintf(&b, `, response=%s`, quote(d.response(method, uri, user, password, cnonce, nc)))
	if d.qop != "" {
		fmt.Fprintf(&b, `, qop=%s, nc=%s, cnonce=%s`, d.qop, nc, quote(cnonce))
	}
	if d.opaque != "" {
		fmt.Fprintf(&b, `, opaque=%s`, quote(d.opaque))
	}
	if d.userhash {
		b.WriteString(`, userhash=true`)
	}
	return b.String()
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// httpAuth is how a client answers HTTP challenges from one camera.
type httpAuth struct {
	digest *digestAuth
	basic  bool
}

// fromChallenges picks the strongest scheme offered: Digest SHA-256, then
// Digest MD5, then Basic. ok is false when nothing usable was offered.
func fromChallenges(h http.Header) (a httpAuth, why string, ok bool) {
	chs := parseChallenges(h.Values("WWW-Authenticate"))
	var best *digestAuth
	var reasons []string
	hasBasic := false
	for _, ch := range chs {
		switch ch.scheme {
		case "digest":
			d, err := newDigestAuth(ch)
			if err != nil {
				reasons = append(reasons, err.Error())
				continue
			}
			if best == nil || (d.newHash().Size() > best.newHash().Size()) {
				best = d
			}
		case "basic":
			hasBasic = true
		default:
			reasons = append(reasons, "scheme "+ch.scheme+" not supported")
		}
	}
	switch {
	case best != nil:
		return httpAuth{digest: best}, "", true
	case hasBasic:
		return httpAuth{basic: true}, "", true
	case len(chs) == 0:
		return httpAuth{}, "HTTP 401 without a WWW-Authenticate challenge", false
	default:
		return httpAuth{}, strings.Join(reasons, "; "), false
	}
}

// apply sets the Authorization header on req.
func (a httpAuth) apply(req *http.Request, user, password string) {
	switch {
	case a.digest != nil:
		req.Header.Set("Authorization", a.digest.authorization(req.Method, req.URL.RequestURI(), user, password))
	case a.basic:
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
	}
}

func (a httpAuth) none() bool { return a.digest == nil && !a.basic }

func (a httpAuth) scheme() string {
	switch {
	case a.digest != nil:
		return "digest"
	case a.basic:
		return "basic"
	}
	return "none"
}
