package gb28181

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/catalog"
	"github.com/tianyan/vms/store"
)

// BenchmarkThousandDevicesRegisterSyncAndStayOnline is the scale target: 1,000 NVRs with
// 13,635 channels in total (gbsim in its own process, so only the server's CPU is measured)
// register at once, sync their catalogs (Hikvision style: one GB2312 item per MESSAGE over UDP)
// into a real catalog in a real bbolt, and then only keep alive. It reports the seconds from the
// devices' start to the last channel stored (target ≤ 60 s) and the server's CPU while the devices
// only send keepalives, as a percentage of one core (target ≤ 5 %), over one keepalive interval
// (GB_BENCH_KEEPALIVE, default 60s; every device keeps alive once per interval).
//
//	go test -run '^$' -bench ThousandDevices -benchtime 1x -timeout 10m ./gb28181
func BenchmarkThousandDevicesRegisterSyncAndStayOnline(b *testing.B) {
	const devices, channels = 1000, 13635
	keepalive := time.Minute
	if v := os.Getenv("GB_BENCH_KEEPALIVE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		keepalive = d
	}
	sim := filepath.Join(b.TempDir(), "gbsim")
	if out, err := exec.Command("go", "build", "-o", sim, "github.com/tianyan/vms/cmd/gbsim").CombinedOutput(); err != nil {
		b.Fatalf("building gbsim: %v\n%s", err, out)
	}
	for range b.N {
		db, err := store.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		al, _ := audit.New(db, audit.Options{})
		cat, err := catalog.New(db)
		if err != nil {
			b.Fatal(err)
		}
		s, err := New(Config{ID: testServerID, Domain: testDomain, Listen: "127.0.0.1:0", Password: "secret-12345",
			KeepaliveInterval: keepalive, CatalogInterval: 24 * time.Hour, DB: db, Audit: al, Catalog: cat, Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		if _, err := s.CreateRule(Rule{NamePattern: "通道", Category: "public-security", Level: 2}, "bench"); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, sim, "-server", s.UDPAddr().String(), "-server-id", testServerID, "-password", "secret-12345",
			"-devices", strconv.Itoa(devices), "-total-channels", strconv.Itoa(channels), "-nvr", "-gbk", "-page-size", "1",
			"-keepalive", keepalive.String(), "-report", "1h")
		stderr, _ := cmd.StderrPipe()
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		go func() { // drain its log so it never blocks
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
			}
		}()

		synced := func() (int, int, int) {
			reg, online, chans := 0, 0, 0
			for _, d := range s.Devices().List() {
				reg++
				if d.Online {
					online++
				}
				chans += d.Channels
			}
			return reg, online, chans
		}
		deadline := start.Add(5 * time.Minute)
		for {
			reg, online, chans := synced()
			if reg == devices && online == devices && chans == channels {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("after %v: %d devices, %d online, %d channels", time.Since(start), reg, online, chans)
			}
			time.Sleep(50 * time.Millisecond)
		}
		syncSecs := time.Since(start).Seconds()
		if n := cat.Len(); n != channels {
			b.Fatalf("catalog holds %d points", n)
		}

		// Steady state: let in-flight work (subscriptions, device info) settle, then measure the
		// server's CPU over one keepalive interval.
		time.Sleep(3 * time.Second)
		cpu0, wall0 := cpuTime(), time.Now()
		time.Sleep(keepalive)
		cpu, wall := cpuTime()-cpu0, time.Since(wall0)
		_, online, _ := synced()
		cancel()
		cmd.Wait()
		s.Close()
		db.Close()
		if online != devices {
			b.Fatalf("%d of %d devices online after an idle keepalive interval", online, devices)
		}
		b.ReportMetric(syncSecs, "s-to-synced")
		b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%core-keepalive")
		b.Logf("%d devices, %d channels synced %.1f s after start; keepalive-only CPU %v over %v (%.2f %% of a core)",
			devices, channels, syncSecs, cpu.Round(time.Millisecond), wall.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds())
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(fmt.Sprint("getrusage: ", err))
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
