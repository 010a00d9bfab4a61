package api

import (
	"context"
	"fmt"
	"strings"
	"time"

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
// sees it. The analysis stops, with an error, when the request goes away or
// after analysisTimeout.
func (h *handler) analyzeApply(ctx context.Context, source string, objs []*config.Object) (warnings []string, refused, err error) {
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
	ctx, cancel := context.WithTimeoutCause(ctx, analysisTimeout,
		fmt.Errorf("the analysis took longer than %v", analysisTimeout))
	defer cancel()
	msgs, err := analyze.AnalyzeContext(ctx, all, h.services())
	if err != nil {
		return nil, nil, fmt.Errorf("apply refused, nothing changed: %w", err)
	}
	var blocking []string
	for _, m := range msgs {
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
		return nil, fmt.Errorf("%s: apply refused, nothing changed; analysis found:\n  %s", source, strings.Join(blocking, "\n  ")), nil
	}
	return warnings, nil, nil
}

// analysisTimeout bounds the analysis of one apply: far above what the
// largest config takes (analysis is linear in its size), it keeps a
// pathological one from holding a core.
const analysisTimeout = 20 * time.Second
