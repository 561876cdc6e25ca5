package gbsim

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/tianyan/vms/gb28181/manscdp"
)

// Quirks are ways real firmware writes MANSCDP that the standard does not
// foresee; each can be switched on to test a platform's tolerance.
type Quirks struct {
	// FlatInfo puts PTZType and the other Info fields directly under Item
	// (2011-era firmware) instead of in an Info element.
	FlatInfo bool
	// StatusWords writes ONLINE/OFFLINE for a channel's Status.
	StatusWords bool
	// LowerCaseTags writes every element name in lower case.
	LowerCaseTags bool
	// TrailingJunk appends NUL bytes and a stray line after the root
	// element, as some embedded stacks do.
	TrailingJunk bool
	// V2022 adds the GB/T 28181-2022 Info fields to catalog items.
	V2022 bool
}

// ParseQuirks reads a comma-separated list: flatinfo, statuswords,
// lowercase, junk, 2022.
func ParseQuirks(s string) (Quirks, error) {
	var q Quirks
	for _, w := range strings.Split(s, ",") {
		switch strings.TrimSpace(strings.ToLower(w)) {
		case "":
		case "flatinfo":
			q.FlatInfo = true
		case "statuswords":
			q.StatusWords = true
		case "lowercase":
			q.LowerCaseTags = true
		case "junk":
			q.TrailingJunk = true
		case "2022":
			q.V2022 = true
		default:
			return q, fmt.Errorf("gbsim: unknown quirk %q", w)
		}
	}
	return q, nil
}

var (
	infoTags  = regexp.MustCompile(`\s*</?Info>`)
	statusOn  = regexp.MustCompile(`<Status>ON</Status>`)
	statusOff = regexp.MustCompile(`<Status>OFF</Status>`)
	tagNames  = regexp.MustCompile(`<(/?)([A-Za-z][A-Za-z0-9]*)`)
)

// encode writes a MANSCDP body the way this device's firmware would: the
// standard form, bent by its quirks, in its charset.
func (d *Device) encode(v any) ([]byte, error) {
	q := d.cfg.Quirks
	if q == (Quirks{}) || (q == Quirks{V2022: true}) {
		return manscdp.Marshal(v, d.charset())
	}
	body, err := manscdp.Marshal(v, manscdp.CharsetUTF8)
	if err != nil {
		return nil, err
	}
	if q.FlatInfo {
		body = infoTags.ReplaceAll(body, nil)
	}
	if q.StatusWords {
		body = statusOn.ReplaceAll(body, []byte("<Status>ONLINE</Status>"))
		body = statusOff.ReplaceAll(body, []byte("<Status>OFFLINE</Status>"))
	}
	if q.LowerCaseTags {
		body = tagNames.ReplaceAllFunc(body, bytes.ToLower)
	}
	if q.TrailingJunk {
		body = append(body, "\x00\x00\r\n--end--\r\n"...)
	}
	if d.cfg.GBK {
		body = bytes.Replace(body, []byte(`encoding="UTF-8"`), []byte(`encoding="GB2312"`), 1)
		return simplifiedchinese.GBK.NewEncoder().Bytes(body)
	}
	return body, nil
}

// with2022 fills the 2022 Info fields of a channel's item.
func with2022(it *manscdp.Item, c *Channel) {
	if it.Info == nil {
		it.Info = &manscdp.Info{}
	}
	it.Info.StreamNumberList = "0/1"
	it.Info.PointType = 1
	it.Info.HorizontalFieldAng = 90
	it.Info.VerticalFieldAngle = 50
	it.Info.MaxViewDistance = 120
	it.Info.MAC = "44:19:b6:00:" + c.ID[16:18] + ":" + c.ID[18:20]
	it.Info.EncodeType = "H.264"
	it.Info.InstallTime = "2022-06-01T00:00:00"
	it.Info.ManagementUnit = "区大数据局"
	it.Info.RecordSaveDays = 30
}
