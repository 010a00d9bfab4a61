package stats

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// DimSeparator joins a request's dimension values (RequestOverridden).
const DimSeparator = "\x00"

// FamilyOverride is the Telemetry API's tag overrides of one metric
// family: labels removed, and dimensions upserted (a dimension named like
// a standard label replaces it; others are added).
type FamilyOverride struct {
	Remove []string
	Dims   []string
}

// Overrides are a chain's tag overrides of the HTTP metric families. Build
// them once per config with NewOverrides; series recorded with them are
// written with each family's labels.
type Overrides struct {
	// Dims are the names of every upserted dimension, sorted: the order of
	// the values given to RequestOverridden.
	Dims []string
	fam  map[Skip]famOverride
}

type famOverride struct {
	remove map[string]bool
	dims   []int // indexes into Dims
}

// NewOverrides compiles tag overrides per family (SkipRequests,
// SkipDuration, SkipRequestBytes, SkipResponseBytes).
func NewOverrides(byFamily map[Skip]FamilyOverride) *Overrides {
	o := &Overrides{fam: map[Skip]famOverride{}}
	for _, f := range byFamily {
		for _, d := range f.Dims {
			if !slices.Contains(o.Dims, d) {
				o.Dims = append(o.Dims, d)
			}
		}
	}
	slices.Sort(o.Dims)
	for bit, f := range byFamily {
		fo := famOverride{remove: map[string]bool{}}
		for _, r := range f.Remove {
			fo.remove[r] = true
		}
		for _, d := range f.Dims {
			fo.dims = append(fo.dims, slices.Index(o.Dims, d))
		}
		o.fam[bit] = fo
	}
	return o
}

// labels renders a series' labels for one family under the overrides.
func (o *Overrides) labels(k httpKey, fam Skip) string {
	pairs := append(slices.Clip(k.edge.pairs),
		[2]string{"request_protocol", k.proto}, [2]string{"response_code", strconv.Itoa(k.code)},
		[2]string{"grpc_response_status", k.grpc}, [2]string{"response_flags", k.flags})
	f, ok := o.fam[fam]
	if !ok {
		return renderPairs(pairs)
	}
	values := strings.Split(k.dims, DimSeparator)
	out := pairs[:0:0]
	for _, p := range pairs {
		if !f.remove[p[0]] {
			out = append(out, p)
		}
	}
	for _, i := range f.dims {
		name, v := o.Dims[i], ""
		if i < len(values) {
			v = values[i]
		}
		if j := slices.IndexFunc(out, func(p [2]string) bool { return p[0] == name }); j >= 0 {
			out[j][1] = v
		} else {
			out = append(out, [2]string{name, v})
		}
	}
	return renderPairs(out)
}

type overriddenLine struct {
	key httpKey
	s   *httpSeries
}

// mergeOverridden returns the lines of family fam: hs as they are when no
// series has overrides; else every series under its overrides, series
// whose labels end up equal summed into one.
func mergeOverridden(hs []httpLine, ov []overriddenLine, fam Skip) []httpLine {
	if len(ov) == 0 {
		return hs
	}
	sums := map[string]*httpSeries{}
	add := func(labels string, s *httpSeries) {
		if Skip(s.present.Load())&fam == 0 {
			return
		}
		t := sums[labels]
		if t == nil {
			t = new(httpSeries)
			sums[labels] = t
		}
		t.present.Or(s.present.Load())
		t.requests.Add(s.requests.Load())
		t.duration.add(&s.duration)
		t.req.add(&s.req)
		t.resp.add(&s.resp)
	}
	for _, l := range hs {
		add(l.labels, l.s)
	}
	for _, l := range ov {
		add(l.key.ov.labels(l.key, fam), l.s)
	}
	out := make([]httpLine, 0, len(sums))
	for labels, s := range sums {
		out = append(out, httpLine{labels, s})
	}
	slices.SortFunc(out, func(a, b httpLine) int { return strings.Compare(a.labels, b.labels) })
	return out
}

// add sums o into h (h is not shared yet).
func (h *histogram) add(o *histogram) {
	for i := range h.counts {
		h.counts[i].Add(o.counts[i].Load())
	}
	h.sum.Store(math.Float64bits(math.Float64frombits(h.sum.Load()) + math.Float64frombits(o.sum.Load())))
}
