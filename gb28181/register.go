package gb28181

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/tianyan/vms/audit"
)

// nonceLifetime is how long a Digest challenge may be answered; an older nonce gets a fresh
// challenge with stale=true (not a failure).
const nonceLifetime = 5 * time.Minute

// minExpires is the shortest registration we accept; shorter requests are raised to it.
const minExpires = 60 * time.Second

// registerHandlers installs the device-side REGISTER and keepalive handling.
func (s *Server) registerHandlers() {
	s.nonceKey = make([]byte, 32)
	if _, err := rand.Read(s.nonceKey); err != nil {
		panic("gb28181: no randomness for nonces: " + err.Error())
	}
	s.Handle(sip.REGISTER, s.onRegister)
	s.HandleCmd("Keepalive", s.onKeepalive)
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// newNonce makes a stateless nonce: issue time and an HMAC binding it to the device and the address
// it was challenged at, so nothing is stored per challenge, a nonce cannot serve another device, and
// a REGISTER captured on the wire cannot be replayed from elsewhere to move the device's address.
func (s *Server) newNonce(id, host string, now time.Time) string {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(now.UnixNano()))
	return hex.EncodeToString(ts[:]) + hex.EncodeToString(s.nonceMAC(ts[:], id, host))
}

func (s *Server) nonceMAC(ts []byte, id, host string) []byte {
	m := hmac.New(sha256.New, s.nonceKey)
	m.Write(ts)
	m.Write([]byte(id))
	m.Write([]byte{0})
	m.Write([]byte(host))
	return m.Sum(nil)[:16]
}

// checkNonce reports whether nonce was issued by us to device id at host (ok) and whether it is
// too old (stale).
func (s *Server) checkNonce(nonce, id, host string, now time.Time) (ok, stale bool) {
	raw, err := hex.DecodeString(nonce)
	if err != nil || len(raw) != 8+16 {
		return false, false
	}
	if !hmac.Equal(raw[8:], s.nonceMAC(raw[:8], id, host)) {
		return false, false
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(raw[:8])))
	if now.Sub(issued) > nonceLifetime || issued.After(now.Add(time.Minute)) {
		return true, true
	}
	return true, false
}

func (s *Server) challenge(r *Request, stale bool) {
	ch := digest.Challenge{Realm: s.cfg.Realm, Nonce: s.newNonce(r.FromID, hostOf(r.Source), s.cfg.Now()), Algorithm: "MD5", Stale: stale}
	r.Respond(401, "Unauthorized", nil, sip.NewHeader("WWW-Authenticate", ch.String()))
}

func (s *Server) audit(r audit.Record) {
	if s.cfg.Audit == nil {
		return
	}
	if _, err := s.cfg.Audit.Append(r); err != nil {
		s.log.Warn("gb28181: audit", "action", r.Action, "err", err)
	}
}

// onRegister authenticates a device with Digest and records where it registered from.
func (s *Server) onRegister(_ context.Context, r *Request) {
	id := r.FromID
	ip := hostOf(r.Source)
	if !IsID(id) {
		r.Respond(400, "Bad Request", nil)
		return
	}
	now := s.cfg.Now()
	// Failures count per device ID and address: wrong answers from
	// elsewhere must not lock the real device out of its own ID (anyone
	// who knows it could). The per-address limit still stops a guesser
	// trying many IDs, and nonces bound to the address stop spoofing.
	user := "gb:" + id + "@" + ip
	if s.cfg.Throttle != nil {
		if wait, locked := s.cfg.Throttle.Check(user, ip, now); locked || wait > 0 {
			// A refused attempt is not checked and not a failure; locks are audited once, when set.
			r.Respond(403, "Forbidden", nil)
			return
		}
	}
	authz := r.SIP.GetHeader("Authorization")
	if authz == nil {
		s.challenge(r, false)
		return
	}
	cred, err := digest.ParseCredentials(authz.Value())
	if err != nil {
		s.challenge(r, false)
		return
	}
	switch ok, stale := s.checkNonce(cred.Nonce, id, ip, now); {
	case !ok:
		// A nonce we did not issue for this device (another device's, forged, or from before a
		// restart): challenge again; only a wrong answer to our own challenge counts as a failure.
		s.challenge(r, false)
		return
	case stale:
		s.challenge(r, true)
		return
	}
	if !s.credentialsMatch(id, cred) {
		reason := "wrong password"
		locked := false
		if s.cfg.Throttle != nil {
			locked = s.cfg.Throttle.Failure(user, ip, now)
		}
		s.log.Warn("gb28181: register refused", "device", id, "source", r.Source, "reason", reason, "locked", locked)
		s.audit(audit.Record{Action: "gb.register_fail", ClientIP: ip, Detail: map[string]string{"device": id, "transport": r.Transport}})
		if locked {
			s.audit(audit.Record{Action: "login.locked", ClientIP: ip, Detail: map[string]string{"via": "gb28181", "device": id}})
		}
		r.Respond(403, "Forbidden", nil)
		return
	}
	if s.cfg.Throttle != nil {
		s.cfg.Throttle.Success(user, ip)
	}

	expires := s.requestedExpires(r.SIP)
	if expires == 0 {
		s.unregister(r, now)
		return
	}
	expires = min(max(expires, minExpires), s.cfg.RegisterExpiry)
	contact := ""
	if c := r.SIP.Contact(); c != nil {
		contact = c.Address.String()
	}
	callID := ""
	if c := r.SIP.CallID(); c != nil {
		callID = c.Value()
	}
	version := gbVersion(r.SIP)
	var kind DeviceEventKind
	s.devices.Update(id, true, func(d *Device) DeviceEventKind {
		switch {
		case !d.Online, d.Addr != r.Source, d.Transport != r.Transport, d.callID != callID:
			// New, back from offline, moved, or restarted (a device that restarts starts a new
			// registration dialog): live media and catalog must start over.
			kind = DeviceRegistered
		}
		d.Addr, d.Transport, d.Contact, d.callID = r.Source, r.Transport, contact, callID
		d.RegisteredAt, d.Expires, d.LastKeepalive, d.Online = now, expires, now, true
		if version != "" {
			d.Version = version
		}
		if d.StreamTransport == "" {
			d.StreamTransport = "udp"
		}
		return kind
	})
	if kind == DeviceRegistered {
		s.log.Info("gb28181: device registered", "device", id, "source", r.Source, "transport", r.Transport, "expires", expires)
		if err := s.saveDevice(id, s.cfg.Audit.Hook(audit.Record{Action: "gb.register", ClientIP: ip,
			Detail: map[string]string{"device": id, "transport": r.Transport, "address": r.Source}})); err != nil {
			s.log.Warn("gb28181: saving device", "device", id, "err", err)
		}
	} else if err := s.saveDevice(id); err != nil {
		s.log.Warn("gb28181: saving device", "device", id, "err", err)
	}
	exp := sip.ExpiresHeader(uint32(expires / time.Second))
	r.Respond(200, "OK", nil, &exp, sip.NewHeader("Date", now.Format("2006-01-02T15:04:05.000")))
}

// credentialsMatch checks a Digest answer against the device's own password or the default one,
// in constant time.
func (s *Server) credentialsMatch(id string, cred *digest.Credentials) bool {
	if cred.Username != id || cred.Realm != s.cfg.Realm || cred.Userhash {
		return false
	}
	opts := digest.Options{Method: "REGISTER", URI: cred.URI, Username: cred.Username, Cnonce: cred.Cnonce, Count: cred.Nc,
		GetBody: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(nil)), nil }}
	if ha1, ok := s.deviceHA1(id, s.cfg.Realm); ok {
		// The stored HA1 is MD5; other algorithms cannot match a device with its own password.
		if a := strings.ToUpper(cred.Algorithm); a != "" && a != "MD5" {
			return false
		}
		opts.A1 = ha1
	} else if s.cfg.Password != "" {
		opts.Password = s.cfg.Password
	} else {
		return false // no password anywhere: nobody may register
	}
	chal := &digest.Challenge{Realm: cred.Realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm, Opaque: cred.Opaque}
	if cred.QOP != "" {
		chal.QOP = []string{cred.QOP}
	}
	want, err := digest.Digest(chal, opts)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(want.Response)), []byte(strings.ToLower(cred.Response))) == 1
}

// requestedExpires is the lifetime the REGISTER asks for: the Contact's expires parameter, else the
// Expires header, else the configured expiry.
func (s *Server) requestedExpires(req *sip.Request) time.Duration {
	if c := req.Contact(); c != nil && c.Params != nil {
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
				return time.Duration(n) * time.Second
			}
		}
	}
	if h := req.GetHeader("Expires"); h != nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32); err == nil {
			return time.Duration(n) * time.Second
		}
	}
	return s.cfg.RegisterExpiry
}

// gbVersion reads the edition a device speaks from X-GB-Ver (1.0 = 2011, 2.0 = 2016, 3.0 = 2022).
func gbVersion(req *sip.Request) string {
	h := req.GetHeader("X-GB-Ver")
	if h == nil {
		return ""
	}
	switch v := strings.TrimSpace(h.Value()); {
	case strings.HasPrefix(v, "1."):
		return "2011"
	case strings.HasPrefix(v, "2."):
		return "2016"
	case strings.HasPrefix(v, "3."):
		return "2022"
	}
	return ""
}

func (s *Server) unregister(r *Request, now time.Time) {
	id := r.FromID
	known := s.devices.Update(id, false, func(d *Device) DeviceEventKind {
		d.Online, d.Expires = false, 0
		return DeviceUnregistered
	})
	if known {
		s.log.Info("gb28181: device unregistered", "device", id, "source", r.Source)
		if err := s.saveDevice(id, s.cfg.Audit.Hook(audit.Record{Action: "gb.unregister", ClientIP: hostOf(r.Source),
			Detail: map[string]string{"device": id}})); err != nil {
			s.log.Warn("gb28181: saving device", "device", id, "err", err)
		}
	}
	exp := sip.ExpiresHeader(0)
	r.Respond(200, "OK", nil, &exp, sip.NewHeader("Date", now.Format("2006-01-02T15:04:05.000")))
}

// onKeepalive keeps a registered device online. Keepalives are not authenticated in GB/T 28181, so
// one is believed only from the address the device registered from (the port may change: NAT
// rebinding, a new TCP connection); anything else is told to register (404).
func (s *Server) onKeepalive(_ context.Context, r *Request) {
	now := s.cfg.Now()
	accepted := false
	var came bool
	s.devices.Update(r.FromID, false, func(d *Device) DeviceEventKind {
		if d.Expires == 0 || now.After(d.RegisteredAt.Add(d.Expires)) {
			return 0
		}
		if hostOf(d.Addr) != hostOf(r.Source) || d.Transport != r.Transport {
			return 0
		}
		accepted = true
		d.Addr = r.Source
		d.LastKeepalive = now
		if !d.Online {
			d.Online, came = true, true
			return DeviceOnline
		}
		return 0
	})
	if !accepted {
		// Devices answer a failed keepalive by registering again, which is what we want.
		r.Respond(404, "Not Found", nil)
		return
	}
	if came {
		s.log.Info("gb28181: device back online", "device", r.FromID, "source", r.Source)
	}
	r.Respond(200, "OK", nil)
}
