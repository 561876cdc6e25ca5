package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tailBytes is how much of a child's output is kept for a failure report.
const tailBytes = 64 << 10

// tail keeps the last tailBytes written to it, and tells watchers when a
// write contains what they wait for.
type tail struct {
	mu       sync.Mutex
	buf      []byte
	watchers []watcher
}

type watcher struct {
	substr string
	seen   chan struct{}
}

// watch returns a channel closed at the first later write containing
// substr (slog writes each record in one write).
func (w *tail) watch(substr string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	w.watchers = append(w.watchers, watcher{substr: substr, seen: ch})
	return ch
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	kept := w.watchers[:0]
	for _, wt := range w.watchers {
		if bytes.Contains(p, []byte(wt.substr)) {
			close(wt.seen)
			continue
		}
		kept = append(kept, wt)
	}
	w.watchers = kept
	if over := len(w.buf) - tailBytes; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

// proc is one child process. Its output goes to a tail that a failing test
// prints; the test's cleanup kills it if it still runs.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	out  *tail
	done chan struct{} // closed when the process has been reaped
	err  error         // Wait's result, set before done closes
}

// startProc starts bin with args and env (added to the test's environment).
func startProc(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, out: &tail{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	// A test binary that dies (timeout panic, kill) takes its children
	// with it instead of leaving servers holding ports.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- %s (pid %d) output, last %d KiB ---\n%s", name, p.pid(), tailBytes>>10, lastLines(p.out.String(), 200))
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill9 sends SIGKILL and waits until the process is gone.
func (p *proc) kill9() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatalf("kill -9 %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s survived SIGKILL for 10 s", p.name)
	}
}

// stop asks the process to end (SIGTERM), and kills it after 10 s.
func (p *proc) stop() {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
