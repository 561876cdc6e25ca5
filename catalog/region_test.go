package catalog

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func mustCreateRegion(t testing.TB, c *Catalog, r Region) Region {
	t.Helper()
	got, err := c.CreateRegion(r)
	if err != nil {
		t.Fatalf("CreateRegion(%q): %v", r.Code, err)
	}
	return got
}

// smallTree is a district with two streets and three communities.
func smallTree(t testing.TB, c *Catalog) {
	t.Helper()
	for _, r := range []Region{
		{"440307", "District", ""},
		{"440307001", "Street A", "440307"},
		{"440307002", "Street B", "440307"},
		{"440307001001", "Community A1", "440307001"},
		{"440307001002", "Community A2", "440307001"},
		{"440307002001", "Community B1", "440307002"},
	} {
		mustCreateRegion(t, c, r)
	}
}

func TestRegionPathListsTheRegionThenItsAncestors(t *testing.T) {
	c := newCatalog(t)
	smallTree(t, c)
	if got, want := c.RegionPath("440307001002"), []string{"440307001002", "440307001", "440307"}; !reflect.DeepEqual(got, want) {
		t.Errorf("RegionPath = %v, want %v", got, want)
	}
	if got := c.RegionPath("440307"); !reflect.DeepEqual(got, []string{"440307"}) {
		t.Errorf("RegionPath(root) = %v", got)
	}
	if got := c.RegionPath("999999"); got != nil {
		t.Errorf("RegionPath(unknown) = %v, want nil", got)
	}
	if got := c.RegionPath(""); got != nil {
		t.Errorf("RegionPath(\"\") = %v, want nil", got)
	}
}

func TestCreateRegionValidatesCodeNameAndParent(t *testing.T) {
	c := newCatalog(t)
	mustCreateRegion(t, c, Region{"440307", "District", ""})
	tests := []struct {
		name  string
		r     Region
		field string
	}{
		{"code of 7 digits", Region{"4403071", "x", ""}, "code"},
		{"code with letters", Region{"44030A", "x", ""}, "code"},
		{"empty name", Region{"440308", " ", ""}, "name"},
		{"name of 65 runes", Region{"440308", strings.Repeat("街", 65), ""}, "name"},
		{"unknown parent", Region{"440308001", "x", "440308"}, "parent"},
		{"malformed parent", Region{"440308001", "x", "44"}, "parent"},
		{"itself as parent", Region{"440308", "x", "440308"}, "parent"},
	}
	for _, tt := range tests {
		_, err := c.CreateRegion(tt.r)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("%s: err = %v, want ValidationError on %s", tt.name, err, tt.field)
		}
	}
	if _, err := c.CreateRegion(Region{"440307", "Again", ""}); !errors.Is(err, ErrRegionExists) {
		t.Errorf("duplicate: err = %v, want ErrRegionExists", err)
	}
	if got := c.ListRegions(); len(got) != 1 {
		t.Errorf("rejected regions were stored: %v", got)
	}
}

func TestUpdateRegionRenamesAndMovesButRefusesCycles(t *testing.T) {
	c := newCatalog(t)
	smallTree(t, c)
	got, err := c.UpdateRegion("440307001002", "Renamed", "440307002")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Renamed" || !reflect.DeepEqual(c.RegionPath("440307001002"), []string{"440307001002", "440307002", "440307"}) {
		t.Errorf("after move: %+v, path %v", got, c.RegionPath("440307001002"))
	}
	_, err = c.UpdateRegion("440307", "District", "440307001001")
	wantValidationError(t, err, "parent")
	_, err = c.UpdateRegion("440307001", "Street A", "440307001")
	wantValidationError(t, err, "parent")
	_, err = c.UpdateRegion("440307001", "Street A", "440399")
	wantValidationError(t, err, "parent")
	if _, err := c.UpdateRegion("440399", "x", ""); !errors.Is(err, ErrRegionNotFound) {
		t.Errorf("unknown: err = %v, want ErrRegionNotFound", err)
	}
	if _, err := c.UpdateRegion("440307001", "Street A", ""); err != nil {
		t.Errorf("making a street a root: %v", err)
	}
}

func TestDeleteRegionRefusesWhilePointsOrChildrenUseIt(t *testing.T) {
	c := newCatalog(t)
	smallTree(t, c)
	p := rtspPoint("cam", "Cam")
	p.Region = "440307002001"
	mustCreate(t, c, p)
	for _, code := range []string{"440307002001", "440307002", "440307"} {
		if err := c.DeleteRegion(code); !errors.Is(err, ErrRegionInUse) {
			t.Errorf("DeleteRegion(%s) err = %v, want ErrRegionInUse", code, err)
		}
	}
	if err := c.DeleteRegion("440307001001"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetRegion("440307001001"); !errors.Is(err, ErrRegionNotFound) {
		t.Errorf("GetRegion after delete err = %v", err)
	}
	if err := c.DeleteRegion("440307001001"); !errors.Is(err, ErrRegionNotFound) {
		t.Errorf("second delete err = %v", err)
	}
	// The remaining point's region still resolves after the table was rebuilt.
	res, err := c.Search(Query{Region: "440307002"}, Scope{All: true})
	if err != nil || res.Total != 1 {
		t.Errorf("search after region delete: %+v, %v", res, err)
	}
}

func TestImportRegionsCSVAcceptsParentsDefinedLater(t *testing.T) {
	c := newCatalog(t)
	csv := "code,name,parent\n" +
		"440307001001,Community,440307001\n" +
		"440307001,Street,440307\n" +
		"440307,District,\n"
	n, rowErrs, err := c.ImportRegionsCSV(strings.NewReader(csv), false)
	if err != nil || n != 3 || rowErrs != nil {
		t.Fatalf("ImportRegionsCSV = %d, %v, %v", n, rowErrs, err)
	}
	if got := c.RegionPath("440307001001"); len(got) != 3 {
		t.Errorf("RegionPath = %v", got)
	}
}

func TestImportRegionsCSVIsAllOrNothing(t *testing.T) {
	c := newCatalog(t)
	mustCreateRegion(t, c, Region{"440307", "District", ""})
	csv := "code,name,parent\n" +
		"440307001,Street,440307\n" + // line 2: fine
		"440307,Again,\n" + // line 3: exists
		"440307009,Orphan,440307888\n" + // line 4: unknown parent
		"440307010,Loop A,440307011\n" + // line 5: cycle
		"440307011,Loop B,440307010\n" + // line 6: cycle
		"440307001,Twice,440307\n" + // line 7: repeated
		"12,Bad,\n" + // line 8: bad code
		"440307012,too,many,fields\n" // line 9
	n, rowErrs, err := c.ImportRegionsCSV(strings.NewReader(csv), false)
	if !errors.Is(err, ErrRowsRejected) || n != 0 {
		t.Fatalf("ImportRegionsCSV = %d, %v, want ErrRowsRejected", n, err)
	}
	var lines []int
	for _, re := range rowErrs {
		lines = append(lines, re.Line)
	}
	if want := []int{3, 4, 5, 6, 7, 8, 9}; !reflect.DeepEqual(lines, want) {
		t.Errorf("error lines = %v (%v), want %v", lines, rowErrs, want)
	}
	if got := c.ListRegions(); len(got) != 1 {
		t.Errorf("regions written despite errors: %v", got)
	}
}

func TestImportRegionsCSVDryRunWritesNothing(t *testing.T) {
	c := newCatalog(t)
	n, _, err := c.ImportRegionsCSV(strings.NewReader("code,name,parent\n440307,District,\n"), true)
	if err != nil || n != 1 {
		t.Fatalf("dry run = %d, %v", n, err)
	}
	if got := c.ListRegions(); len(got) != 0 {
		t.Errorf("dry run wrote %v", got)
	}
}

func TestImportRegionsCSVRejectsAWrongHeader(t *testing.T) {
	c := newCatalog(t)
	for _, body := range []string{"", "code,name\n440307,x\n", "name,code,parent\n", "code,name,parent,extra\n"} {
		_, _, err := c.ImportRegionsCSV(strings.NewReader(body), false)
		wantValidationError(t, err, "header")
	}
}
