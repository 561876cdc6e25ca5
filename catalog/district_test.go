package catalog

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The synthetic district of the benchmarks: 1 district, 11 streets, 10
// communities per street, points spread over communities and categories
// with levels 1..4 and coordinates in lon 113.75–114.05, lat 22.45–22.65.
const (
	districtCode     = "440307"
	streetsPerDist   = 11
	communitiesPerSt = 10
)

func streetCode(s int) string       { return fmt.Sprintf("%s%03d", districtCode, s+1) }
func communityCode(s, k int) string { return fmt.Sprintf("%s%03d", streetCode(s), k+1) }

var placeWords = []string{"前海", "南山", "西丽", "桃源", "蛇口", "招商", "粤海", "沙河", "南头", "大冲", "科技园", "华侨城"}

func syntheticRegions() []Region {
	regions := []Region{{Code: districtCode, Name: "南山区"}}
	for s := range streetsPerDist {
		regions = append(regions, Region{Code: streetCode(s), Name: placeWords[s] + "街道", Parent: districtCode})
		for k := range communitiesPerSt {
			regions = append(regions, Region{Code: communityCode(s, k), Name: fmt.Sprintf("%s第%d社区", placeWords[s], k+1), Parent: streetCode(s)})
		}
	}
	return regions
}

// syntheticPoints returns n valid points with GB IDs; about 1 in 21 is panoramic.
func syntheticPoints(rng *rand.Rand, n int) []Point {
	points := make([]Point, n)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range points {
		s, k := rng.IntN(streetsPerDist), rng.IntN(communitiesPerSt)
		cat := Categories[rng.IntN(len(Categories))]
		kind, typ := KindHD, gbTypeHD
		if rng.IntN(21) == 0 {
			kind, typ = KindPanoramic, gbTypePanoramic
		}
		lat, lon := 22.45+rng.Float64()*0.2, 113.75+rng.Float64()*0.3
		p := Point{
			ID:       fmt.Sprintf("44030700%s%s0%06d", gbIndustry, typ, i+1),
			Name:     fmt.Sprintf("%s%s%d号", placeWords[s], cat.ZH, i%997),
			Kind:     kind,
			Category: cat.Code,
			Region:   communityCode(s, k),
			Lat:      &lat, Lon: &lon,
			Address:  fmt.Sprintf("%s路%d号", placeWords[(s+k)%len(placeWords)], rng.IntN(300)+1),
			Level:    1 + rng.IntN(MaxLevel),
			Tags:     []string{cat.EN},
			PTZ:      kind == KindPanoramic,
			Main:     Source{Type: SourceRTSP, URL: fmt.Sprintf("rtsp://admin:pw%d@10.%d.%d.%d:554/Streaming/Channels/101", i, s, k, i%250+1), Transport: TransportTCP},
			OnDemand: true,
			Status:   Status{State: states[rng.IntN(len(states))], Since: base},
		}
		p.CreatedAt = base
		p.UpdatedAt = base.Add(time.Duration(rng.IntN(1_000_000)) * time.Second)
		p.normalize()
		points[i] = p
	}
	return points
}

// memCatalog returns a Catalog whose index holds points and regions, without
// a database: Search, Facets, InScope and ExportPoints read only the index.
func memCatalog(points []Point, regions []Region) *Catalog {
	return &Catalog{now: time.Now, idx: newIndex(points, regions)}
}

// regionsCSV renders regions as ImportRegionsCSV input.
func regionsCSV(regions []Region) string {
	var b strings.Builder
	b.WriteString("code,name,parent\n")
	for _, r := range regions {
		fmt.Fprintf(&b, "%s,%s,%s\n", r.Code, r.Name, r.Parent)
	}
	return b.String()
}

// pointsCSV renders points as ImportPoints CSV input with the 13 required columns.
func pointsCSV(t testing.TB, points []Point) []byte {
	t.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(PointColumns)
	for _, p := range points {
		sub := ""
		if p.Sub != nil {
			sub = p.Sub.URL
		}
		_ = w.Write([]string{p.ID, p.Name, p.Kind, p.Category, p.Region, formatCoord(p.Lat), formatCoord(p.Lon),
			strconv.Itoa(p.Level), p.Address, strings.Join(p.Tags, ";"), strconv.FormatBool(p.PTZ), p.Main.URL, sub})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
