package manscdp

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

func gbk(t testing.TB, s string) []byte {
	t.Helper()
	b, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A Hikvision NVR's catalog page: GB2312 prolog, one item, 2016 fields.
const hikCatalog = `<?xml version="1.0" encoding="GB2312"?>
<Response>
<CmdType>Catalog</CmdType>
<SN>17</SN>
<DeviceID>34020000001180000001</DeviceID>
<SumNum>32</SumNum>
<DeviceList Num="1">
<Item>
<DeviceID>34020000001310000003</DeviceID>
<Name>河道东岸3号</Name>
<Manufacturer>Hikvision</Manufacturer>
<Model>IP Camera</Model>
<Owner>Owner</Owner>
<CivilCode>340200</CivilCode>
<Address>Address</Address>
<Parental>0</Parental>
<ParentID>34020000001180000001</ParentID>
<SafetyWay>0</SafetyWay>
<RegisterWay>1</RegisterWay>
<Secrecy>0</Secrecy>
<Status>ON</Status>
<Longitude>117.2272</Longitude>
<Latitude>31.8206</Latitude>
<Info>
<PTZType>1</PTZType>
</Info>
</Item>
</DeviceList>
</Response>
`

func TestParseHikvisionGB2312CatalogPage(t *testing.T) {
	m, err := Parse(gbk(t, hikCatalog))
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != KindResponse || m.CmdType != CmdCatalog || m.SN != 17 || m.DeviceID != "34020000001180000001" || m.Charset != CharsetGB2312 {
		t.Fatalf("header %+v", m)
	}
	r, ok := m.Body.(*CatalogResponse)
	if !ok {
		t.Fatalf("body %T", m.Body)
	}
	if r.SumNum != 32 || r.DeviceList.Num != 1 || len(r.DeviceList.Items) != 1 {
		t.Fatalf("counts %d %d %d", r.SumNum, r.DeviceList.Num, len(r.DeviceList.Items))
	}
	it := r.DeviceList.Items[0]
	if it.Name != "河道东岸3号" || it.CivilCode != "340200" || it.ParentID != "34020000001180000001" ||
		it.Status != StatusOn || it.Longitude != 117.2272 || it.Latitude != 31.8206 ||
		it.Info == nil || it.Info.PTZType != PTZTypeDome || it.RegisterWay != 1 || it.Manufacturer != "Hikvision" {
		t.Fatalf("item %+v info %+v", it, it.Info)
	}
}

func TestParseUndeclaredGBKAndLyingPrologs(t *testing.T) {
	body := `<Notify><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>1</DeviceID><SumNum>1</SumNum>
<DeviceList Num="1"><Item><DeviceID>2</DeviceID><Name>易涝点</Name><Event>add</Event></Item></DeviceList></Notify>`
	for name, raw := range map[string][]byte{
		"no prolog":         gbk(t, body),
		"prolog says UTF-8": gbk(t, `<?xml version="1.0" encoding="UTF-8"?>`+body),
		"GB18030":           gbk(t, `<?xml version='1.0' encoding='gb18030'?>`+body),
	} {
		m, err := Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n := m.Body.(*CatalogNotify)
		if n.DeviceList.Items[0].Name != "易涝点" || n.DeviceList.Items[0].Event != EventAdd {
			t.Fatalf("%s: %+v", name, n.DeviceList.Items[0])
		}
		if m.Charset == CharsetUTF8 {
			t.Fatalf("%s: charset %s", name, m.Charset)
		}
	}
	// A prolog that says GB2312 over UTF-8 bytes: the bytes win, and the
	// answer still goes out in the declared GB2312.
	m, err := Parse([]byte(`<?xml version="1.0" encoding="GB2312"?>` + body))
	if err != nil || m.Charset != CharsetGB2312 || m.Body.(*CatalogNotify).DeviceList.Items[0].Name != "易涝点" {
		t.Fatalf("GB2312 prolog over UTF-8: %+v %v", m, err)
	}
	// Plain UTF-8 stays UTF-8.
	m, err = Parse([]byte(body))
	if err != nil || m.Charset != CharsetUTF8 || m.Body.(*CatalogNotify).DeviceList.Items[0].Name != "易涝点" {
		t.Fatalf("utf-8: %+v %v", m, err)
	}
}

func TestParseToleratesVendorQuirks(t *testing.T) {
	// Lower-case names, BOM, blank numbers, quoted coordinates, status
	// words, fields under Item instead of Info, no SumNum or Num, and junk
	// after the root element.
	body := "\xef\xbb\xbf" + `<response>
<cmdtype>catalog</cmdtype><sn> 5 </sn><deviceid>34020000001110000001</deviceid>
<devicelist>
<item><deviceid>A</deviceid><name>a&b</name><status>ONLINE</status><Longitude>"116.5"</Longitude><Latitude> 39,9 </Latitude><PTZType>2</PTZType><Parental></Parental><Port/></item>
<item><DeviceID>B</DeviceID><Status>OFFLINE</Status><Longitude>999</Longitude><Info><PtzType>3</PtzType><BusinessGroupID>G</BusinessGroupID></Info></item>
<item><DeviceID>C</DeviceID><Status>OK</Status></item>
</devicelist>
</response>` + "\x00\x00garbage<<<"
	m, err := Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != KindResponse || m.CmdType != CmdCatalog || m.SN != 5 {
		t.Fatalf("%+v", m)
	}
	r := m.Body.(*CatalogResponse)
	if r.SumNum != 3 || r.DeviceList.Num != 3 {
		t.Fatalf("sum %d num %d", r.SumNum, r.DeviceList.Num)
	}
	a, b, c := r.DeviceList.Items[0], r.DeviceList.Items[1], r.DeviceList.Items[2]
	if a.Name != "a&b" || a.Status != StatusOn || a.Longitude != 116.5 || a.Latitude != 39.9 || a.Info == nil || a.Info.PTZType != 2 {
		t.Fatalf("a %+v %+v", a, a.Info)
	}
	if b.Status != StatusOff || b.Longitude != 0 || b.Info.PTZType != 3 || b.BusinessGroupID != "G" {
		t.Fatalf("b %+v %+v", b, b.Info)
	}
	if c.Status != StatusOn {
		t.Fatalf("c %+v", c)
	}
}

func TestParseEveryMessageType(t *testing.T) {
	cases := []struct {
		body  string
		check func(any) bool
	}{
		{`<Notify><CmdType>Keepalive</CmdType><SN>3</SN><DeviceID>D</DeviceID><Status>OK</Status></Notify>`,
			func(v any) bool { k, ok := v.(*Keepalive); return ok && k.Status == "OK" }},
		{`<Query><CmdType>Catalog</CmdType><SN>3</SN><DeviceID>D</DeviceID></Query>`,
			func(v any) bool { _, ok := v.(*CatalogQuery); return ok }},
		{`<Query><CmdType>DeviceInfo</CmdType><SN>3</SN><DeviceID>D</DeviceID></Query>`,
			func(v any) bool { _, ok := v.(*DeviceInfoQuery); return ok }},
		{`<Response><CmdType>DeviceInfo</CmdType><SN>3</SN><DeviceID>D</DeviceID><DeviceName>NVR</DeviceName><Result>OK</Result><Manufacturer>Dahua</Manufacturer><Channel>16</Channel></Response>`,
			func(v any) bool {
				r, ok := v.(*DeviceInfoResponse)
				return ok && r.Channel == 16 && r.Manufacturer == "Dahua" && r.Result == ResultOK
			}},
		{`<Query><CmdType>DeviceStatus</CmdType><SN>3</SN><DeviceID>D</DeviceID></Query>`,
			func(v any) bool { _, ok := v.(*DeviceStatusQuery); return ok }},
		{`<Response><CmdType>DeviceStatus</CmdType><SN>3</SN><DeviceID>D</DeviceID><Result>OK</Result><Online>ONLINE</Online><Status>OK</Status><Alarmstatus Num="1"><Item><DeviceID>X</DeviceID><DutyStatus>OFFDUTY</DutyStatus></Item></Alarmstatus></Response>`,
			func(v any) bool {
				r, ok := v.(*DeviceStatusResponse)
				return ok && r.Online == "ONLINE" && r.Alarms != nil && r.Alarms.Items[0].DutyStatus == "OFFDUTY"
			}},
		{`<Control><CmdType>DeviceControl</CmdType><SN>3</SN><DeviceID>D</DeviceID><PTZCmd>A50F0100000000B5</PTZCmd><Info><ControlPriority>5</ControlPriority></Info></Control>`,
			func(v any) bool {
				c, ok := v.(*DeviceControl)
				return ok && c.PTZCmd == "A50F0100000000B5" && c.Info.ControlPriority == 5
			}},
		{`<Control><CmdType>DeviceControl</CmdType><SN>3</SN><DeviceID>D</DeviceID><IFrameCmd>Send</IFrameCmd></Control>`,
			func(v any) bool { c, ok := v.(*DeviceControl); return ok && c.IFameCmd == IFameSend }},
		{`<Response><CmdType>DeviceControl</CmdType><SN>3</SN><DeviceID>D</DeviceID><Result>error</Result></Response>`,
			func(v any) bool { r, ok := v.(*Response); return ok && r.Result == ResultError }},
		{`<Query><CmdType>PresetQuery</CmdType><SN>3</SN><DeviceID>D</DeviceID></Query>`,
			func(v any) bool { _, ok := v.(*PresetQuery); return ok }},
		{`<Response><CmdType>PresetQuery</CmdType><SN>3</SN><DeviceID>D</DeviceID><PresetList Num="2"><Item><PresetID>1</PresetID><PresetName>大门</PresetName></Item><Item><PresetID>2</PresetID><PresetName>水位尺</PresetName></Item></PresetList></Response>`,
			func(v any) bool {
				r, ok := v.(*PresetQueryResponse)
				return ok && r.PresetList.Num == 2 && r.PresetList.Items[1].PresetName == "水位尺"
			}},
		{`<Notify><CmdType>Alarm</CmdType><SN>3</SN><DeviceID>D</DeviceID><AlarmPriority>1</AlarmPriority><AlarmMethod>5</AlarmMethod><AlarmTime>2026-01-01T00:00:00</AlarmTime><Info><AlarmType>2</AlarmType><AlarmTypeParam><EventType>1</EventType></AlarmTypeParam></Info></Notify>`,
			func(v any) bool { a, ok := v.(*Alarm); return ok && a.AlarmMethod == 5 && a.Info.EventType == 1 }},
		{`<Query><CmdType>RecordInfo</CmdType><SN>3</SN><DeviceID>D</DeviceID></Query>`,
			func(v any) bool { return v == nil }},
	}
	for _, c := range cases {
		m, err := Parse([]byte(c.body))
		if err != nil {
			t.Errorf("%s: %v", c.body, err)
			continue
		}
		if m.SN != 3 || m.DeviceID != "D" || !c.check(m.Body) {
			t.Errorf("%s: %+v body %+v", c.body, m, m.Body)
		}
	}
}

func TestParseRefusesBadBodies(t *testing.T) {
	deep := strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100)
	for name, body := range map[string]string{
		"empty":      "",
		"not xml":    "hello",
		"no cmdtype": `<Query><SN>1</SN></Query>`,
		"bad root":   `<Foo><CmdType>Catalog</CmdType></Foo>`,
		"truncated":  `<Response><CmdType>Catalog</CmdType><DeviceList><Item>`,
		"deep":       `<Query><CmdType>Catalog</CmdType>` + deep + `</Query>`,
	} {
		if _, err := Parse([]byte(body)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	big := bytes.Repeat([]byte(" "), MaxBodySize+1)
	if _, err := Parse(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("big: %v", err)
	}
}

func TestMarshalRoundTripsInGB2312(t *testing.T) {
	resp := &CatalogResponse{Header: Header{SN: 9, DeviceID: "34020000001180000001"}, SumNum: 2,
		DeviceList: DeviceList{Num: 2, Items: []Item{
			{DeviceID: "34020000001310000001", Name: "水库大坝", CivilCode: "340201", Status: StatusOn,
				Longitude: 117.1, Latitude: 31.2, ParentID: "34020000001180000001", Info: &Info{PTZType: 1}},
			{DeviceID: "34020000001310000002", Name: "隐患点", Status: StatusOff},
		}}}
	body, err := Marshal(resp, CharsetGB2312)
	if err != nil {
		t.Fatal(err)
	}
	if resp.CmdType != "" {
		t.Fatal("Marshal changed the caller's value")
	}
	if !bytes.HasPrefix(body, []byte(`<?xml version="1.0" encoding="GB2312"?>`)) {
		t.Fatalf("prolog: %s", body[:50])
	}
	if bytes.Contains(body, []byte("水库")) {
		t.Fatal("body is UTF-8, want GB2312 bytes")
	}
	if !bytes.Contains(body, gbk(t, "水库大坝")) {
		t.Fatal("GB2312 name missing")
	}
	m, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	got := m.Body.(*CatalogResponse)
	if m.CmdType != CmdCatalog || m.Charset != CharsetGB2312 || got.SumNum != 2 || len(got.DeviceList.Items) != 2 {
		t.Fatalf("%+v %+v", m, got)
	}
	a := got.DeviceList.Items[0]
	if a.Name != "水库大坝" || a.Longitude != 117.1 || a.Info.PTZType != 1 || a.Status != StatusOn || a.ParentID != "34020000001180000001" {
		t.Fatalf("%+v", a)
	}
}

func TestMarshalEveryTypeParsesBack(t *testing.T) {
	for _, v := range []any{
		&Keepalive{Header: Header{SN: 1, DeviceID: "D"}, Status: "OK"},
		&CatalogQuery{Header: Header{SN: 1, DeviceID: "D"}},
		&CatalogNotify{Header: Header{SN: 1, DeviceID: "D"}, SumNum: 1, DeviceList: DeviceList{Num: 1, Items: []Item{{DeviceID: "X", Event: EventDel}}}},
		&DeviceInfoQuery{Header: Header{SN: 1, DeviceID: "D"}},
		&DeviceInfoResponse{Header: Header{SN: 1, DeviceID: "D"}, Result: ResultOK},
		&DeviceStatusQuery{Header: Header{SN: 1, DeviceID: "D"}},
		&DeviceStatusResponse{Header: Header{SN: 1, DeviceID: "D"}, Result: ResultOK, Online: "ONLINE", Status: "OK"},
		&DeviceControl{Header: Header{SN: 1, DeviceID: "D"}, IFameCmd: IFameSend},
		&PresetQuery{Header: Header{SN: 1, DeviceID: "D"}},
		&PresetQueryResponse{Header: Header{SN: 1, DeviceID: "D"}},
		&Alarm{Header: Header{SN: 1, DeviceID: "D"}},
		&Response{Header: Header{CmdType: CmdDeviceControl, SN: 1, DeviceID: "D"}, Result: ResultOK},
	} {
		body, err := Marshal(v, "")
		if err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		m, err := Parse(body)
		if err != nil {
			t.Fatalf("%T: %v\n%s", v, err, body)
		}
		if got, want := typeName(m.Body), typeName(v); got != want || m.SN != 1 || m.DeviceID != "D" {
			t.Fatalf("%T parsed as %s: %s", v, got, body)
		}
	}
	if _, err := Marshal(&Response{}, ""); err == nil {
		t.Fatal("Response without CmdType accepted")
	}
	if _, err := Marshal(Keepalive{}, ""); err == nil {
		t.Fatal("non-pointer accepted")
	}
	if _, err := Marshal(&Keepalive{}, "latin1"); err == nil {
		t.Fatal("unknown charset accepted")
	}
}

func typeName(v any) string {
	return strings.TrimPrefix(strings.TrimPrefix(fmtT(v), "*manscdp."), "manscdp.")
}

func fmtT(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	}
	return typeString(v)
}
