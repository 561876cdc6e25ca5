package streaming

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// denyAllAuthorizer refuses every credential and every action.
type denyAllAuthorizer struct{}

func (denyAllAuthorizer) AuthenticateRTSP(*RTSPCredentials) (string, error) {
	return "", ErrUnauthenticated
}

func (denyAllAuthorizer) AuthorizeRTSP(string, string, string) error { return ErrForbidden }

// dialNoTimeWait connects to addr with SO_LINGER 0: closing resets the
// connection instead of leaving it in TIME_WAIT, so tens of thousands of fuzz
// runs do not fill 127.0.0.1's port space (which makes other tests' random
// listeners collide).
func dialNoTimeWait(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("server no longer accepts connections: %v", err)
	}
	conn := c.(*net.TCPConn)
	_ = conn.SetLinger(0)
	return conn
}

// rtspOptionsOK sends a valid OPTIONS on a new connection and requires 200.
func rtspOptionsOK(t *testing.T, addr string) {
	t.Helper()
	conn := dialNoTimeWait(t, addr)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, "OPTIONS rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\n\r\n"); err != nil {
		t.Fatalf("writing OPTIONS: %v", err)
	}
	tp := textproto.NewReader(bufio.NewReader(conn))
	status, err := tp.ReadLine()
	if err != nil {
		t.Fatalf("no answer to OPTIONS: %v", err)
	}
	if status != "RTSP/1.0 200 OK" {
		t.Fatalf("OPTIONS answered %q", status)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("OPTIONS answer headers: %v", err)
	}
	if hdr.Get("CSeq") != "1" {
		t.Fatalf("OPTIONS answer CSeq %q", hdr.Get("CSeq"))
	}
}

// parserBreaker makes the server's parser fail whatever state the input
// left it in: it is longer than any body (128 KiB) or interleaved frame, has
// no space, CR or colon to end a token within the method, URL, header and
// protocol limits, and "DE" every 66 bytes starts a request wherever the
// server resynchronizes (it skips bytes until a known method prefix). The
// server then hangs up first, which leaves TIME_WAIT on its own port rather
// than on ephemeral ports other tests' random listeners may draw.
var parserBreaker = bytes.Repeat([]byte("DE"+strings.Repeat("x", 64)), 3200)

func FuzzRTSPServerRequest(f *testing.F) {
	for _, s := range []string{
		"OPTIONS rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\n\r\n",
		"DESCRIBE rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n",
		"DESCRIBE rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 2\r\nAuthorization: Basic YWRtaW46cGFzcw==\r\n\r\n",
		"DESCRIBE rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 3\r\nAuthorization: Digest username=\"admin\", realm=\"IPCAM\", nonce=\"abc\", uri=\"rtsp://127.0.0.1/x\", response=\"0123456789abcdef0123456789abcdef\"\r\n\r\n",
		"ANNOUNCE rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: 85\r\n\r\n" +
			"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n",
		"SETUP rtsp://127.0.0.1/x/trackID=0 RTSP/1.0\r\nCSeq: 4\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n",
		"SETUP rtsp://127.0.0.1/x/trackID=0 RTSP/1.0\r\nCSeq: 4\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n",
		"PLAY rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 5\r\nSession: 12345678\r\nRange: npt=0.000-\r\n\r\n",
		"RECORD rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 5\r\nSession: 12345678\r\n\r\n",
		"TEARDOWN rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 6\r\nSession: 12345678\r\n\r\n",
		"GET_PARAMETER rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 7\r\n\r\n",
		"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\nOPTIONS * RTSP/1.0\r\nCSeq: 2\r\n\r\n",
		// Malformed.
		"",
		"\r\n\r\n",
		"OPTIONS\r\n\r\n",
		"OPTIONS rtsp://127.0.0.1/x RTSP/1.0\r\n\r\n",
		"OPTIONS rtsp://127.0.0.1/x RTSP/2.0\r\nCSeq: 1\r\n\r\n",
		"DESCRIBE rtsp://[::1/x RTSP/1.0\r\nCSeq: 1\r\n\r\n",
		"DESCRIBE rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic !!!\r\n\r\n",
		"DESCRIBE rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Digest\r\n\r\n",
		"DESCRIBE rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n",
		"ANNOUNCE rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 99999999\r\n\r\nv=0",
		"ANNOUNCE rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\nContent-Length: -1\r\n\r\n",
		"SETUP rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\nTransport: ;;;interleaved=9-\r\n\r\n",
		"$\x00\x00\x04abcd",
		"$\x00\xff\xff",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"OPTIONS rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\n" + strings.Repeat("X-Long: "+strings.Repeat("a", 1000)+"\r\n", 100) + "\r\n",
		"\x16\x03\x01\x00\x05hello",
	} {
		f.Add([]byte(s))
	}

	// One server per fuzz process, living as long as the fuzz target.
	hub := NewHub(HubConfig{Logger: testLogger()})
	f.Cleanup(hub.Close)
	hub.SetPoint("x", SourceConfig{Type: SourcePublish})
	srv, err := NewRTSPServer(hub, RTSPServerConfig{Address: "127.0.0.1:0", Authorizer: denyAllAuthorizer{}, ReadTimeout: 2 * time.Second, Logger: testLogger()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(srv.Close)
	addr := srv.Addr()

	f.Fuzz(func(t *testing.T, in []byte) {
		conn := dialNoTimeWait(t, addr)
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		// The server may hang up mid-write on garbage; that is fine.
		_, _ = conn.Write(in)
		// Whatever state the input left the server's parser in, the
		// breaker makes it fail and hang up, so reading to EOF is quick
		// and the server, closing first, keeps no TIME_WAIT on our side.
		_, _ = conn.Write(parserBreaker)
		resp, _ := io.ReadAll(io.LimitReader(conn, 1<<20))
		conn.Close()
		if len(resp) > 0 && !bytes.HasPrefix(resp, []byte("RTSP/1.0 ")) {
			t.Fatalf("server answered something other than RTSP: %q", resp[:min(len(resp), 80)])
		}

		// Nobody is allowed in: the point must never have gained a
		// publisher, a stream or a reader.
		p, err := hub.path("x")
		if err != nil {
			t.Fatal(err)
		}
		st, err := p.status()
		if err != nil {
			t.Fatal(err)
		}
		if st.publisher || st.stream != nil || st.stats.Readers != 0 {
			t.Fatalf("a denied client changed the point: publisher %v, stream %v, readers %d", st.publisher, st.stream != nil, st.stats.Readers)
		}

		rtspOptionsOK(t, addr)
	})
}
