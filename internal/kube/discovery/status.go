package discovery

import (
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	analysisv1alpha1 "istio.io/api/analysis/v1alpha1"
	metav1alpha1 "istio.io/api/meta/v1alpha1"

	"github.com/weft-mesh/weft/internal/analyze"
)

// ConditionReconciled is the status condition weft writes on every Istio
// object it reads, as Istio's: True when the object is in weft's config,
// False (reason Invalid) when it was refused.
const ConditionReconciled = "Reconciled"

// Reasons of the Reconciled condition.
const (
	ReasonAccepted = "Accepted"
	ReasonInvalid  = "Invalid"
)

// maxConditionMessage bounds the condition's message (analysis can be long).
const maxConditionMessage = 2048

// desiredStatus is the status an object of generation gen should have:
// refused (invalid is its validation error) or accepted with the analysis
// messages about it. cur is its status now; its other conditions are kept,
// and the Reconciled condition's transition time is kept while its status
// does not change, so an unchanged verdict gives an equal status (and no write).
func desiredStatus(gen int64, invalid error, msgs []analyze.Message, cur *metav1alpha1.IstioStatus, now time.Time) *metav1alpha1.IstioStatus {
	cond := &metav1alpha1.IstioCondition{
		Type: ConditionReconciled, Status: "True", Reason: ReasonAccepted,
		Message: "accepted by weft", ObservedGeneration: gen,
	}
	st := &metav1alpha1.IstioStatus{ObservedGeneration: gen}
	if invalid != nil {
		cond.Status, cond.Reason = "False", ReasonInvalid
		cond.Message = "refused by weft (the last valid version, if any, stays in use): " + invalid.Error()
		st.ValidationMessages = []*analysisv1alpha1.AnalysisMessageBase{messageBase(analyze.SchemaValidationError)}
	} else if len(msgs) > 0 {
		texts := make([]string, len(msgs))
		for i, m := range msgs {
			texts[i] = m.String()
			st.ValidationMessages = append(st.ValidationMessages, messageBase(m.Code))
		}
		cond.Message += "; analysis: " + strings.Join(texts, "; ")
	}
	if len(cond.Message) > maxConditionMessage {
		cond.Message = cond.Message[:maxConditionMessage-3] + "..."
	}
	cond.LastTransitionTime = timestamppb.New(now.Truncate(time.Second))
	for _, c := range cur.GetConditions() {
		if c.GetType() != ConditionReconciled {
			st.Conditions = append(st.Conditions, proto.Clone(c).(*metav1alpha1.IstioCondition))
		} else if c.GetStatus() == cond.Status && c.GetLastTransitionTime() != nil {
			cond.LastTransitionTime = proto.Clone(c.GetLastTransitionTime()).(*timestamppb.Timestamp)
		}
	}
	st.Conditions = append(st.Conditions, cond)
	return st
}

// messageBase is an analysis message as IstioStatus holds it (code, name,
// level, documentation; the text goes in the condition's message).
func messageBase(c analyze.Code) *analysisv1alpha1.AnalysisMessageBase {
	level := analysisv1alpha1.AnalysisMessageBase_INFO
	switch c.Level {
	case analyze.Error:
		level = analysisv1alpha1.AnalysisMessageBase_ERROR
	case analyze.Warning:
		level = analysisv1alpha1.AnalysisMessageBase_WARNING
	}
	return &analysisv1alpha1.AnalysisMessageBase{
		Type:             &analysisv1alpha1.AnalysisMessageBase_Type{Name: c.Name, Code: c.ID},
		Level:            level,
		DocumentationUrl: c.DocURL(),
	}
}
