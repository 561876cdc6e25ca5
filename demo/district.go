package demo

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"strconv"
)

// The demo district: code 440307 with 11 streets of 10 communities each,
// inside a bounding box of about 14 × 13 km.
const (
	DistrictCode = "440307"
	Streets      = 11
	Communities  = 10
	minLat       = 22.47
	maxLat       = 22.60
	minLon       = 113.88
	maxLon       = 114.02
	// HDPoints and PanoramicPoints are the district's figures.
	HDPoints        = 13000
	PanoramicPoints = 635
)

var streetNames = []string{"南头", "南山", "沙河", "蛇口", "招商", "粤海", "桃源", "西丽", "前海", "大冲", "科苑"}

// StreetCode is the code of street s (0-based).
func StreetCode(s int) string { return fmt.Sprintf("%s%03d", DistrictCode, s+1) }

// CommunityCode is the code of community k of street s (0-based).
func CommunityCode(s, k int) string { return fmt.Sprintf("%s%03d", StreetCode(s), k+1) }

// RegionsCSV is the district's region tree in the import format.
func RegionsCSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"code", "name", "parent"})
	_ = w.Write([]string{DistrictCode, "天眼示范区", ""})
	for s := range Streets {
		_ = w.Write([]string{StreetCode(s), streetNames[s] + "街道", DistrictCode})
		for k := range Communities {
			_ = w.Write([]string{CommunityCode(s, k), fmt.Sprintf("%s第%d社区", streetNames[s], k+1), StreetCode(s)})
		}
	}
	w.Flush()
	return b.Bytes()
}

// categories are the 20 codes with a Chinese word for point names.
var categories = []struct{ code, zh string }{
	{"reservoir", "水库"}, {"river", "河道"}, {"waterlogging", "易涝点"}, {"hazard", "隐患点"},
	{"slope", "边坡"}, {"geohazard", "地灾点"}, {"construction", "工地"}, {"major-project", "重大项目"},
	{"road", "路口"}, {"bridge-tunnel", "桥隧"}, {"transit", "枢纽"}, {"school", "学校"},
	{"hospital", "医院"}, {"crowd", "广场"}, {"chemical", "危化企业"}, {"fuel", "加油站"},
	{"forest-fire", "林区"}, {"industrial-park", "园区"}, {"community", "小区"}, {"public-security", "治安"},
}

// pointID is a GB/T 28181 ID: centre 44030700, industry 00, type 131
// (panoramic) or 132 (HD), network 0, serial.
func pointID(panoramic bool, serial int) string {
	typ := "132"
	if panoramic {
		typ = "131"
	}
	return fmt.Sprintf("4403070000%s0%06d", typ, serial)
}

// CatalogCSV is the district's 13,000 HD and 635 panoramic points minus
// the ones with a live simulated camera (skip), in the import format. The
// points have no reachable camera: their source is a publish slot no one
// feeds, and they are tagged 无实况 (no live feed) so nobody mistakes them
// for working cameras. Deterministic for a seed.
func CatalogCSV(seed uint64, skip map[string]bool) (csvData []byte, ids []string) {
	rng := rand.New(rand.NewPCG(seed, 28181))
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"id", "name", "kind", "category", "region", "lat", "lon", "level", "address", "tags", "ptz", "main_url", "sub_url"})
	for i := range HDPoints + PanoramicPoints {
		panoramic := i >= HDPoints
		serial := i + 1
		if panoramic {
			serial = i - HDPoints + 1
		}
		id := pointID(panoramic, serial)
		if skip[id] {
			continue
		}
		s, k := rng.IntN(Streets), rng.IntN(Communities)
		cat := categories[rng.IntN(len(categories))]
		// Streets lie in bands west to east; communities scatter inside.
		lon := minLon + (maxLon-minLon)*(float64(s)+rng.Float64())/Streets
		lat := minLat + (maxLat-minLat)*rng.Float64()
		kind, ptz := "hd", "false"
		name := fmt.Sprintf("%s%s%d号", streetNames[s], cat.zh, serial%997+1)
		if panoramic {
			kind, ptz = "panoramic", "true"
			name = fmt.Sprintf("%s高点%d号", streetNames[s], serial)
		}
		level := 1 + rng.IntN(3)
		if rng.IntN(25) == 0 {
			level = 4
		}
		_ = w.Write([]string{id, name, kind, cat.code, CommunityCode(s, k),
			strconv.FormatFloat(lat, 'f', 6, 64), strconv.FormatFloat(lon, 'f', 6, 64), strconv.Itoa(level),
			fmt.Sprintf("%s街道%d号", streetNames[(s+k)%Streets], rng.IntN(300)+1), "无实况;demo", ptz, "", ""})
		ids = append(ids, id)
	}
	w.Flush()
	return b.Bytes(), ids
}
