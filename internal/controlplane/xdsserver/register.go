package xdsserver

import (
	"errors"
	"maps"
	"time"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/store"
	"github.com/weft-mesh/weft/internal/controlplane/translate"
)

// autoRegister stores the ServiceEntry (if absent) and WorkloadEntry of a
// proxy that announced WEFT_SERVICE, and remembers the WorkloadEntry so it is
// removed after the proxy leaves. Errors are logged: a proxy is served even
// when it cannot be registered.
func (s *Server) autoRegister(p *proxyState) {
	info := p.info
	if info.service == nil {
		return
	}
	s.regMu.Lock()
	defer s.regMu.Unlock()
	px := info.proxy
	weKey := config.Key{Kind: config.KindWorkloadEntry, Namespace: px.Namespace, Name: px.Name}
	if existing, ok := s.opts.Store.Get(weKey); ok && !isAutoRegistered(existing) {
		s.log.Warn("not auto-registering: a WorkloadEntry of that name exists", "proxy", px.ID, "workload_entry", weKey.String())
		return
	}
	var objs []*config.Object
	seKey := config.Key{Kind: config.KindServiceEntry, Namespace: px.Namespace, Name: info.service.Name}
	if _, ok := s.opts.Store.Get(seKey); !ok {
		objs = append(objs, serviceEntry(info))
	}
	objs = append(objs, workloadEntry(info))
	if _, err := s.opts.Store.Apply(objs); err != nil {
		s.log.Error("auto-registering proxy", "proxy", px.ID, "error", err)
		return
	}
	s.mu.Lock()
	p.workload = &weKey
	delete(s.pending, weKey)
	s.mu.Unlock()
	s.log.Info("auto-registered proxy", "proxy", px.ID, "service", info.service.Name, "workload_entry", weKey.String())
}

func isAutoRegistered(o *config.Object) bool {
	return o.Annotations[config.AnnotationAutoRegistered] == "true"
}

func serviceEntry(info *proxyInfo) *config.Object {
	svc, ns := info.service, info.proxy.Namespace
	spec := &networking.ServiceEntry{
		Hosts:            []string{svc.Name + "." + ns + ".svc." + config.DomainSuffix},
		Location:         networking.ServiceEntry_MESH_INTERNAL,
		Resolution:       networking.ServiceEntry_STATIC,
		WorkloadSelector: &networking.WorkloadSelector{Labels: map[string]string{"app": svc.Name}},
	}
	for _, p := range svc.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = config.ProtocolFromPortName(p.Name)
		}
		if proto == config.ProtocolAuto {
			proto = "" // Istio's way to say "detect it", and so weft's registry reads it back
		}
		spec.Ports = append(spec.Ports, &networking.ServicePort{Number: p.Number, Protocol: proto, Name: p.Name})
	}
	return &config.Object{
		Kind: config.KindServiceEntry, APIVersion: config.DefaultAPIVersion(config.KindServiceEntry),
		Name: svc.Name, Namespace: ns, Spec: spec, Source: store.SourceAutoRegistration,
		Annotations: map[string]string{config.AnnotationAutoRegistered: "true"},
	}
}

func workloadEntry(info *proxyInfo) *config.Object {
	px := info.proxy
	labels := maps.Clone(px.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	if _, ok := labels["app"]; !ok {
		labels["app"] = info.service.Name
	}
	annotations := map[string]string{config.AnnotationAutoRegistered: "true"}
	if px.MTLS {
		annotations[config.AnnotationMTLS] = "true"
	}
	if px.Type == translate.ProxyRouter {
		annotations[config.AnnotationGateway] = "true"
	}
	if info.workload != "" && info.workload != px.Name {
		annotations[config.AnnotationWorkload] = info.workload
	}
	return &config.Object{
		Kind: config.KindWorkloadEntry, APIVersion: config.DefaultAPIVersion(config.KindWorkloadEntry),
		Name: px.Name, Namespace: px.Namespace, Source: store.SourceAutoRegistration,
		Annotations: annotations,
		Spec:        &networking.WorkloadEntry{Address: px.IP, Labels: labels, ServiceAccount: px.ServiceAccount, Locality: px.Locality},
	}
}

// adoptPersisted schedules the removal of auto-registered WorkloadEntries
// left from an earlier run, unless their proxy reconnects within the grace.
func (s *Server) adoptPersisted() {
	deadline := time.Now().Add(s.opts.RegistrationGrace)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.opts.Store.List(config.KindWorkloadEntry, "") {
		if !isAutoRegistered(o) || s.heldLocked(o.Key()) {
			continue
		}
		if _, ok := s.pending[o.Key()]; !ok {
			s.pending[o.Key()] = deadline
		}
	}
	s.wakeLoop()
}

// heldLocked reports whether a connected proxy registered key. s.mu is held.
func (s *Server) heldLocked(key config.Key) bool {
	for _, p := range s.proxies {
		if p.workload != nil && *p.workload == key {
			return true
		}
	}
	return false
}

// expireRegistrations deletes the WorkloadEntries whose grace ended before
// now and whose proxy did not come back; it returns the next deadline, if any.
func (s *Server) expireRegistrations(now time.Time) (next time.Time, ok bool) {
	var due []config.Key
	s.mu.Lock()
	for key, deadline := range s.pending {
		switch {
		case s.heldLocked(key):
			delete(s.pending, key)
		case !deadline.After(now):
			delete(s.pending, key)
			due = append(due, key)
		case !ok || deadline.Before(next):
			next, ok = deadline, true
		}
	}
	s.mu.Unlock()
	for _, key := range due {
		s.removeRegistration(key)
	}
	return next, ok
}

func (s *Server) removeRegistration(key config.Key) {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	s.mu.Lock()
	held := s.heldLocked(key)
	s.mu.Unlock()
	if held { // the proxy came back meanwhile
		return
	}
	o, found := s.opts.Store.Get(key)
	if !found || !isAutoRegistered(o) {
		return
	}
	if _, err := s.opts.Store.Delete([]config.Key{key}); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("removing auto-registered workload", "workload_entry", key.String(), "error", err)
		return
	}
	s.log.Info("removed auto-registered workload: its proxy is gone", "workload_entry", key.String())
}
