package manscdp

import (
	"fmt"
	"testing"
)

func typeString(v any) string { return fmt.Sprintf("%T", v) }

func FuzzParse(f *testing.F) {
	f.Add([]byte(hikCatalog))
	f.Add(gbk(f, hikCatalog))
	f.Add([]byte(`<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>D</DeviceID><Status>OK</Status></Notify>`))
	f.Add([]byte(`<Control><CmdType>DeviceControl</CmdType><PTZCmd>A50F0100000000B5</PTZCmd></Control>trailing`))
	f.Add([]byte(`<?xml version="1.0" encoding="GBK"?><Response><CmdType>PresetQuery</CmdType><PresetList Num="x"><Item/></PresetList></Response>`))
	f.Add([]byte(`<Response><CmdType>DeviceStatus</CmdType><Alarmstatus><Item></Item></Alarmstatus>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		if m.Kind == "" || m.CmdType == "" {
			t.Fatalf("accepted without kind/cmd: %+v", m)
		}
		// Whatever parses must marshal (when it has a body) and parse again
		// to the same command.
		if m.Body == nil {
			return
		}
		out, err := Marshal(m.Body, m.Charset)
		if err != nil {
			t.Fatalf("marshal %T: %v", m.Body, err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("reparse: %v\n%s", err, out)
		}
		if again.CmdType != m.CmdType || again.Kind != m.Kind || typeString(again.Body) != typeString(m.Body) {
			t.Fatalf("reparse changed %s/%s %T into %s/%s %T", m.Kind, m.CmdType, m.Body, again.Kind, again.CmdType, again.Body)
		}
	})
}
