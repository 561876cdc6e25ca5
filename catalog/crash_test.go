package catalog

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/store"
)

// crashChildEnv makes the test binary act as the importing process that
// TestKill9DuringImportLeavesAllRowsOrNone kills.
const crashChildEnv = "TIANYAN_IMPORT_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(crashChildEnv); spec != "" {
		os.Exit(importChild(spec))
	}
	os.Exit(m.Run())
}

// importChild opens dataDir, says "ready", imports csvFile and says
// "done <ms>". spec is "dataDir|csvFile".
func importChild(spec string) int {
	dir, file, _ := strings.Cut(spec, "|")
	db, err := store.Open(dir)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	c, err := New(db)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	f, err := os.Open(file)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	log, err := audit.New(db, audit.Options{})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("ready")
	start := time.Now()
	// The import's audit record goes in the import's transaction, as the
	// server writes it.
	n, rows, err := c.ImportPoints(bufio.NewReader(f), "text/csv", false, func(tx *bbolt.Tx, n int) error {
		_, err := log.AppendTx(tx, audit.Record{User: "admin", Action: "point.import", Detail: map[string]string{"count": strconv.Itoa(n)}})
		return err
	})
	if err != nil || len(rows) > 0 {
		fmt.Println("error", err, rows)
		return 1
	}
	fmt.Println("done", n, time.Since(start).Milliseconds())
	_ = db.Close()
	return 0
}

// TestKill9DuringImportLeavesAllRowsOrNone imports a district's 13,635
// points in a child process and SIGKILLs it at moments spread over the
// import; every time, the reopened database holds all rows or none, holds
// the import's audit record exactly when it holds the rows, and passes
// bbolt's consistency check and the audit chain's.
func TestKill9DuringImportLeavesAllRowsOrNone(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes; -short")
	}
	const n = 13_635
	dir := t.TempDir()
	csvFile := filepath.Join(dir, "points.csv")
	if err := os.WriteFile(csvFile, pointsCSV(t, syntheticPoints(rand.New(rand.NewPCG(1, 2)), n)), 0o600); err != nil {
		t.Fatal(err)
	}
	seedRegions := func(data string) {
		db, err := store.Open(data)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		c, err := New(db)
		if err != nil {
			t.Fatal(err)
		}
		if _, rows, err := c.ImportRegionsCSV(strings.NewReader(regionsCSV(syntheticRegions())), false); err != nil || len(rows) > 0 {
			t.Fatalf("regions: %v %v", err, rows)
		}
	}
	count := func(data string) int {
		db, err := store.OpenFile(filepath.Join(data, store.FileName))
		if err != nil {
			t.Fatalf("reopen after kill: %v", err)
		}
		defer db.Close()
		if err := db.Check(); err != nil {
			t.Fatalf("database damaged by kill -9: %v", err)
		}
		c, err := New(db)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := c.List()
		if err != nil {
			t.Fatal(err)
		}
		log, err := audit.New(db, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		records, err := log.Verify()
		if err != nil {
			t.Fatalf("audit chain after kill -9: %v", err)
		}
		if (records == 1) != (len(ps) > 0) || records > 1 {
			t.Fatalf("after kill -9: %d points and %d audit records; the record must be there iff the rows are", len(ps), records)
		}
		return len(ps)
	}
	// run starts a child and kills it killAfter past "ready" (never, if
	// negative); it returns how long the import took when it finished.
	run := func(data string, killAfter time.Duration) (finished bool) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+data+"|"+csvFile)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		if !sc.Scan() || sc.Text() != "ready" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("child did not start: %q", sc.Text())
		}
		if killAfter >= 0 {
			time.Sleep(killAfter)
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "done") {
				finished = true
				t.Logf("child: %s", sc.Text())
			}
		}
		_ = cmd.Wait()
		return finished
	}

	// One uninterrupted run measures how long the import takes here.
	full := filepath.Join(dir, "full")
	seedRegions(full)
	start := time.Now()
	if !run(full, -1) {
		t.Fatal("uninterrupted import did not finish")
	}
	took := time.Since(start)
	if got := count(full); got != n {
		t.Fatalf("uninterrupted import stored %d of %d", got, n)
	}

	const kills = 5
	var none, all int
	for i := range kills {
		data := filepath.Join(dir, fmt.Sprintf("kill%d", i))
		seedRegions(data)
		killAfter := time.Duration(float64(took) * float64(i) / (kills - 1))
		run(data, killAfter)
		switch got := count(data); got {
		case 0:
			none++
		case n:
			all++
		default:
			t.Fatalf("kill -9 after %v left %d of %d points", killAfter, got, n)
		}
	}
	t.Logf("import takes %v; %d kills: %d left nothing, %d left everything", took, kills, none, all)
}
