package manscdp

import "encoding/xml"

// Kind is the root element of a MANSCDP body.
type Kind string

// Root elements defined by the standard.
const (
	KindQuery    Kind = "Query"
	KindResponse Kind = "Response"
	KindNotify   Kind = "Notify"
	KindControl  Kind = "Control"
)

// CmdType names the command a body carries.
type CmdType string

// Commands this package understands. Others parse with a nil Body.
const (
	CmdKeepalive     CmdType = "Keepalive"
	CmdCatalog       CmdType = "Catalog"
	CmdDeviceInfo    CmdType = "DeviceInfo"
	CmdDeviceStatus  CmdType = "DeviceStatus"
	CmdDeviceControl CmdType = "DeviceControl"
	CmdPresetQuery   CmdType = "PresetQuery"
	CmdAlarm         CmdType = "Alarm"
)

// Result values carried in Response bodies.
const (
	ResultOK    = "OK"
	ResultError = "ERROR"
)

// Catalog item status values, normalised by Parse.
const (
	StatusOn  = "ON"
	StatusOff = "OFF"
)

// Catalog NOTIFY events (GB/T 28181-2016 §A.2.4.4, 2022 adds none we lack).
const (
	EventAdd    = "ADD"
	EventDel    = "DEL"
	EventUpdate = "UPDATE"
	EventOn     = "ON"
	EventOff    = "OFF"
	EventVLost  = "VLOST"
	EventDefect = "DEFECT"
)

// Header is the part every MANSCDP body shares.
type Header struct {
	CmdType  CmdType `xml:"CmdType"`
	SN       int     `xml:"SN"`
	DeviceID string  `xml:"DeviceID"`
}

func (h *Header) header() *Header { return h }

// Message is a parsed MANSCDP body: its root, its header, and Body, one of the
// pointer types of this package chosen by (Kind, CmdType) — *Keepalive,
// *CatalogQuery, *CatalogResponse, *CatalogNotify, *DeviceInfoQuery,
// *DeviceInfoResponse, *DeviceStatusQuery, *DeviceStatusResponse,
// *DeviceControl, *PresetQuery, *PresetQueryResponse, *Alarm or *Response —
// or nil for a command this package does not know (the caller should still
// answer the SIP request 200 and ignore it).
type Message struct {
	Kind     Kind
	CmdType  CmdType
	SN       int
	DeviceID string
	// Charset is the encoding the body arrived in: "UTF-8", or "GB18030"
	// for bodies declared GB2312/GBK/GB18030 or not valid UTF-8 (GB18030
	// decodes all three). Answer such a device in GB2312.
	Charset string
	Body    any
}

// Keepalive is the device's periodic heartbeat (Notify).
type Keepalive struct {
	XMLName xml.Name `xml:"Notify"`
	Header
	Status string `xml:"Status"` // "OK" normally
	// Info lists faulty sub-devices when Status is not OK (2016 §A.2.5).
	Info *KeepaliveInfo `xml:"Info,omitempty"`
}

// KeepaliveInfo lists faulty devices in a keepalive.
type KeepaliveInfo struct {
	DeviceIDs []string `xml:"DeviceID"`
}

// CatalogQuery asks a device for its channel list (Query).
type CatalogQuery struct {
	XMLName xml.Name `xml:"Query"`
	Header
	StartTime string `xml:"StartTime,omitempty"`
	EndTime   string `xml:"EndTime,omitempty"`
}

// CatalogResponse is one page of a device's channel list (Response). A
// device may spread SumNum items over many responses with the same SN.
type CatalogResponse struct {
	XMLName xml.Name `xml:"Response"`
	Header
	SumNum     int        `xml:"SumNum"`
	DeviceList DeviceList `xml:"DeviceList"`
}

// CatalogNotify reports catalog changes (Notify); each item carries Event.
type CatalogNotify struct {
	XMLName xml.Name `xml:"Notify"`
	Header
	SumNum     int        `xml:"SumNum"`
	DeviceList DeviceList `xml:"DeviceList"`
}

// DeviceList is a counted list of catalog items.
type DeviceList struct {
	Num   int    `xml:"Num,attr"`
	Items []Item `xml:"Item"`
}

// Item is one catalog entry: a channel, an NVR, a civil-code node, a
// business group or a virtual organisation (told apart by the type digits
// 11–13 of DeviceID).
type Item struct {
	DeviceID     string `xml:"DeviceID"`
	Name         string `xml:"Name"`
	Manufacturer string `xml:"Manufacturer,omitempty"`
	Model        string `xml:"Model,omitempty"`
	Owner        string `xml:"Owner,omitempty"`
	CivilCode    string `xml:"CivilCode,omitempty"`
	Block        string `xml:"Block,omitempty"`
	Address      string `xml:"Address,omitempty"`
	Parental     int    `xml:"Parental"`
	ParentID     string `xml:"ParentID,omitempty"`
	// BusinessGroupID is set on virtual-organisation items (type 216).
	BusinessGroupID string `xml:"BusinessGroupID,omitempty"`
	SafetyWay       int    `xml:"SafetyWay"`
	RegisterWay     int    `xml:"RegisterWay"`
	CertNum         string `xml:"CertNum,omitempty"`
	Certifiable     int    `xml:"Certifiable"`
	ErrCode         int    `xml:"ErrCode"`
	EndTime         string `xml:"EndTime,omitempty"`
	Secrecy         int    `xml:"Secrecy"`
	IPAddress       string `xml:"IPAddress,omitempty"`
	Port            int    `xml:"Port,omitempty"`
	Password        string `xml:"Password,omitempty"`
	// Status is normalised to StatusOn or StatusOff ("" when absent).
	Status string `xml:"Status,omitempty"`
	// Longitude and Latitude are WGS-84 degrees; 0 means unknown.
	Longitude float64 `xml:"Longitude,omitempty"`
	Latitude  float64 `xml:"Latitude,omitempty"`
	Info      *Info   `xml:"Info,omitempty"`
	// Event is set in CatalogNotify items only.
	Event string `xml:"Event,omitempty"`
}

// PTZType values in Info (1 dome, 2 half-dome, 3 fixed box, 4 fixed remote).
const (
	PTZTypeDome      = 1
	PTZTypeHalfDome  = 2
	PTZTypeFixed     = 3
	PTZTypeFixedRemo = 4
)

// Info holds a catalog item's optional camera attributes. Parse also fills
// it from elements a vendor put directly under Item.
type Info struct {
	PTZType         int    `xml:"PTZType,omitempty"`
	PositionType    int    `xml:"PositionType,omitempty"`
	RoomType        int    `xml:"RoomType,omitempty"`
	UseType         int    `xml:"UseType,omitempty"`
	SupplyLightType int    `xml:"SupplyLightType,omitempty"`
	DirectionType   int    `xml:"DirectionType,omitempty"`
	Resolution      string `xml:"Resolution,omitempty"`
	BusinessGroupID string `xml:"BusinessGroupID,omitempty"`
	DownloadSpeed   string `xml:"DownloadSpeed,omitempty"`
	// 2022 additions.
	StreamNumberList   string  `xml:"StreamNumberList,omitempty"`
	HorizontalFieldAng float64 `xml:"HorizontalFieldAngle,omitempty"`
	VerticalFieldAngle float64 `xml:"VerticalFieldAngle,omitempty"`
	MaxViewDistance    float64 `xml:"MaxViewDistance,omitempty"`
	GrassrootsCode     string  `xml:"GrassrootsCode,omitempty"`
	PointType          int     `xml:"PointType,omitempty"`
	PointCommonName    string  `xml:"PointCommonName,omitempty"`
	MAC                string  `xml:"MAC,omitempty"`
	FunctionType       string  `xml:"FunctionType,omitempty"`
	EncodeType         string  `xml:"EncodeType,omitempty"`
	InstallTime        string  `xml:"InstallTime,omitempty"`
	ManagementUnit     string  `xml:"ManagementUnit,omitempty"`
	ContactInfo        string  `xml:"ContactInfo,omitempty"`
	RecordSaveDays     int     `xml:"RecordSaveDays,omitempty"`
	IndustrialClass    string  `xml:"IndustrialClassification,omitempty"`
}

// DeviceInfoQuery asks a device for its identity (Query).
type DeviceInfoQuery struct {
	XMLName xml.Name `xml:"Query"`
	Header
}

// DeviceInfoResponse describes a device (Response).
type DeviceInfoResponse struct {
	XMLName xml.Name `xml:"Response"`
	Header
	DeviceName   string `xml:"DeviceName,omitempty"`
	Result       string `xml:"Result"`
	Manufacturer string `xml:"Manufacturer,omitempty"`
	Model        string `xml:"Model,omitempty"`
	Firmware     string `xml:"Firmware,omitempty"`
	Channel      int    `xml:"Channel"`
}

// DeviceStatusQuery asks a device for its running state (Query).
type DeviceStatusQuery struct {
	XMLName xml.Name `xml:"Query"`
	Header
}

// DeviceStatusResponse reports a device's running state (Response).
type DeviceStatusResponse struct {
	XMLName xml.Name `xml:"Response"`
	Header
	Result string `xml:"Result"`
	// Online is "ONLINE" or "OFFLINE"; Status is "OK" or "ERROR".
	Online     string       `xml:"Online"`
	Status     string       `xml:"Status"`
	Reason     string       `xml:"Reason,omitempty"`
	Encode     string       `xml:"Encode,omitempty"`
	Record     string       `xml:"Record,omitempty"`
	DeviceTime string       `xml:"DeviceTime,omitempty"`
	Alarms     *AlarmStatus `xml:"Alarmstatus,omitempty"`
}

// AlarmStatus lists alarm inputs in a DeviceStatusResponse.
type AlarmStatus struct {
	Num   int               `xml:"Num,attr"`
	Items []AlarmStatusItem `xml:"Item"`
}

// AlarmStatusItem is one alarm input's duty state (ONDUTY, OFFDUTY, ALARM).
type AlarmStatusItem struct {
	DeviceID   string `xml:"DeviceID"`
	DutyStatus string `xml:"DutyStatus"`
}

// IFameCmd's only value: send a keyframe now (the standard's spelling).
const IFameSend = "Send"

// TeleBoot's only value: reboot.
const TeleBootBoot = "Boot"

// DeviceControl commands a device or channel (Control). Exactly one command
// field is normally set.
type DeviceControl struct {
	XMLName xml.Name `xml:"Control"`
	Header
	// PTZCmd is the 8-byte hex command of EncodePTZ.
	PTZCmd    string       `xml:"PTZCmd,omitempty"`
	TeleBoot  string       `xml:"TeleBoot,omitempty"`
	IFameCmd  string       `xml:"IFameCmd,omitempty"`
	RecordCmd string       `xml:"RecordCmd,omitempty"` // Record / StopRecord
	GuardCmd  string       `xml:"GuardCmd,omitempty"`  // SetGuard / ResetGuard
	AlarmCmd  string       `xml:"AlarmCmd,omitempty"`  // ResetAlarm
	Info      *ControlInfo `xml:"Info,omitempty"`
}

// ControlInfo carries the control priority (2016 §A.2.3.1: 1–5, 5 highest).
type ControlInfo struct {
	ControlPriority int `xml:"ControlPriority,omitempty"`
}

// PresetQuery asks a channel for its presets (Query).
type PresetQuery struct {
	XMLName xml.Name `xml:"Query"`
	Header
}

// PresetQueryResponse lists a channel's presets (Response).
type PresetQueryResponse struct {
	XMLName xml.Name `xml:"Response"`
	Header
	PresetList PresetList `xml:"PresetList"`
}

// PresetList is a counted list of presets.
type PresetList struct {
	Num   int      `xml:"Num,attr"`
	Items []Preset `xml:"Item"`
}

// Preset is one stored PTZ position.
type Preset struct {
	PresetID   int    `xml:"PresetID"`
	PresetName string `xml:"PresetName"`
}

// Alarm is an alarm notification (Notify).
type Alarm struct {
	XMLName xml.Name `xml:"Notify"`
	Header
	AlarmPriority    int        `xml:"AlarmPriority"`
	AlarmMethod      int        `xml:"AlarmMethod"`
	AlarmTime        string     `xml:"AlarmTime"`
	AlarmDescription string     `xml:"AlarmDescription,omitempty"`
	Longitude        float64    `xml:"Longitude,omitempty"`
	Latitude         float64    `xml:"Latitude,omitempty"`
	Info             *AlarmInfo `xml:"Info,omitempty"`
}

// AlarmInfo details an alarm's type.
type AlarmInfo struct {
	AlarmType int `xml:"AlarmType,omitempty"`
	EventType int `xml:"AlarmTypeParam>EventType,omitempty"`
}

// Response is the plain answer to a control or notification: its Result
// is ResultOK or ResultError (DeviceControl, Alarm, and any other command
// answered with a bare Result).
type Response struct {
	XMLName xml.Name `xml:"Response"`
	Header
	Result string `xml:"Result"`
}
