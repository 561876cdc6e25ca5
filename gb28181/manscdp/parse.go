package manscdp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// MaxBodySize bounds a MANSCDP body. A catalog page of a few hundred
// channels is well under it; anything larger is an attack or a broken
// device.
const MaxBodySize = 2 << 20

// Bounds on the parsed document: MANSCDP nests at most four levels
// (root/DeviceList/Item/Info/…), so a deep document is hostile.
const (
	maxDepth = 16
	maxNodes = 200_000
)

// Errors returned by Parse.
var (
	ErrTooLarge = errors.New("manscdp: body too large")
	ErrNoRoot   = errors.New("manscdp: no root element")
)

// node is one element of the tolerant document tree. Names are lower-case
// so lookups ignore the case differences between vendors.
type node struct {
	name  string
	attrs []xml.Attr
	text  []byte
	kids  []*node
}

func (n *node) child(name string) *node {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

func (n *node) children(name string) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, k := range n.kids {
		if k.name == name {
			out = append(out, k)
		}
	}
	return out
}

func (n *node) value() string {
	if n == nil {
		return ""
	}
	return strings.TrimSpace(string(n.text))
}

func (n *node) str(name string) string { return n.child(name).value() }

func (n *node) int(name string) int { return atoi(n.str(name)) }

func (n *node) attr(name string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.attrs {
		if strings.EqualFold(a.Name.Local, name) {
			return strings.TrimSpace(a.Value)
		}
	}
	return ""
}

// first returns the first non-empty value of name among nodes.
func first(name string, nodes ...*node) string {
	for _, n := range nodes {
		if v := n.str(name); v != "" {
			return v
		}
	}
	return ""
}

// atoi reads a vendor's number: blank, quoted, padded or decimal all give
// the integer they plainly mean, and nonsense gives 0.
func atoi(s string) int {
	s = strings.Trim(strings.TrimSpace(s), `"'`)
	if s == "" {
		return 0
	}
	if v, err := strconv.Atoi(s); err == nil {
		return v
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && math.Abs(f) < math.MaxInt32 {
		return int(f)
	}
	return 0
}

// atof reads a decimal, accepting a decimal comma; nonsense gives 0.
func atof(s string) float64 {
	s = strings.Trim(strings.TrimSpace(s), `"'`)
	if s == "" {
		return 0
	}
	if !strings.Contains(s, ".") && strings.Count(s, ",") == 1 {
		s = strings.Replace(s, ",", ".", 1)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// coord reads a longitude or latitude; out-of-range values mean unknown.
func coord(s string, limit float64) float64 {
	f := atof(s)
	if math.Abs(f) > limit {
		return 0
	}
	return f
}

// buildTree reads the first root element of b into a tree and ignores
// whatever follows it.
func buildTree(b []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = false
	d.Entity = xml.HTMLEntity
	// The body is already UTF-8 (see toUTF8); the prolog may still say
	// GB2312, which must not stop the decoder.
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	var stack []*node
	var root *node
	count := 0
	for {
		tok, err := d.RawToken()
		if err != nil {
			if root != nil && len(stack) == 0 {
				return root, nil
			}
			if err == io.EOF {
				if root == nil {
					return nil, ErrNoRoot
				}
				return nil, errors.New("manscdp: truncated document")
			}
			return nil, fmt.Errorf("manscdp: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root != nil && len(stack) == 0 {
				return root, nil // junk after the root element
			}
			count++
			if count > maxNodes {
				return nil, errors.New("manscdp: too many elements")
			}
			if len(stack) >= maxDepth {
				return nil, errors.New("manscdp: document too deep")
			}
			n := &node{name: strings.ToLower(t.Name.Local), attrs: t.Attr}
			if root == nil {
				root = n
			} else {
				parent := stack[len(stack)-1]
				parent.kids = append(parent.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			name := strings.ToLower(t.Name.Local)
			// Pop to the matching element; an end tag that matches
			// nothing open is a vendor typo and is ignored.
			for i := len(stack) - 1; i >= 0; i-- {
				if stack[i].name == name {
					stack = stack[:i]
					break
				}
			}
			if root != nil && len(stack) == 0 {
				return root, nil
			}
		case xml.CharData:
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				top.text = append(top.text, t...)
			}
		}
	}
}

var kinds = map[string]Kind{
	"query": KindQuery, "response": KindResponse, "notify": KindNotify, "control": KindControl,
}

var cmds = map[string]CmdType{}

func init() {
	for _, c := range []CmdType{CmdKeepalive, CmdCatalog, CmdDeviceInfo, CmdDeviceStatus,
		CmdDeviceControl, CmdPresetQuery, CmdAlarm} {
		cmds[strings.ToLower(string(c))] = c
	}
}

// Parse reads a MANSCDP body into a Message. It decodes GB2312/GBK/GB18030
// bodies (declared in the prolog or detected as invalid UTF-8), ignores case
// differences in element names and junk after the root element, and refuses
// bodies over MaxBodySize.
func Parse(body []byte) (Message, error) {
	if len(body) > MaxBodySize {
		return Message{}, ErrTooLarge
	}
	utf, cs, err := toUTF8(body)
	if err != nil {
		return Message{}, err
	}
	root, err := buildTree(utf)
	if err != nil {
		return Message{}, err
	}
	kind, ok := kinds[root.name]
	if !ok {
		return Message{}, fmt.Errorf("manscdp: unknown root element <%s>", root.name)
	}
	rawCmd := root.str("cmdtype")
	if rawCmd == "" {
		return Message{}, errors.New("manscdp: no CmdType")
	}
	cmd, known := cmds[strings.ToLower(rawCmd)]
	if !known {
		cmd = CmdType(rawCmd)
	}
	h := Header{CmdType: cmd, SN: root.int("sn"), DeviceID: root.str("deviceid")}
	m := Message{Kind: kind, CmdType: cmd, SN: h.SN, DeviceID: h.DeviceID, Charset: cs}
	m.Body = parseBody(kind, h, root)
	return m, nil
}

func parseBody(kind Kind, h Header, root *node) any {
	switch kind {
	case KindNotify:
		switch h.CmdType {
		case CmdKeepalive:
			k := &Keepalive{Header: h, Status: strings.ToUpper(root.str("status"))}
			if info := root.child("info"); info != nil {
				k.Info = &KeepaliveInfo{}
				for _, id := range info.children("deviceid") {
					k.Info.DeviceIDs = append(k.Info.DeviceIDs, id.value())
				}
			}
			return k
		case CmdCatalog:
			sum, list := parseDeviceList(root)
			return &CatalogNotify{Header: h, SumNum: sum, DeviceList: list}
		case CmdAlarm:
			return parseAlarm(h, root)
		}
	case KindQuery:
		switch h.CmdType {
		case CmdCatalog:
			return &CatalogQuery{Header: h, StartTime: root.str("starttime"), EndTime: root.str("endtime")}
		case CmdDeviceInfo:
			return &DeviceInfoQuery{Header: h}
		case CmdDeviceStatus:
			return &DeviceStatusQuery{Header: h}
		case CmdPresetQuery:
			return &PresetQuery{Header: h}
		}
	case KindControl:
		if h.CmdType == CmdDeviceControl {
			c := &DeviceControl{Header: h,
				PTZCmd: root.str("ptzcmd"), TeleBoot: root.str("teleboot"),
				IFameCmd: first("ifamecmd", root), RecordCmd: root.str("recordcmd"),
				GuardCmd: root.str("guardcmd"), AlarmCmd: root.str("alarmcmd")}
			// The standard misspells IFameCmd; a careful vendor may not.
			if c.IFameCmd == "" {
				c.IFameCmd = root.str("iframecmd")
			}
			if info := root.child("info"); info != nil {
				c.Info = &ControlInfo{ControlPriority: info.int("controlpriority")}
			}
			return c
		}
	case KindResponse:
		switch h.CmdType {
		case CmdCatalog:
			sum, list := parseDeviceList(root)
			return &CatalogResponse{Header: h, SumNum: sum, DeviceList: list}
		case CmdDeviceInfo:
			return &DeviceInfoResponse{Header: h, DeviceName: root.str("devicename"),
				Result: strings.ToUpper(root.str("result")), Manufacturer: root.str("manufacturer"),
				Model: root.str("model"), Firmware: root.str("firmware"), Channel: root.int("channel")}
		case CmdDeviceStatus:
			r := &DeviceStatusResponse{Header: h, Result: strings.ToUpper(root.str("result")),
				Online: strings.ToUpper(root.str("online")), Status: strings.ToUpper(root.str("status")),
				Reason: root.str("reason"), Encode: strings.ToUpper(root.str("encode")),
				Record: strings.ToUpper(root.str("record")), DeviceTime: root.str("devicetime")}
			if as := root.child("alarmstatus"); as != nil {
				r.Alarms = &AlarmStatus{Num: atoi(as.attr("Num"))}
				for _, it := range as.children("item") {
					r.Alarms.Items = append(r.Alarms.Items, AlarmStatusItem{
						DeviceID: it.str("deviceid"), DutyStatus: strings.ToUpper(it.str("dutystatus"))})
				}
			}
			return r
		case CmdPresetQuery:
			r := &PresetQueryResponse{Header: h}
			pl := root.child("presetlist")
			r.PresetList.Num = atoi(pl.attr("Num"))
			for _, it := range pl.children("item") {
				r.PresetList.Items = append(r.PresetList.Items, Preset{
					PresetID: it.int("presetid"), PresetName: it.str("presetname")})
			}
			if r.PresetList.Num == 0 {
				r.PresetList.Num = len(r.PresetList.Items)
			}
			return r
		}
		if root.child("result") != nil {
			return &Response{Header: h, Result: strings.ToUpper(root.str("result"))}
		}
	}
	return nil
}

func parseAlarm(h Header, root *node) *Alarm {
	a := &Alarm{Header: h, AlarmPriority: root.int("alarmpriority"), AlarmMethod: root.int("alarmmethod"),
		AlarmTime: root.str("alarmtime"), AlarmDescription: root.str("alarmdescription"),
		Longitude: coord(root.str("longitude"), 180), Latitude: coord(root.str("latitude"), 90)}
	if info := root.child("info"); info != nil {
		a.Info = &AlarmInfo{AlarmType: info.int("alarmtype"),
			EventType: info.child("alarmtypeparam").int("eventtype")}
	}
	return a
}

// parseDeviceList reads SumNum and the items. A 2011-era device may leave
// out SumNum or Num; the count of items stands in for them.
func parseDeviceList(root *node) (int, DeviceList) {
	dl := root.child("devicelist")
	var list DeviceList
	list.Num = atoi(dl.attr("Num"))
	for _, it := range dl.children("item") {
		list.Items = append(list.Items, parseItem(it))
	}
	if list.Num == 0 {
		list.Num = len(list.Items)
	}
	sum := root.int("sumnum")
	if sum == 0 {
		sum = list.Num
	}
	return sum, list
}

// NormalizeStatus maps the status words vendors use to StatusOn or
// StatusOff, or "" when the word means neither.
func NormalizeStatus(s string) string {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "ON", "ONLINE", "OK", "1", "TRUE":
		return StatusOn
	case "OFF", "OFFLINE", "0", "FALSE", "ERROR":
		return StatusOff
	}
	return ""
}

func parseItem(it *node) Item {
	info := it.child("info")
	v := Item{
		DeviceID:     it.str("deviceid"),
		Name:         it.str("name"),
		Manufacturer: it.str("manufacturer"),
		Model:        it.str("model"),
		Owner:        it.str("owner"),
		CivilCode:    it.str("civilcode"),
		Block:        it.str("block"),
		Address:      it.str("address"),
		Parental:     it.int("parental"),
		ParentID:     it.str("parentid"),
		// 2016 puts BusinessGroupID on the item, some vendors in Info.
		BusinessGroupID: first("businessgroupid", it, info),
		SafetyWay:       it.int("safetyway"),
		RegisterWay:     it.int("registerway"),
		CertNum:         it.str("certnum"),
		Certifiable:     it.int("certifiable"),
		ErrCode:         it.int("errcode"),
		EndTime:         it.str("endtime"),
		Secrecy:         it.int("secrecy"),
		IPAddress:       it.str("ipaddress"),
		Port:            it.int("port"),
		Password:        it.str("password"),
		Status:          NormalizeStatus(it.str("status")),
		Longitude:       coord(it.str("longitude"), 180),
		Latitude:        coord(it.str("latitude"), 90),
		Event:           strings.ToUpper(it.str("event")),
	}
	// Camera attributes belong in Info, but 2011-era and some 2022
	// devices put them directly under Item: read both.
	in := Info{
		PTZType:            atoi(first("ptztype", info, it)),
		PositionType:       atoi(first("positiontype", info, it)),
		RoomType:           atoi(first("roomtype", info, it)),
		UseType:            atoi(first("usetype", info, it)),
		SupplyLightType:    atoi(first("supplylighttype", info, it)),
		DirectionType:      atoi(first("directiontype", info, it)),
		Resolution:         first("resolution", info, it),
		BusinessGroupID:    info.str("businessgroupid"),
		DownloadSpeed:      first("downloadspeed", info, it),
		StreamNumberList:   first("streamnumberlist", info, it),
		HorizontalFieldAng: atof(first("horizontalfieldangle", info, it)),
		VerticalFieldAngle: atof(first("verticalfieldangle", info, it)),
		MaxViewDistance:    atof(first("maxviewdistance", info, it)),
		GrassrootsCode:     first("grassrootscode", info, it),
		PointType:          atoi(first("pointtype", info, it)),
		PointCommonName:    first("pointcommonname", info, it),
		MAC:                first("mac", info, it),
		FunctionType:       first("functiontype", info, it),
		EncodeType:         first("encodetype", info, it),
		InstallTime:        first("installtime", info, it),
		ManagementUnit:     first("managementunit", info, it),
		ContactInfo:        first("contactinfo", info, it),
		RecordSaveDays:     atoi(first("recordsavedays", info, it)),
		IndustrialClass:    first("industrialclassification", info, it),
	}
	if info != nil || in != (Info{}) {
		v.Info = &in
	}
	if v.Parental == 0 && strings.EqualFold(it.str("parental"), "true") {
		v.Parental = 1
	}
	return v
}
