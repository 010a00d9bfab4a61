package api

import (
	"fmt"
	"strings"

	"github.com/weft-mesh/weft/internal/analyze"
	"github.com/weft-mesh/weft/internal/config"
)

// analyzeApply runs `weft analyze` on the stored config with objs applied
// over it (source names them in the error). It refuses the apply (a non-nil error listing the messages) when
// a message about one of objs blocks (analyze.Message.Blocks); errors in
// objects that are already stored and not part of this apply never refuse
// it. Otherwise it returns the messages about objs as warnings.
//
// The store may change between this analysis and the apply; the next apply
// sees it.
func (h *handler) analyzeApply(source string, objs []*config.Object) (warnings []string, refused error) {
	applied := make(map[config.Key]bool, len(objs))
	for _, o := range objs {
		applied[o.Key()] = true
	}
	_, stored := h.opts.Store.Snapshot()
	all := make([]*config.Object, 0, len(stored)+len(objs))
	for _, o := range stored {
		if !applied[o.Key()] {
			all = append(all, o)
		}
	}
	all = append(all, objs...)
	var blocking []string
	for _, m := range analyze.AnalyzeWith(all, h.services()) {
		if !applied[m.Resource] {
			continue
		}
		if m.Blocks() {
			blocking = append(blocking, m.String())
			continue
		}
		warnings = append(warnings, m.String())
	}
	if len(blocking) > 0 {
		if source == "" {
			source = "the applied config"
		}
		return nil, fmt.Errorf("%s: apply refused, nothing changed; analysis found:\n  %s", source, strings.Join(blocking, "\n  "))
	}
	return warnings, nil
}
