package catalog

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestDecodePointDefaultsOnDemandToTrueWhenAbsent(t *testing.T) {
	p, err := DecodePoint(strings.NewReader(`{"name":"Gate","source":{"type":"publish"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !p.OnDemand {
		t.Error("OnDemand = false, want default true")
	}
}

func TestDecodePointKeepsExplicitOnDemandFalse(t *testing.T) {
	p, err := DecodePoint(strings.NewReader(`{"id":"cam","name":"Gate","source":{"type":"rtsp","url":"rtsp://h/x","transport":"udp"},"on_demand":false}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Point{ID: "cam", Name: "Gate", Category: DefaultCategory, Level: MinLevel, Main: Source{Type: "rtsp", URL: "rtsp://h/x", Transport: "udp"}}
	wantSamePoint(t, p, want)
}

func TestDecodePointRejectsUnknownAndReadOnlyFields(t *testing.T) {
	for _, body := range []string{
		`{"name":"x","colour":"red"}`,
		`{"name":"x","source":{"type":"rtsp","user":"admin"}}`,
		`{"name":"x","created_at":"2024-01-01T00:00:00Z"}`,
	} {
		_, err := DecodePoint(strings.NewReader(body))
		if _, ok := err.(*ValidationError); !ok {
			t.Errorf("DecodePoint(%s) err = %v, want *ValidationError", body, err)
		}
	}
}

func TestDecodePointRejectsMalformedJSON(t *testing.T) {
	for _, body := range []string{
		``,
		`{`,
		`{"name":}`,
		`[]`,
		`"x"`,
		`{"name":42}`,
		`{"on_demand":"yes"}`,
		`{"name":"a"} {"name":"b"}`,
		`{"name":"a"} trailing`,
	} {
		_, err := DecodePoint(strings.NewReader(body))
		if _, ok := err.(*ValidationError); !ok {
			t.Errorf("DecodePoint(%q) err = %v (%T), want *ValidationError", body, err, err)
		}
	}
}

func TestDecodePatchLeavesAbsentFieldsNil(t *testing.T) {
	p, err := DecodePatch(strings.NewReader(`{"name":"New"}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name == nil || *p.Name != "New" || p.Main != nil || p.OnDemand != nil {
		t.Errorf("DecodePatch = %+v", p)
	}
	p, err = DecodePatch(strings.NewReader(`{"on_demand":false,"source":{"type":"publish"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != nil || p.OnDemand == nil || *p.OnDemand || p.Main == nil || p.Main.Type != "publish" {
		t.Errorf("DecodePatch = %+v", p)
	}
	p, err = DecodePatch(strings.NewReader(`{}`))
	if err != nil || !reflect.DeepEqual(p, PointPatch{}) {
		t.Errorf("DecodePatch({}) = %+v, %v", p, err)
	}
}

func TestDecodePatchRejectsNullsUnknownFieldsAndBadTypes(t *testing.T) {
	tests := []struct{ body, field string }{
		{`{"name":null}`, "name"},
		{`{"source":null}`, "source"},
		{`{"id":"other"}`, "id"},
		{`{"created_at":"2024-01-01T00:00:00Z"}`, "created_at"},
		{`{"name":1}`, "name"},
		{`{"on_demand":"no"}`, "on_demand"},
		{`{"source":{"type":"rtsp","pass":"x"}}`, "source.pass"},
		{`{"main":{"type":"publish"},"source":{"type":"publish"}}`, "source"},
		{`{"status":{"state":"online"}}`, "status"},
		{`{"lat":null,"lon":114}`, "lat"},
		{`{"lon":null}`, "lon"},
		{`{"level":0}`, "level"},
		{`{"tags":"a;b"}`, "tags"},
		{`null`, "body"},
		{`[1]`, "body"},
		{`{"name":"a"}x`, "body"},
	}
	for _, tt := range tests {
		_, err := DecodePatch(strings.NewReader(tt.body))
		ve, ok := err.(*ValidationError)
		if !ok {
			t.Errorf("DecodePatch(%s) err = %v, want *ValidationError", tt.body, err)
			continue
		}
		if ve.Field != tt.field {
			t.Errorf("DecodePatch(%s) field = %q (%v), want %q", tt.body, ve.Field, ve, tt.field)
		}
	}
}

func TestDecodePointReadsEveryFieldAndAcceptsMainOrSourceButNotBoth(t *testing.T) {
	p, err := DecodePoint(strings.NewReader(`{"id":"44030700001310000007","name":"Mast","kind":"panoramic","category":"reservoir",
		"region":"440307001","lat":22.55,"lon":113.9,"address":"Dam road 1","level":3,"tags":["dam","north"],"ptz":true,
		"main":{"type":"rtsp","url":"rtsp://h/main"},"sub":{"type":"rtsp","url":"rtsp://h/sub","transport":"udp"},
		"agent":"edge-7","camera":"ch2","on_demand":false}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Point{ID: "44030700001310000007", Name: "Mast", Kind: KindPanoramic, Category: "reservoir", Region: "440307001",
		Lat: new(22.55), Lon: new(113.9), Address: "Dam road 1", Level: 3, Tags: []string{"dam", "north"}, PTZ: true,
		Main: Source{Type: SourceRTSP, URL: "rtsp://h/main"}, Sub: &Source{Type: SourceRTSP, URL: "rtsp://h/sub", Transport: "udp"},
		Agent: "edge-7", Camera: "ch2"}
	wantSamePoint(t, p, want)

	alias, err := DecodePoint(strings.NewReader(`{"name":"Old client","source":{"type":"publish"}}`))
	if err != nil || alias.Main.Type != SourcePublish {
		t.Fatalf("DecodePoint with source = %+v, %v", alias, err)
	}
	_, err = DecodePoint(strings.NewReader(`{"name":"x","main":{"type":"publish"},"source":{"type":"publish"}}`))
	wantValidationError(t, err, "source")
}

func TestDecodePointRejectsStatusAndExplicitLevelZero(t *testing.T) {
	_, err := DecodePoint(strings.NewReader(`{"name":"x","status":{"state":"online"}}`))
	wantValidationError(t, err, "status")
	_, err = DecodePoint(strings.NewReader(`{"name":"x","level":0}`))
	wantValidationError(t, err, "level")
}

func TestDecodePatchNullLocationAndSubClearThem(t *testing.T) {
	p, err := DecodePatch(strings.NewReader(`{"lat":null,"lon":null,"sub":null,"source":{"type":"publish"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !p.ClearLocation || !p.ClearSub || p.Lat != nil || p.Sub != nil || p.Main == nil || p.Main.Type != SourcePublish {
		t.Errorf("DecodePatch = %+v", p)
	}
}

func FuzzDecodePoint(f *testing.F) {
	for _, seed := range []string{
		`{"id":"cam","name":"Gate","source":{"type":"rtsp","url":"rtsp://admin:secret@10.0.0.5:554/s","transport":"tcp"},"on_demand":false}`,
		`{"name":"Edge","source":{"type":"publish"}}`,
		`{"name":"x","source":{"type":"rtsp","url":"rtsp://u:p@[::1]:0/"}}`,
		`{"name":"x","source":{"type":"rtsp","url":"rtsp:opaque"}}`,
		`{"name":"\u0000"}`,
		`{`, `null`, `[]`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodePoint(strings.NewReader(string(data)))
		if err != nil {
			if _, ok := err.(*ValidationError); !ok {
				t.Fatalf("error %v is %T, want *ValidationError", err, err)
			}
			return
		}
		p.normalize()
		_ = p.validate()
		r := p.Main.Redacted()
		if u, err := url.Parse(r.URL); err == nil && u.User != nil {
			if pass, ok := u.User.Password(); ok && pass != RedactedPassword {
				t.Fatalf("Redacted(%q) = %q still has a password", p.Main.URL, r.URL)
			}
		}
		_, _ = DecodePatch(strings.NewReader(string(data)))
	})
}
