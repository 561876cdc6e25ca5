package server

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/coder/websocket"

	"github.com/tianyan/vms/agentlink"
)

// rawAgentLink speaks the agent protocol by hand, to see exactly what the
// centre sends and to misbehave on purpose.
func rawAgentLink(t *testing.T, a *testApp, id, secret string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hdr := http.Header{}
	hdr.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(id+":"+secret)))
	conn, _, err := websocket.Dial(ctx, strings.Replace(a.HTTPURL(), "http", "ws", 1)+agentlink.ConnectPath, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("dial link: %v", err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	msg, _ := agentlink.Encode(agentlink.TypeHello, "", agentlink.Hello{Protocol: agentlink.Version, Version: "raw"})
	if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readUntil reads link messages until one of type typ arrives.
func readUntil(t *testing.T, conn *websocket.Conn, typ string) agentlink.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		env, err := agentlink.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		if env.Type == typ {
			return env
		}
	}
}

// publishWith ANNOUNCEs an H.264 stream at url with the given credentials.
func publishWith(url, user, pass string) error {
	u, err := base.ParseURL(url)
	if err != nil {
		return err
	}
	u.User = nil
	tcp := gortsplib.TransportTCP
	c := &gortsplib.Client{Transport: &tcp, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	hdr := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	c.OnRequest = func(req *base.Request) { req.Header["Authorization"] = base.HeaderValue{hdr} }
	desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo,
		Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}}}}}
	err = c.StartRecording(u.String(), desc)
	c.Close()
	return err
}

func TestAgentCannotPublishAPointBoundToAnotherAgent(t *testing.T) {
	a := startApp(t)
	credsA, credsB := a.enrollAgent("LAN A"), a.enrollAgent("LAN B")
	for _, p := range []map[string]any{
		{"id": "pa", "name": "A cam", "agent": credsA.AgentID, "main": map[string]string{"type": "rtsp", "url": "rtsp://10.0.0.1/a"}},
		{"id": "pb", "name": "B cam", "agent": credsB.AgentID, "main": map[string]string{"type": "rtsp", "url": "rtsp://10.0.0.2/b"}},
	} {
		if res := a.admin(http.MethodPost, "/api/v1/points", p); res.Status != http.StatusCreated {
			t.Fatalf("create: %s", res)
		}
	}
	connA := rawAgentLink(t, a, credsA.AgentID, credsA.Secret)
	readUntil(t, connA, agentlink.TypeWelcome)
	waitFor(t, 5*time.Second, "agent A online", func() bool { return a.agentOnline(credsA.AgentID) })

	// A viewer of pa makes the centre ask agent A for a relay, with a
	// one-time publish secret.
	a.Agents.Demand("pa", "main")
	var start agentlink.RelayStart
	if err := readUntil(t, connA, agentlink.TypeRelayStart).Decode(&start); err != nil {
		t.Fatal(err)
	}
	if start.Point != "pa" || start.Source != "rtsp://10.0.0.1/a" || start.Password == "" {
		t.Fatalf("relay_start %+v", start)
	}
	base := "rtsp://" + a.RTSP.Addr() + "/"
	if err := publishWith(base+"pb", start.User, start.Password); !isRTSPStatus(err, base403) {
		t.Fatalf("agent A publishing agent B's point: %v, want 403", err)
	}
	if err := publishWith(base+"pa", start.User, "guessed-secret"); !isRTSPStatus(err, base401) {
		t.Fatalf("publish with a wrong secret: %v, want 401", err)
	}
	if err := publishWith(base+"pa", start.User, start.Password); err != nil {
		t.Fatalf("agent A publishing its own point: %v", err)
	}
	// An agent is never a reader.
	_, err := readRTSP(t, "rtsp://"+start.User+":"+start.Password+"@"+a.RTSP.Addr()+"/pa", true)
	if err == nil {
		t.Fatal("an agent's publish credentials could read")
	}
}

const (
	base401 = 401
	base403 = 403
)

func isRTSPStatus(err error, code int) bool {
	var bad liberrors.ErrClientBadStatusCode
	return errors.As(err, &bad) && int(bad.Code) == code
}

func TestAgentLinkRefusesGarbageAndWrongCredentials(t *testing.T) {
	a := startApp(t)
	creds := a.enrollAgent("LAN")
	res := a.do(http.MethodGet, agentlink.ConnectPath, "", "", nil)
	if res.Status != http.StatusUnauthorized {
		t.Fatalf("link without credentials: %s", res)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hdr := http.Header{}
	hdr.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(creds.AgentID+":wrong")))
	if _, resp, err := websocket.Dial(ctx, strings.Replace(a.HTTPURL(), "http", "ws", 1)+agentlink.ConnectPath, &websocket.DialOptions{HTTPHeader: hdr}); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("link with a wrong secret: %v", err)
	}
	// A link whose first message is not hello, or not JSON, is closed.
	for _, first := range []string{`{"type":"health","body":{}}`, `not json`, `{"type":"hello","body":{"protocol":99}}`} {
		conn, _, err := websocket.Dial(ctx, strings.Replace(a.HTTPURL(), "http", "ws", 1)+agentlink.ConnectPath,
			&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(creds.AgentID+":"+creds.Secret))}}})
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.Write(ctx, websocket.MessageText, []byte(first))
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		for {
			if _, _, err = conn.Read(rctx); err != nil {
				break
			}
		}
		rcancel()
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("link stayed open after %q", first)
		}
		conn.CloseNow()
	}
	waitFor(t, 5*time.Second, "refused links gone", func() bool { return !a.agentOnline(creds.AgentID) })
}
