package catalog

import (
	"net/url"
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
	want := Point{ID: "cam", Name: "Gate", Source: Source{Type: "rtsp", URL: "rtsp://h/x", Transport: "udp"}}
	if p != want {
		t.Errorf("DecodePoint = %+v, want %+v", p, want)
	}
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
	if p.Name == nil || *p.Name != "New" || p.Source != nil || p.OnDemand != nil {
		t.Errorf("DecodePatch = %+v", p)
	}
	p, err = DecodePatch(strings.NewReader(`{"on_demand":false,"source":{"type":"publish"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != nil || p.OnDemand == nil || *p.OnDemand || p.Source == nil || p.Source.Type != "publish" {
		t.Errorf("DecodePatch = %+v", p)
	}
	p, err = DecodePatch(strings.NewReader(`{}`))
	if err != nil || p != (PointPatch{}) {
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
		r := p.Source.Redacted()
		if u, err := url.Parse(r.URL); err == nil && u.User != nil {
			if pass, ok := u.User.Password(); ok && pass != RedactedPassword {
				t.Fatalf("Redacted(%q) = %q still has a password", p.Source.URL, r.URL)
			}
		}
		_, _ = DecodePatch(strings.NewReader(string(data)))
	})
}
