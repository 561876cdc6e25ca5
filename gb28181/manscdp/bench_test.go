package manscdp

import "testing"

func BenchmarkParseKeepalive(b *testing.B) {
	body, err := Marshal(&Keepalive{Header: Header{SN: 1, DeviceID: "34020000001320000001"}, Status: "OK"}, CharsetGB2312)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseCatalogPageGBK parses a GBK page of five channels (a Dahua
// page), the bulk of a catalog sync.
func BenchmarkParseCatalogPageGBK(b *testing.B) {
	r := &CatalogResponse{Header: Header{SN: 1, DeviceID: "34020000001180000001"}, SumNum: 100}
	for i := 0; i < 5; i++ {
		r.DeviceList.Items = append(r.DeviceList.Items, Item{DeviceID: "3402000000131000000" + string(rune('0'+i)),
			Name: "河道东岸摄像机", CivilCode: "340202", ParentID: "34020000001180000001", Status: StatusOn,
			Longitude: 117.2, Latitude: 31.8, Info: &Info{PTZType: 1}})
	}
	r.DeviceList.Num = 5
	body, err := Marshal(r, CharsetGB2312)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}
