package catalog

// Category is one of the fixed point categories by which access is granted.
type Category struct {
	Code string `json:"code"`
	ZH   string `json:"zh"`
	EN   string `json:"en"`
}

// Categories lists the point categories (the district's 20, then Unclassified) in display order; codes are stable and the slice must not be modified.
var Categories = []Category{
	{"reservoir", "水库", "Reservoir"},
	{"river", "河道", "River channel"},
	{"waterlogging", "易涝点", "Waterlogging-prone point"},
	{"hazard", "隐患点", "Hidden-hazard point"},
	{"slope", "危险边坡", "Dangerous slope"},
	{"geohazard", "地质灾害点", "Geological-hazard point"},
	{"construction", "建筑工地", "Construction site"},
	{"major-project", "重大项目", "Major project"},
	{"road", "道路交通", "Road traffic"},
	{"bridge-tunnel", "桥梁隧道", "Bridge / tunnel"},
	{"transit", "交通枢纽", "Transit hub"},
	{"school", "学校", "School"},
	{"hospital", "医院", "Hospital"},
	{"crowd", "人员密集场所", "Crowded place"},
	{"chemical", "危化品企业", "Hazardous-chemicals site"},
	{"fuel", "加油加气站", "Fuel station"},
	{"forest-fire", "森林防火", "Forest-fire watch"},
	{"industrial-park", "工业园区", "Industrial park"},
	{"community", "社区", "Community / residential"},
	{"public-security", "治安防控", "Public-security watch"},
	{Unclassified, "未分类", "Unclassified"},
}

// Unclassified is the category of points that arrived without one (GB/T 28181 channels no mapping
// rule matched). Only administrators see them until someone classifies them: no grant covers it, not
// even one naming "*" for all categories, and a grant may not name it.
const Unclassified = "unclassified"

// Grantable reports whether a grant may name category code: any known category but Unclassified.
func Grantable(code string) bool {
	_, ok := lookupCategory(code)
	return ok && code != Unclassified
}

// DefaultCategory is the category DecodePoint gives a point whose JSON names none.
const DefaultCategory = "public-security"

// categoryIndex maps a category code to its position in Categories; the
// position is what the search index and compiled scopes store (as a bit in a
// uint32), so there can be at most 32 categories.
var categoryIndex = func() map[string]uint8 {
	if len(Categories) > 32 {
		panic("catalog: more than 32 categories do not fit the category bitmask")
	}
	m := make(map[string]uint8, len(Categories))
	for i, c := range Categories {
		m[c.Code] = uint8(i)
	}
	return m
}()

// numCategories is fixed at start so index tables never change shape.
var numCategories = len(Categories)

// lookupCategory returns the index of code and whether it is a known category.
func lookupCategory(code string) (uint8, bool) {
	i, ok := categoryIndex[code]
	return i, ok
}
