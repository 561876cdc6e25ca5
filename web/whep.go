package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/pion/webrtc/v4"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/permissions"
	"github.com/tianyan/vms/streaming"
)

// streamHub is the part of the streaming hub live views call.
type streamHub interface {
	Acquire(ctx context.Context, id string) (*streaming.Stream, func(), error)
	Stats(id string) (streaming.Stats, error)
	StartTimeout() time.Duration
}

// webRTCSessions makes and finds the WebRTC sessions of WHEP viewers.
type webRTCSessions interface {
	NewSession(ctx context.Context, stream *streaming.Stream, offer string, opts streaming.SessionOptions) (*streaming.Session, string, error)
	Session(id string) (*streaming.Session, bool)
	ICEServers() []webrtc.ICEServer
}

// viewLimiter caps concurrent views per user and per client address
// (streaming.ViewLimits; its nil caps nothing).
type viewLimiter interface {
	Reserve(user, ip string) (release func(), err error)
}

// agentPresence says whether an edge agent's link is up.
type agentPresence interface {
	Online(agentID string) bool
}

// systemDecider says whether a user holds a system action.
type systemDecider interface {
	CanSystem(u accounts.User, a permissions.SystemAction) bool
}

// streamHandler answers live video: WHEP sessions (RFC 9725) and the
// stream state of a point.
type streamHandler struct {
	hub    streamHub
	rtc    webRTCSessions
	limits viewLimiter
	decide systemDecider
	// agents tells "agent offline" from "camera not publishing" (nil
	// without edge agents).
	agents agentPresence
	trail  auditTrail
	log    *slog.Logger
}

// maxOfferBytes bounds a WHEP offer.
const maxOfferBytes = 64 << 10

// offer answers POST /api/v1/points/{id}/whep (WHEP, RFC 9725).
func (h *streamHandler) offer(c *gin.Context) {
	p, ok := visiblePoint(c, h.log, permissions.View)
	if !ok {
		return
	}
	mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if mt != "application/sdp" {
		fail(c, http.StatusUnsupportedMediaType, "bad_content_type", "send the SDP offer as application/sdp")
		return
	}
	// ?profile=sub asks for the low-bitrate stream (phones, wall tiles); a
	// point without one serves its main stream, and says so in a header.
	profile := streaming.ProfileMain
	switch c.Query("profile") {
	case "", streaming.ProfileMain:
	case streaming.ProfileSub:
		if p.Sub != nil {
			profile = streaming.ProfileSub
		}
	default:
		fail(c, http.StatusBadRequest, "bad_profile", "profile must be main or sub")
		return
	}
	c.Header("X-Tianyan-Profile", profile)
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxOfferBytes))
	if err != nil {
		fail(c, http.StatusRequestEntityTooLarge, "too_large", "SDP offer too large")
		return
	}
	// A malformed offer must not start a camera.
	if err := streaming.ValidateOffer(string(body)); err != nil {
		fail(c, http.StatusBadRequest, "bad_offer", err.Error())
		return
	}
	u := currentUser(c)
	ip := c.ClientIP()
	// The view slot is taken before the camera is asked for and the
	// WebRTC session negotiated, so offers still negotiating count too; the
	// session gives it back when it ends.
	unreserve, err := h.limits.Reserve(u.Username, ip)
	if err != nil {
		var lim *streaming.LimitError
		errors.As(err, &lim)
		h.log.Info("view refused: too many views", "point", p.ID, "user", u.Username, "ip", ip, "scope", lim.Scope, "limit", lim.Limit)
		h.trail.record(audit.Record{User: u.Username, Action: "view.refused", Point: p.ID, ClientIP: ip,
			Detail: map[string]string{"via": "webrtc", "reason": "cap", "scope": lim.Scope, "limit": strconv.Itoa(lim.Limit)}})
		fail(c, http.StatusTooManyRequests, "too_many_views", lim.Error()+"; close a view first")
		return
	}
	sessionOwnsSlot := false
	defer func() {
		if !sessionOwnsSlot {
			unreserve()
		}
	}()
	stream, release, err := h.hub.Acquire(c.Request.Context(), streaming.PathKey(p.ID, profile))
	if err != nil {
		switch {
		case errors.Is(err, streaming.ErrStartTimeout):
			fail(c, http.StatusGatewayTimeout, "start_timeout",
				fmt.Sprintf("the camera did not start within %v", h.hub.StartTimeout()))
		case errors.Is(err, streaming.ErrNotPublishing) && p.Agent != "" && h.agents != nil && !h.agents.Online(p.Agent):
			// Not the camera's fault: the player says so, and retries.
			fail(c, http.StatusServiceUnavailable, "agent_offline", "the edge agent of this camera is not connected")
		case errors.Is(err, streaming.ErrNotPublishing):
			fail(c, http.StatusServiceUnavailable, "not_publishing", "no one is publishing this point right now")
		case errors.Is(err, streaming.ErrUnknownPoint):
			notFound(c, "point")
		default:
			fail(c, http.StatusServiceUnavailable, "unavailable", err.Error())
		}
		return
	}
	started := time.Now()
	tok, _ := c.Get(ctxToken)
	tokStr, _ := tok.(string)
	sess, answer, err := h.rtc.NewSession(c.Request.Context(), stream, string(body), streaming.SessionOptions{
		User: u.Username, ClientIP: ip,
		// The view lives as long as the login session or API token that
		// opened it (server/revoke.go checks).
		Credential: string(accounts.BearerCredential(tokStr)),
		OnClose: func(ss *streaming.Session) {
			release()
			unreserve()
			st := ss.Stats()
			h.log.Info("view ended", "point", ss.PointID, "user", ss.User, "ip", ss.ClientIP, "reason", ss.EndReason(),
				"secs", int(time.Since(started).Seconds()), "bytes", st.Bytes, "dropped", st.Dropped)
			h.trail.record(audit.Record{User: ss.User, Action: "view.stop", Point: p.ID, ClientIP: ss.ClientIP,
				DurationMs: time.Since(started).Milliseconds(),
				Detail:     map[string]string{"via": "webrtc", "profile": profile, "reason": ss.EndReason()}})
		},
	})
	if err != nil {
		release()
		var ce *streaming.CodecError
		switch {
		case errors.As(err, &ce):
			fail(c, http.StatusUnprocessableEntity, "codec_unsupported", ce.Error())
		case errors.Is(err, streaming.ErrBadOffer):
			fail(c, http.StatusBadRequest, "bad_offer", err.Error())
		default:
			h.log.Warn("whep session failed", "point", p.ID, "err", err)
			fail(c, http.StatusInternalServerError, "webrtc_failed", "could not start the WebRTC session")
		}
		return
	}
	sessionOwnsSlot = true
	h.log.Info("view started", "point", p.ID, "user", u.Username, "ip", ip, "session", sess.ID)
	h.trail.record(audit.Record{User: u.Username, Action: "view.start", Point: p.ID, ClientIP: ip,
		Detail: map[string]string{"via": "webrtc", "profile": profile}})
	for _, is := range h.rtc.ICEServers() {
		for _, url := range is.URLs {
			link := fmt.Sprintf("<%s>; rel=\"ice-server\"", url)
			if is.Username != "" {
				if cred, ok := is.Credential.(string); ok {
					link += fmt.Sprintf("; username=%q; credential=%q; credential-type=\"password\"", is.Username, cred)
				}
			}
			c.Writer.Header().Add("Link", link)
		}
	}
	c.Header("Location", "/api/v1/points/"+p.ID+"/whep/"+sess.ID)
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusCreated, "application/sdp", []byte(answer))
}

// session finds a session the caller owns (or, holding ManageUsers, anyone's).
func (h *streamHandler) session(c *gin.Context) (*streaming.Session, bool) {
	sess, ok := h.rtc.Session(c.Param("session"))
	if ok {
		if id, _ := streaming.SplitPathKey(sess.PointID); id != c.Param("id") {
			ok = false
		}
	}
	if !ok {
		notFound(c, "session")
		return nil, false
	}
	u := currentUser(c)
	if sess.User != u.Username && !h.decide.CanSystem(u, permissions.ManageUsers) {
		notFound(c, "session")
		return nil, false
	}
	return sess, true
}

func (h *streamHandler) delete(c *gin.Context) {
	sess, ok := h.session(c)
	if !ok {
		return
	}
	sess.Close()
	c.Status(http.StatusOK)
}

// patch: trickle ICE is not needed (the answer carries every candidate
// of our single port), so PATCH is refused as WHEP allows.
func (h *streamHandler) patch(c *gin.Context) {
	if _, ok := h.session(c); !ok {
		return
	}
	c.Header("Allow", strings.Join([]string{http.MethodDelete}, ", "))
	fail(c, http.StatusMethodNotAllowed, "no_trickle", "trickle ICE is not supported; send a complete offer")
}

// stats answers GET /api/v1/points/{id}/stats.
func (h *streamHandler) stats(c *gin.Context) {
	p, ok := visiblePoint(c, h.log, permissions.View)
	if !ok {
		return
	}
	profile := streaming.ProfileMain
	if c.Query("profile") == streaming.ProfileSub {
		profile = streaming.ProfileSub
	}
	st, err := h.hub.Stats(streaming.PathKey(p.ID, profile))
	if err != nil {
		notFound(c, "stream")
		return
	}
	c.JSON(http.StatusOK, st)
}
