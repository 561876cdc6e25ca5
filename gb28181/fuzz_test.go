package gb28181

import (
	"slices"
	"testing"

	"github.com/tianyan/vms/gb28181/manscdp"
)

// FuzzSniffMANSCDP: any body, well-formed or not, any charset, is sniffed without panicking, and
// what comes out is what the body says when it is well-formed.
func FuzzSniffMANSCDP(f *testing.F) {
	for _, seed := range []string{
		keepaliveBody("34020000001320000001", 7),
		`<?xml version="1.0" encoding="GB2312"?><Response><CmdType>Catalog</CmdType><SN>12</SN><DeviceID>x</DeviceID><SumNum>1</SumNum></Response>`,
		"<Query><cmdtype>DeviceInfo</cmdtype><sn>-1</sn></Query>",
		"<Notify><CmdType>", "CmdType", "<<<>>>", "\xff\xfe<\x00N\x00",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var r Request
		sniffMANSCDP(body, &r)
		if r.CmdType != "" && r.Root == "" {
			t.Fatalf("CmdType %q without a root element", r.CmdType)
		}
		heartBeatInterval(body)
	})
}

// FuzzCatalogItemBecomesAValidPoint: whatever a device writes in a channel's name, civil code,
// address, coordinates and parent, the sync stores a point the catalog accepts (or flags the
// channel), never panics, and never refuses the device's other channels.
func FuzzCatalogItemBecomesAValidPoint(f *testing.F) {
	f.Add("河道一号", "440307001001", "平湖", 114.1, 22.6, nvrID, 1)
	f.Add("", "", "", 0.0, 0.0, "", 0)
	f.Add("a\x00b\u202e\tc", "44O307", "\xff\xfe", 500.0, -91.0, "1234", 9)
	f.Add(string(make([]byte, 300)), "4403070010019999", "addr;with;semicolons", -180.0, 90.0, groupID, 5)
	w := newCatalogWorld(f, nil)
	f.Fuzz(func(t *testing.T, name, civil, address string, lon, lat float64, parent string, ptz int) {
		odd := manscdp.Item{DeviceID: "44030700001310000001", Name: name, CivilCode: civil, Address: address,
			Longitude: lon, Latitude: lat, ParentID: parent, BusinessGroupID: parent, Info: &manscdp.Info{PTZType: ptz}}
		plain := manscdp.Item{DeviceID: "44030700001310000002", Name: "正常", CivilCode: "440307"}
		if _, err := w.s.applyItems(nvrID, []manscdp.Item{odd, plain}, true); err != nil {
			t.Fatalf("sync failed: %v", err)
		}
		if _, err := w.cat.Get(plain.DeviceID); err != nil {
			t.Fatal("an odd channel kept its neighbour out of the catalog")
		}
		chs, err := w.s.Channels(nvrID)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range chs {
			if slices.Contains(c.Flags, FlagInvalid) {
				t.Fatalf("channel %q (civil %q, address %q) refused by the catalog: the sync must clean what it stores", name, civil, address)
			}
		}
		if p, err := w.cat.Get(odd.DeviceID); err != nil || p.Main.Device != nvrID {
			t.Fatalf("channel %q was not stored: %+v %v", name, p, err)
		}
	})
}
