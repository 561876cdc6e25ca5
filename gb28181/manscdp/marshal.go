package manscdp

import (
	"bytes"
	"encoding/xml"
	"fmt"
)

type headed interface{ header() *Header }

// withCmd copies a message and fills its CmdType when the caller left it
// empty, so callers cannot forget it and their value is never changed.
func withCmd[T any, P interface {
	*T
	headed
}](p P, cmd CmdType) any {
	if p == nil {
		return nil
	}
	c := *(*T)(p)
	if cp := P(&c); cp.header().CmdType == "" {
		cp.header().CmdType = cmd
	}
	return &c
}

func defaultCmd(v any) (any, error) {
	switch t := v.(type) {
	case *Keepalive:
		return withCmd(t, CmdKeepalive), nil
	case *CatalogQuery:
		return withCmd(t, CmdCatalog), nil
	case *CatalogResponse:
		return withCmd(t, CmdCatalog), nil
	case *CatalogNotify:
		return withCmd(t, CmdCatalog), nil
	case *DeviceInfoQuery:
		return withCmd(t, CmdDeviceInfo), nil
	case *DeviceInfoResponse:
		return withCmd(t, CmdDeviceInfo), nil
	case *DeviceStatusQuery:
		return withCmd(t, CmdDeviceStatus), nil
	case *DeviceStatusResponse:
		return withCmd(t, CmdDeviceStatus), nil
	case *DeviceControl:
		return withCmd(t, CmdDeviceControl), nil
	case *PresetQuery:
		return withCmd(t, CmdPresetQuery), nil
	case *PresetQueryResponse:
		return withCmd(t, CmdPresetQuery), nil
	case *Alarm:
		return withCmd(t, CmdAlarm), nil
	case *Response:
		if t != nil && t.CmdType == "" {
			return nil, fmt.Errorf("manscdp: Response needs a CmdType")
		}
		return t, nil
	}
	return nil, fmt.Errorf("manscdp: cannot marshal %T (pass a pointer to a message type)", v)
}

// Marshal writes a message (a pointer to one of this package's message
// types) as a MANSCDP body in charset: "" or "UTF-8", or "GB2312", "GBK",
// "GB18030" for devices that read only those. An empty CmdType is filled
// from the type.
func Marshal(v any, charset string) ([]byte, error) {
	msg, err := defaultCmd(v)
	if err != nil {
		return nil, err
	}
	if msg == nil {
		return nil, fmt.Errorf("manscdp: nil message")
	}
	enc, label, err := encoderFor(charset)
	if err != nil {
		return nil, err
	}
	body, err := xml.MarshalIndent(msg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("manscdp: %w", err)
	}
	var buf bytes.Buffer
	buf.Grow(len(body) + 64)
	buf.WriteString(`<?xml version="1.0" encoding="` + label + `"?>` + "\n")
	buf.Write(body)
	buf.WriteByte('\n')
	if enc == nil {
		return buf.Bytes(), nil
	}
	out, err := encodeLossy(enc, buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("manscdp: encode %s: %w", label, err)
	}
	return out, nil
}
