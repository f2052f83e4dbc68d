package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// result is one row's medians.
type result struct {
	row
	dist, berth float64
	skipped     string // why the row was not measured
}

type results struct {
	backend string
	shape   string // the link to the object store, "" on the filesystem
	sizes   sizes
	quick   bool
	started time.Time
	elapsed time.Duration
	rows    []result
}

// table renders the results as a markdown table.
func (r *results) table() string {
	var b strings.Builder
	b.WriteString("| # | scenario | unit | Distribution | Berth | ratio | target | met |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---|---|\n")
	for _, x := range r.rows {
		if x.skipped != "" {
			fmt.Fprintf(&b, "| %s | %s | %s | — | — | — | %s | skipped: %s |\n", x.id, x.name, x.unit, x.targetText(), x.skipped)
			continue
		}
		ratio := x.ratio(x.dist, x.berth)
		met := "—"
		if x.target != 0 {
			met = "not met"
			if x.met(ratio) {
				met = "met"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n",
			x.id, x.name, x.unit, num(x.dist), num(x.berth), x.ratioText(ratio), x.targetText(), met)
	}
	return b.String()
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// machine describes where the numbers were taken.
func (r *results) machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mode := "full"
	if r.quick {
		mode = "quick"
	}
	s := fmt.Sprintf("%s, %s backend, %d CPUs (%s), %s %s/%s, %d rounds (%s mode), run took %s",
		r.started.UTC().Format("2006-01-02 15:04 UTC"), r.backend, runtime.NumCPU(), model,
		runtime.Version(), runtime.GOOS, runtime.GOARCH, r.sizes.rounds, mode, r.elapsed.Round(time.Second))
	if r.shape != "" {
		s += "\n\nLink to the object store: " + r.shape + "."
	}
	return s
}

// section names the run's part of the page: the backend, and for an
// unshaped object store that too, so it does not replace the shaped run.
func (r *results) section() string {
	if r.backend != "filesystem" && !strings.Contains(r.shape, "toxiproxy") {
		return r.backend + "-unshaped"
	}
	return r.backend
}

const (
	beginMark = "<!-- bench:begin "
	endMark   = "<!-- bench:end -->"
)

// writeDoc puts the table between the markers of path's section for
// this backend, keeping the rest of the file (the analysis) as it is. A
// missing file or section is created.
func (r *results) writeDoc(path string) error {
	begin := beginMark + r.section() + " -->"
	section := begin + "\n" + r.machine() + "\n\n" + r.table() + endMark
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var out []byte
	i := bytes.Index(old, []byte(begin))
	j := -1
	if i >= 0 {
		j = bytes.Index(old[i:], []byte(endMark))
	}
	switch {
	case i >= 0 && j >= 0:
		out = append(append(append([]byte{}, old[:i]...), section...), old[i+j+len(endMark):]...)
	case len(old) > 0:
		out = append(append(old, '\n'), section+"\n"...)
	default:
		out = []byte("# Benchmarks\n\n" + section + "\n")
	}
	return os.WriteFile(path, out, 0o644)
}
