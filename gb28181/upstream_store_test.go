package gb28181

import (
	"bytes"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
	"github.com/tianyan/vms/store/storetest"
)

func newPlatformStore(t *testing.T) (*PlatformStore, *store.DB) {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return NewPlatformStore(db), db
}

func cityPlatform() Platform {
	return Platform{ID: "44030000002000000001", Name: "市级平台", Address: "127.0.0.1:15060", Transport: "udp",
		Account: "city", Enabled: true}
}

// platformHook checks that the hook is shown the platform as stored, with
// no password, inside the change's transaction.
func platformHook(fail bool, calls *int) store.ResultHook[Platform] {
	return storetest.ResultHook(fail, calls, func(tx *bbolt.Tx, p Platform) error {
		var rec platformRecord
		if ok, err := store.GetJSON(tx, store.BucketGBPlatforms, []byte(p.ID), &rec); err != nil || !ok || rec.Address != p.Address {
			return errors.New("hook not shown the platform as stored")
		}
		if js, _ := json.Marshal(p); bytes.Contains(js, []byte("s3cret-pass")) {
			return errors.New("hook shown the password")
		}
		return nil
	})
}

func TestPlatformStoreKeepsPasswordWriteOnlyAndFillsDefaults(t *testing.T) {
	s, _ := newPlatformStore(t)
	var changes atomic.Int32
	s.OnChange(func() { changes.Add(1) })
	p, err := s.Create(cityPlatform(), "s3cret-pass")
	if err != nil {
		t.Fatal(err)
	}
	if p.Expiry != DefaultUpstreamExpiry || p.Keepalive != DefaultUpstreamKeepalive || p.RealmDomain() != "4403000000" || !p.PasswordSet {
		t.Errorf("created %+v", p)
	}
	got, err := s.Get(p.ID)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := s.List()
	for _, v := range []any{p, got, list} {
		if js, _ := json.Marshal(v); bytes.Contains(js, []byte("s3cret-pass")) {
			t.Errorf("password returned: %s", js)
		}
	}
	recs, _ := s.all()
	if len(recs) != 1 || recs[0].Password != "s3cret-pass" {
		t.Fatalf("the cascade's view lacks the password: %d records", len(recs))
	}
	pw, keep := "n3w-pass", 30
	if _, err := s.Update(p.ID, PlatformPatch{Password: &pw, Keepalive: &keep}); err != nil {
		t.Fatal(err)
	}
	recs, _ = s.all()
	if recs[0].Password != "n3w-pass" || recs[0].Keepalive != 30 || recs[0].Address != p.Address {
		t.Errorf("after update: keepalive %d address %s", recs[0].Keepalive, recs[0].Address)
	}
	if _, err := s.Create(cityPlatform(), ""); !errors.Is(err, ErrPlatformExists) {
		t.Errorf("second create = %v", err)
	}
	if err := s.Delete(p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(p.ID); !errors.Is(err, ErrPlatformNotFound) {
		t.Errorf("after delete Get = %v", err)
	}
	if n := changes.Load(); n != 3 {
		t.Errorf("OnChange called %d times, want 3 (create, update, delete)", n)
	}
}

func TestPlatformStoreRefusesBadFieldsNamingThem(t *testing.T) {
	s, _ := newPlatformStore(t)
	cases := map[string]func(*Platform){
		"id":                   func(p *Platform) { p.ID = "4403" },
		"domain":               func(p *Platform) { p.Domain = "44030" },
		"address":              func(p *Platform) { p.Address = "no-port" },
		"transport":            func(p *Platform) { p.Transport = "sctp" },
		"local_id":             func(p *Platform) { p.LocalID = "x" },
		"register_expiry_s":    func(p *Platform) { p.Expiry = 10 },
		"keepalive_interval_s": func(p *Platform) { p.Keepalive = 1 },
		"account":              func(p *Platform) { p.Account = "" },
		"media_networks":       func(p *Platform) { p.MediaNetworks = []string{"10.0.0.0/33"} },
		"name":                 func(p *Platform) { p.Name = "a\x00b" },
	}
	for field, mutate := range cases {
		p := cityPlatform()
		mutate(&p)
		var inv *PlatformInvalid
		if _, err := s.Create(p, ""); !errors.As(err, &inv) || inv.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
	var inv *PlatformInvalid
	if _, err := s.Create(cityPlatform(), "bad\npass"); !errors.As(err, &inv) || inv.Field != "password" {
		t.Errorf("password with a newline: %v", err)
	}
	if l, _ := s.List(); len(l) != 0 {
		t.Errorf("refused creates stored %d platforms", len(l))
	}
}

func TestPlatformChangesCommitWithTheirHooksOrNotAtAll(t *testing.T) {
	s, db := newPlatformStore(t)
	calls := 0
	if _, err := s.Create(cityPlatform(), "s3cret-pass", platformHook(true, &calls)); !errors.Is(err, storetest.ErrRefused) {
		t.Fatalf("create with refusing hook = %v", err)
	}
	if l, _ := s.List(); len(l) != 0 || storetest.Witnessed(t, db) {
		t.Fatal("a refused create left a platform")
	}
	p, err := s.Create(cityPlatform(), "s3cret-pass", platformHook(false, &calls))
	if err != nil || !storetest.Witnessed(t, db) {
		t.Fatalf("create: %v", err)
	}
	off := false
	if _, err := s.Update(p.ID, PlatformPatch{Enabled: &off}, platformHook(true, &calls)); !errors.Is(err, storetest.ErrRefused) {
		t.Fatalf("update with refusing hook = %v", err)
	}
	if got, _ := s.Get(p.ID); !got.Enabled {
		t.Error("a refused update changed the platform")
	}
	if err := s.Delete(p.ID, storetest.TxHook(true, &calls)); !errors.Is(err, storetest.ErrRefused) {
		t.Fatalf("delete with refusing hook = %v", err)
	}
	if _, err := s.Get(p.ID); err != nil {
		t.Error("a refused delete removed the platform")
	}
	if calls != 4 {
		t.Errorf("hooks ran %d times, want 4", calls)
	}
}
