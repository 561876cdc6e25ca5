package prefs

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/tianyan/vms/store"
)

func openPrefs(t *testing.T) (*Prefs, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return New(db), dir
}

func TestLayoutRoundTripsAndSurvivesReopen(t *testing.T) {
	p, dir := openPrefs(t)
	in := Layout{Name: "防汛 四画面", Grid: "4", Tiles: []string{"cam1", "", "44030700001320000001"},
		Tour: &Tour{Category: "reservoir", IntervalSec: 10}}
	saved, created, err := p.PutLayout("alice", in)
	if err != nil || !created {
		t.Fatalf("PutLayout = %v, created %v", err, created)
	}
	if saved.UpdatedAt.IsZero() {
		t.Fatal("UpdatedAt not stamped")
	}
	if _, created, err = p.PutLayout("alice", in); err != nil || created {
		t.Fatalf("second PutLayout = %v, created %v; want a replace", err, created)
	}
	if err := p.db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p = New(db)
	got, err := p.Layout("alice", in.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Grid != "4" || !slices.Equal(got.Tiles, in.Tiles) || got.Tour == nil || got.Tour.Category != "reservoir" {
		t.Fatalf("reloaded layout %+v", got)
	}
	list, err := p.Layouts("alice")
	if err != nil || len(list) != 1 {
		t.Fatalf("Layouts = %v, %v", list, err)
	}
}

func TestLayoutsAreKeptPerUser(t *testing.T) {
	p, _ := openPrefs(t)
	// "al" is a prefix of "alice": keys must not bleed between them.
	for _, u := range []string{"al", "alice"} {
		if _, _, err := p.PutLayout(u, Layout{Name: "wall", Grid: "1", Tiles: []string{u}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"al", "alice"} {
		list, err := p.Layouts(u)
		if err != nil || len(list) != 1 || list[0].Tiles[0] != u {
			t.Fatalf("Layouts(%s) = %+v, %v", u, list, err)
		}
	}
	if _, err := p.Layout("bob", "wall"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob's layout: %v, want ErrNotFound", err)
	}
	if err := p.DeleteLayout("al", "wall"); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteLayout("al", "wall"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if list, _ := p.Layouts("alice"); len(list) != 1 {
		t.Fatalf("deleting al's layout touched alice's: %+v", list)
	}
}

func TestInvalidLayoutIsRejectedNamingTheField(t *testing.T) {
	p, _ := openPrefs(t)
	for _, tc := range []struct {
		l     Layout
		field string
	}{
		{Layout{Name: "", Grid: "4"}, "name"},
		{Layout{Name: " x", Grid: "4"}, "name"},
		{Layout{Name: "a/b", Grid: "4"}, "name"},
		{Layout{Name: "a\x00b", Grid: "4"}, "name"},
		{Layout{Name: string(make([]rune, 65)), Grid: "4"}, "name"},
		{Layout{Name: "x", Grid: "5"}, "grid"},
		{Layout{Name: "x", Grid: "1+5", Tiles: make([]string, 7)}, "tiles"},
		{Layout{Name: "x", Grid: "4", Tiles: []string{"bad id!"}}, "tiles[0]"},
		{Layout{Name: "x", Grid: "4", Tour: &Tour{IntervalSec: 10}}, "tour"},
		{Layout{Name: "x", Grid: "4", Tour: &Tour{Category: "river", Points: []string{"a"}, IntervalSec: 10}}, "tour"},
		{Layout{Name: "x", Grid: "4", Tour: &Tour{Category: "River!", IntervalSec: 10}}, "tour.category"},
		{Layout{Name: "x", Grid: "4", Tour: &Tour{Points: []string{"a"}, IntervalSec: 1}}, "tour.interval_s"},
	} {
		_, _, err := p.PutLayout("alice", tc.l)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("PutLayout(%+v) = %v, want a ValidationError on %s", tc.l, err, tc.field)
		}
	}
	if list, _ := p.Layouts("alice"); len(list) != 0 {
		t.Fatalf("rejected layouts were stored: %+v", list)
	}
}

func TestLayoutCountIsBounded(t *testing.T) {
	p, _ := openPrefs(t)
	for i := range MaxLayouts {
		if _, _, err := p.PutLayout("alice", Layout{Name: fmt.Sprint(i), Grid: "1"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := p.PutLayout("alice", Layout{Name: "one more", Grid: "1"}); !errors.Is(err, ErrTooMany) {
		t.Fatalf("layout %d: %v, want ErrTooMany", MaxLayouts+1, err)
	}
	// Replacing an existing one is still allowed.
	if _, _, err := p.PutLayout("alice", Layout{Name: "0", Grid: "4"}); err != nil {
		t.Fatalf("replace at the limit: %v", err)
	}
}

func TestFavouritesDeduplicateKeepOrderAndAreBounded(t *testing.T) {
	p, _ := openPrefs(t)
	if ids, err := p.Favourites("alice"); err != nil || ids == nil || len(ids) != 0 {
		t.Fatalf("no favourites yet: %#v, %v", ids, err)
	}
	got, err := p.SetFavourites("alice", []string{"b", "a", "b", "c"})
	if err != nil || !slices.Equal(got, []string{"b", "a", "c"}) {
		t.Fatalf("SetFavourites = %v, %v", got, err)
	}
	if ids, _ := p.Favourites("alice"); !slices.Equal(ids, got) {
		t.Fatalf("Favourites = %v", ids)
	}
	if _, err := p.SetFavourites("alice", []string{"ok", "not ok"}); err == nil {
		t.Fatal("a malformed ID was accepted")
	}
	many := make([]string, MaxFavourites+1)
	for i := range many {
		many[i] = fmt.Sprint("p", i)
	}
	if _, err := p.SetFavourites("alice", many); err == nil {
		t.Fatal("more than MaxFavourites accepted")
	}
	if ids, _ := p.Favourites("alice"); !slices.Equal(ids, got) {
		t.Fatalf("a rejected write changed favourites: %v", ids)
	}
}

func TestDeleteUserRemovesOnlyTheirPreferences(t *testing.T) {
	p, _ := openPrefs(t)
	for _, u := range []string{"al", "alice"} {
		if _, _, err := p.PutLayout(u, Layout{Name: "w", Grid: "1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.SetFavourites(u, []string{"x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.DeleteUser("al"); err != nil {
		t.Fatal(err)
	}
	if l, _ := p.Layouts("al"); len(l) != 0 {
		t.Fatalf("al's layouts remain: %+v", l)
	}
	if f, _ := p.Favourites("al"); len(f) != 0 {
		t.Fatalf("al's favourites remain: %v", f)
	}
	if l, _ := p.Layouts("alice"); len(l) != 1 {
		t.Fatalf("alice lost her layouts: %+v", l)
	}
	if f, _ := p.Favourites("alice"); len(f) != 1 {
		t.Fatalf("alice lost her favourites: %v", f)
	}
}
