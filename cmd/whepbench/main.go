// Command whepbench measures WHEP fan-out against any WHEP endpoint: it
// connects N viewers, reports how long each waited for its first keyframe,
// RTP sequence gaps and frames received, and — given the server's PID on
// this machine — the server's CPU and memory per viewer.
//
//	whepbench -url URL [-token T] [-readers N] [-ramp 20ms] [-hold 20s]
//	          [-join K] [-pid PID] [-iface lo] [-json]
//
// Phases: baseline sample of the server; ramp (one reader every -ramp,
// each given 10 s for a keyframe); hold (-hold, over which CPU, RSS, frames
// and gaps are measured); join (K more readers, 1 s apart, each timed to
// its first keyframe while the crowd keeps watching); close (DELETE every
// session).
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tianyan/vms/whepclient"
)

// keyframeWait is how long a reader may wait for its first keyframe,
// counted from its offer POST, before it is counted as a failure.
const keyframeWait = 10 * time.Second

type options struct {
	url     string
	token   string
	readers int
	ramp    time.Duration
	hold    time.Duration
	join    int
	pid     int
	iface   string
	json    bool
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "", "WHEP endpoint URL (required)")
	flag.StringVar(&o.token, "token", os.Getenv("WHEP_TOKEN"), "bearer token (env WHEP_TOKEN)")
	flag.IntVar(&o.readers, "readers", 10, "concurrent readers")
	flag.DurationVar(&o.ramp, "ramp", 20*time.Millisecond, "interval between reader starts")
	flag.DurationVar(&o.hold, "hold", 20*time.Second, "measurement window once all readers are up")
	flag.IntVar(&o.join, "join", 0, "extra readers to connect one at a time, 1 s apart, after the hold (joining-viewer latency)")
	flag.IntVar(&o.pid, "pid", 0, "server process ID on this machine, for CPU and RSS (0: skip)")
	flag.StringVar(&o.iface, "iface", "", "limit ICE host candidates to this interface (e.g. lo); default all")
	flag.BoolVar(&o.json, "json", false, "print one JSON object instead of the table")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if o.url == "" || o.readers < 1 || o.join < 0 || o.ramp < 0 || o.hold <= 0 {
		fmt.Fprintln(os.Stderr, "whepbench: -url is required; -readers >= 1, -join >= 0, -hold > 0")
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep, err := run(ctx, o, log)
	if err != nil {
		log.Error("whepbench", "err", err)
		os.Exit(1)
	}
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.print(os.Stdout)
	}
	if rep.Failures > 0 || rep.Join.Failures > 0 {
		os.Exit(3)
	}
}

// reader is one viewer's outcome.
type reader struct {
	client *whepclient.Client
	err    error
	// kf is the time to first keyframe from the offer POST; 0 on failure.
	kf time.Duration
	// post is the WHEP round trip (offer POST to answer applied).
	post time.Duration
}

// connect starts one viewer and waits up to keyframeWait for a keyframe.
func connect(ctx context.Context, o options, r *reader) {
	var ifaces []string
	if o.iface != "" {
		ifaces = []string{o.iface}
	}
	cctx, cancel := context.WithTimeout(ctx, keyframeWait+5*time.Second)
	defer cancel()
	c, err := whepclient.ConnectHTTP(cctx, o.url, o.token, whepclient.Options{Interfaces: ifaces})
	if err != nil {
		r.err = err
		return
	}
	r.client = c
	start := c.Stats().Start
	r.post = time.Since(start)
	t := time.NewTimer(time.Until(start.Add(keyframeWait)))
	defer t.Stop()
	select {
	case <-c.Keyframe():
		r.kf = c.Stats().FirstKeyframe
	case <-t.C:
		r.err = fmt.Errorf("no keyframe within %v (ICE %s, %d packets)", keyframeWait, c.ConnectionState(), c.Stats().Packets)
	case <-ctx.Done():
		r.err = ctx.Err()
	}
}

// Report is the whole result; -json prints it as is.
type Report struct {
	URL      string    `json:"url"`
	Date     time.Time `json:"date"`
	CPUs     int       `json:"host_cpus"`
	Readers  int       `json:"readers"`
	Ramp     string    `json:"ramp"`
	HoldSecs float64   `json:"hold_secs"`

	Connected int      `json:"connected"`
	Failures  int      `json:"failures"`
	Errors    []string `json:"errors,omitempty"`
	// LateKeyframes counts failed readers whose first keyframe came after
	// the deadline but before the end of the hold.
	LateKeyframes int `json:"late_keyframes"`

	FirstKeyframeMs Dist `json:"first_keyframe_ms"`
	WHEPPostMs      Dist `json:"whep_post_ms"`

	// Over the hold window.
	SeqGapsTotal    uint64  `json:"seq_gaps_total"`
	SeqGapsHold     uint64  `json:"seq_gaps_hold"`
	ReadersWithGaps int     `json:"readers_with_gaps_hold"`
	FramesMin       uint64  `json:"frames_per_reader_min"`
	FramesMedian    uint64  `json:"frames_per_reader_median"`
	FPSMin          float64 `json:"fps_per_reader_min"`
	FPSMedian       float64 `json:"fps_per_reader_median"`
	MbpsPerReader   float64 `json:"mbps_per_reader_median"`

	Server *ServerUsage `json:"server,omitempty"`
	// BenchCPUPercent is whepbench's own CPU over the hold, % of one core;
	// on a shared machine it competes with the server.
	BenchCPUPercent float64 `json:"bench_cpu_percent"`
	// HostBusyPercent is the whole machine's CPU over the hold, % of all cores.
	HostBusyPercent float64 `json:"host_busy_percent"`
	// OtherCPUPercent is the machine's busy time over the hold not spent in
	// the server or whepbench, % of one core: the publisher, unattributed
	// kernel work, and anything else running. When it is large the figures
	// are contaminated by other load.
	OtherCPUPercent float64 `json:"other_cpu_percent"`
	// HostUDPRcvbufErrors counts datagrams the kernel dropped during the
	// hold because a receiving socket's buffer was full (/proc/net/snmp,
	// whole host). On loopback this is where RTP sequence gaps come from.
	HostUDPRcvbufErrors uint64 `json:"host_udp_rcvbuf_errors_hold"`

	Join JoinReport `json:"join"`
}

// ServerUsage is the server process over the hold window.
type ServerUsage struct {
	PID                 int     `json:"pid"`
	CPUPercent          float64 `json:"cpu_percent"` // of one core
	CPUPercentPerReader float64 `json:"cpu_percent_per_reader"`
	RSSBaselineMB       float64 `json:"rss_baseline_mb"`
	RSSAfterMB          float64 `json:"rss_after_mb"`
	RSSPerReaderMB      float64 `json:"rss_per_reader_mb"`
}

// JoinReport is the joining-viewer measurement.
type JoinReport struct {
	Readers         int      `json:"readers"`
	Failures        int      `json:"failures"`
	Errors          []string `json:"errors,omitempty"`
	FirstKeyframeMs Dist     `json:"first_keyframe_ms"`
	// SeqGaps is the joiners' RTP sequence gaps, most of them in the
	// cached-GOP burst each joiner gets first.
	SeqGaps         uint64 `json:"seq_gaps"`
	ReadersWithGaps int    `json:"readers_with_gaps"`
}

// Dist summarises durations in milliseconds.
type Dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	Max float64 `json:"max"`
}

func dist(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }
	return Dist{N: len(s), P50: ms(rank(s, 0.50)), P95: ms(rank(s, 0.95)), Max: ms(s[len(s)-1])}
}

// rank is the nearest-rank percentile of sorted s.
func rank[T any](s []T, p float64) T {
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func run(ctx context.Context, o options, log *slog.Logger) (*Report, error) {
	rep := &Report{URL: o.url, Date: time.Now().UTC().Truncate(time.Second), CPUs: runtime.NumCPU(), Readers: o.readers,
		Ramp: o.ramp.String(), HoldSecs: o.hold.Seconds()}

	var rssBase uint64
	if o.pid > 0 {
		var err error
		if rssBase, err = readRSS(o.pid); err != nil {
			return nil, fmt.Errorf("-pid %d: %w", o.pid, err)
		}
	}

	// Ramp.
	readers := make([]*reader, o.readers)
	var wg sync.WaitGroup
	log.Info("connecting readers", "n", o.readers, "ramp", o.ramp)
	t0 := time.Now()
	for i := range readers {
		readers[i] = &reader{}
		r := readers[i]
		wg.Go(func() { connect(ctx, o, r) })
		if o.ramp > 0 && i < len(readers)-1 {
			select {
			case <-time.After(o.ramp):
			case <-ctx.Done():
			}
		}
	}
	wg.Wait()
	defer closeAll(readers, log)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var kfs, posts []time.Duration
	for _, r := range readers {
		if r.client != nil {
			rep.Connected++
			posts = append(posts, r.post)
		}
		if r.err != nil {
			rep.Failures++
			rep.Errors = appendErr(rep.Errors, r.err)
			continue
		}
		kfs = append(kfs, r.kf)
	}
	rep.FirstKeyframeMs, rep.WHEPPostMs = dist(kfs), dist(posts)
	log.Info("readers up", "ok", len(kfs), "failed", rep.Failures, "took", time.Since(t0).Round(time.Millisecond),
		"first_keyframe_p50_ms", rep.FirstKeyframeMs.P50)

	// Hold.
	before := snapshot(readers)
	cpuStart, _ := readCPUTicks(o.pid)
	selfStart, _ := readCPUTicks(os.Getpid())
	hostBusy0, hostAll0, _ := readHostCPU()
	rcvbuf0, _ := readUDPRcvbufErrors()
	holdStart := time.Now()
	log.Info("holding", "for", o.hold)
	select {
	case <-time.After(o.hold):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	wall := time.Since(holdStart)
	cpuEnd, _ := readCPUTicks(o.pid)
	selfEnd, _ := readCPUTicks(os.Getpid())
	hostBusy1, hostAll1, _ := readHostCPU()
	rcvbuf1, _ := readUDPRcvbufErrors()
	if rcvbuf1 >= rcvbuf0 {
		rep.HostUDPRcvbufErrors = rcvbuf1 - rcvbuf0
	}
	after := snapshot(readers)
	tick := float64(clockTicks())
	pct := func(ticks uint64) float64 { return round1(float64(ticks) / tick / wall.Seconds() * 100) }
	rep.BenchCPUPercent = pct(selfEnd - selfStart)
	if hostAll1 > hostAll0 {
		rep.HostBusyPercent = round1(float64(hostBusy1-hostBusy0) / float64(hostAll1-hostAll0) * 100)
	}
	rep.OtherCPUPercent = round1(max(0, rep.HostBusyPercent*float64(rep.CPUs)-rep.BenchCPUPercent))
	if o.pid > 0 {
		rss, err := readRSS(o.pid)
		if err != nil {
			return nil, fmt.Errorf("server process %d: %w", o.pid, err)
		}
		su := &ServerUsage{PID: o.pid, CPUPercent: pct(cpuEnd - cpuStart),
			RSSBaselineMB: mb(rssBase), RSSAfterMB: mb(rss)}
		su.CPUPercentPerReader = round3(su.CPUPercent / float64(o.readers))
		su.RSSPerReaderMB = round3((float64(rss) - float64(rssBase)) / float64(o.readers) / (1 << 20))
		rep.Server = su
		rep.OtherCPUPercent = round1(max(0, rep.OtherCPUPercent-su.CPUPercent))
	}
	// Readers that missed the keyframe deadline: did anything arrive later?
	late := 0
	for i, r := range readers {
		if r.err == nil || r.client == nil {
			continue
		}
		st := after[i]
		if st.Keyframes > 0 {
			rep.LateKeyframes++
		}
		if late++; late <= 5 {
			log.Info("failed reader, later", "reader", i, "ice", r.client.ConnectionState().String(),
				"first_packet", st.FirstPacket.Round(time.Millisecond), "first_keyframe", st.FirstKeyframe.Round(time.Millisecond),
				"packets", st.Packets, "frames", st.Frames)
		}
	}
	if rep.OtherCPUPercent > 50 {
		log.Warn("other load on this machine during the hold; CPU, gap and frame figures are not clean",
			"other_cpu_percent", rep.OtherCPUPercent)
	}
	var frames []uint64
	var mbps []float64
	for i, r := range readers {
		if r.client == nil {
			continue
		}
		rep.SeqGapsTotal += after[i].SeqGaps
		g := after[i].SeqGaps - before[i].SeqGaps
		rep.SeqGapsHold += g
		if g > 0 {
			rep.ReadersWithGaps++
		}
		frames = append(frames, after[i].Frames-before[i].Frames)
		mbps = append(mbps, float64(after[i].Bytes-before[i].Bytes)*8/wall.Seconds()/1e6)
	}
	if len(frames) > 0 {
		slices.Sort(frames)
		slices.Sort(mbps)
		rep.FramesMin, rep.FramesMedian = frames[0], rank(frames, 0.5)
		rep.FPSMin = round1(float64(rep.FramesMin) / wall.Seconds())
		rep.FPSMedian = round1(float64(rep.FramesMedian) / wall.Seconds())
		rep.MbpsPerReader = round3(rank(mbps, 0.5))
	}

	// Join: K more viewers while the crowd keeps watching.
	if o.join > 0 {
		log.Info("joining viewers", "n", o.join, "interval", "1s")
		joiners := make([]*reader, o.join)
		var jwg sync.WaitGroup
		for i := range joiners {
			if i > 0 {
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
				}
			}
			joiners[i] = &reader{}
			r := joiners[i]
			jwg.Go(func() { connect(ctx, o, r) })
		}
		jwg.Wait()
		defer closeAll(joiners, log)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var jk []time.Duration
		for i, r := range joiners {
			if r.client != nil {
				st := r.client.Stats()
				rep.Join.SeqGaps += st.SeqGaps
				if st.SeqGaps > 0 {
					rep.Join.ReadersWithGaps++
				}
				if r.err != nil || r.kf > time.Second {
					log.Info("slow joiner", "joiner", i, "first_packet", st.FirstPacket.Round(time.Millisecond),
						"first_keyframe", st.FirstKeyframe.Round(time.Millisecond), "seq_gaps", st.SeqGaps,
						"packets", st.Packets, "frames", st.Frames)
				}
			}
			if r.err != nil {
				rep.Join.Failures++
				rep.Join.Errors = appendErr(rep.Join.Errors, r.err)
				continue
			}
			jk = append(jk, r.kf)
		}
		rep.Join.Readers = o.join
		rep.Join.FirstKeyframeMs = dist(jk)
	}
	return rep, nil
}

func appendErr(errs []string, err error) []string {
	s := err.Error()
	if len(errs) < 10 && !slices.Contains(errs, s) {
		errs = append(errs, s)
	}
	return errs
}

func snapshot(rs []*reader) []whepclient.Stats {
	out := make([]whepclient.Stats, len(rs))
	for i, r := range rs {
		if r.client != nil {
			out[i] = r.client.Stats()
		}
	}
	return out
}

// closeAll ends every session (DELETE, then the peer connection), a few at
// a time.
func closeAll(rs []*reader, log *slog.Logger) {
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	n := 0
	for _, r := range rs {
		if r.client == nil {
			continue
		}
		n++
		sem <- struct{}{}
		c := r.client
		wg.Go(func() {
			defer func() { <-sem }()
			c.Close()
		})
	}
	wg.Wait()
	log.Info("closed readers", "n", n)
}

// readCPUTicks returns utime+stime of a process in clock ticks.
func readCPUTicks(pid int) (uint64, error) {
	if pid <= 0 {
		return 0, errors.New("no pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces: split after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed /proc stat times")
	}
	return u + st, nil
}

// readHostCPU returns busy and total jiffies of the whole machine.
func readHostCPU() (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, errors.New("malformed /proc/stat")
	}
	var idle uint64
	// user nice system idle iowait irq softirq steal (guest time is
	// already inside user and nice).
	for i, v := range f[1:min(len(f), 9)] {
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	return total - idle, total, nil
}

// readUDPRcvbufErrors reads the host's Udp RcvbufErrors counter.
func readUDPRcvbufErrors() (uint64, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				return strconv.ParseUint(f[i], 10, 64)
			}
		}
	}
	return 0, errors.New("no Udp RcvbufErrors in /proc/net/snmp")
}

// readRSS returns a process's resident set size in bytes.
func readRSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				if err != nil {
					return 0, err
				}
				return kb * 1024, nil
			}
		}
	}
	return 0, errors.New("no VmRSS (kernel thread or zombie?)")
}

// clockTicks is USER_HZ, the unit of /proc times. Go has no sysconf
// without cgo, so read AT_CLKTCK from the auxiliary vector the kernel gave
// this process; fall back to 100, the value on every mainstream Linux.
func clockTicks() uint64 {
	const atClkTck = 17
	b, err := os.ReadFile("/proc/self/auxv")
	if err == nil && len(b)%16 == 0 {
		for i := 0; i+16 <= len(b); i += 16 {
			k := binary.NativeEndian.Uint64(b[i:])
			v := binary.NativeEndian.Uint64(b[i+8:])
			if k == atClkTck && v > 0 {
				return v
			}
		}
	}
	return 100
}

func mb(b uint64) float64      { return round1(float64(b) / (1 << 20)) }
func round1(v float64) float64 { return math.Round(v*10) / 10 }
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func (r *Report) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(k, f string, a ...any) { fmt.Fprintf(tw, "%s\t"+f+"\n", append([]any{k}, a...)...) }
	p("url", "%s", r.URL)
	p("date", "%s  (%d CPUs)", r.Date.Format(time.RFC3339), r.CPUs)
	p("readers", "%d connected, %d failed (%d of them got a keyframe later)  (ramp %s, hold %gs)",
		r.Connected, r.Failures, r.LateKeyframes, r.Ramp, r.HoldSecs)
	p("first keyframe", "p50 %.0f ms  p95 %.0f ms  max %.0f ms  (n=%d, from offer POST)",
		r.FirstKeyframeMs.P50, r.FirstKeyframeMs.P95, r.FirstKeyframeMs.Max, r.FirstKeyframeMs.N)
	p("WHEP POST", "p50 %.0f ms  p95 %.0f ms  max %.0f ms", r.WHEPPostMs.P50, r.WHEPPostMs.P95, r.WHEPPostMs.Max)
	p("frames/reader (hold)", "min %d  median %d  (%.1f / %.1f fps)", r.FramesMin, r.FramesMedian, r.FPSMin, r.FPSMedian)
	p("bitrate/reader", "%.2f Mbit/s median", r.MbpsPerReader)
	p("RTP seq gaps", "%d during hold (%d readers), %d in total", r.SeqGapsHold, r.ReadersWithGaps, r.SeqGapsTotal)
	if s := r.Server; s != nil {
		p("server CPU", "%.1f%% of one core  = %.3f%% per reader  (pid %d)", s.CPUPercent, s.CPUPercentPerReader, s.PID)
		p("server RSS", "%.1f MB -> %.1f MB  = %.3f MB per reader", s.RSSBaselineMB, s.RSSAfterMB, s.RSSPerReaderMB)
	}
	p("whepbench CPU", "%.1f%% of one core", r.BenchCPUPercent)
	p("host CPU busy", "%.1f%% of all cores; other processes and kernel %.1f%% of one core", r.HostBusyPercent, r.OtherCPUPercent)
	p("host UDP rcvbuf drops", "%d during hold (kernel, all sockets)", r.HostUDPRcvbufErrors)
	if r.Join.Readers > 0 {
		j := r.Join.FirstKeyframeMs
		p("joining viewers", "%d, %d failed: first keyframe p50 %.0f ms  p95 %.0f ms  max %.0f ms; %d seq gaps (%d joiners)",
			r.Join.Readers, r.Join.Failures, j.P50, j.P95, j.Max, r.Join.SeqGaps, r.Join.ReadersWithGaps)
	}
	for _, e := range r.Errors {
		p("error", "%s", e)
	}
	for _, e := range r.Join.Errors {
		p("join error", "%s", e)
	}
	_ = tw.Flush()
}
