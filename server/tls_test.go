package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"github.com/tianyan/vms/accounts"
	"github.com/tianyan/vms/camsim"
)

func tlsWriteSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tianyan-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestTLSServesHTTPSAndRTSPS(t *testing.T) {
	dir := t.TempDir()
	cert, key := tlsWriteSelfSigned(t, dir)
	clip, err := camsim.LoadClip(camsim.ClipH264Sub)
	if err != nil {
		t.Fatal(err)
	}
	cam, err := camsim.StartRTSPCamera(camsim.RTSPCameraConfig{Address: "127.0.0.1:0", Profiles: map[string]*camsim.Clip{"main": clip},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	app, err := Start(Config{
		DataDir: filepath.Join(dir, "data"), HTTPAddr: "127.0.0.1:0", RTSPAddr: "127.0.0.1:0", WebRTCAddr: "127.0.0.1:0",
		ICEInterfaces: []string{"lo"}, TLSCert: cert, TLSKey: key, AdminPassword: "admin-pass-123",
		Argon:  accounts.Argon2Params{Time: 1, MemoryKiB: 1024, Threads: 1},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),

		CameraNetworks: []string{"127.0.0.0/8"}, // camsim listens on loopback
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close(context.Background()) })

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
	body, _ := json.Marshal(map[string]string{"username": "admin", "password": "admin-pass-123"})
	res, err := hc.Post(app.HTTPURL()+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	_ = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	if res.StatusCode != 200 || tok.Token == "" || app.HTTPURL()[:8] != "https://" {
		t.Fatalf("HTTPS login: %d %q", res.StatusCode, app.HTTPURL())
	}
	var secure bool
	for _, c := range res.Cookies() {
		secure = secure || (c.Name == "tianyan_session" && c.Secure && c.HttpOnly)
	}
	if !secure {
		t.Fatal("session cookie over HTTPS must be Secure and HttpOnly")
	}
	pb, _ := json.Marshal(map[string]any{"id": "cam1", "name": "tls cam", "source": map[string]string{"type": "rtsp", "url": cam.URL("main")}})
	req, _ := http.NewRequest(http.MethodPost, app.HTTPURL()+"/api/v1/points", bytes.NewReader(pb))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	res, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create point: %d", res.StatusCode)
	}

	// Plain RTSP must not be spoken on the RTSPS port.
	u, err := base.ParseURL("rtsps://admin:admin-pass-123@" + app.RTSP.Addr() + "/cam1")
	if err != nil {
		t.Fatal(err)
	}
	c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host, TLSConfig: &tls.Config{InsecureSkipVerify: true}, ReadTimeout: 5 * time.Second} //nolint:gosec
	if err := c.Start2(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatalf("RTSPS describe: %v", err)
	}
	var h264 *format.H264
	if desc.FindFormat(&h264) == nil {
		t.Fatal("no H264 over RTSPS")
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	c.OnPacketRTPAny(func(*description.Media, format.Format, *rtp.Packet) { got.Add(1) })
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for got.Load() < 50 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got.Load() < 50 {
		t.Fatalf("only %d RTP packets over RTSPS", got.Load())
	}
}
