package xdsserver

import "testing"

func TestTypeStatusTransitions(t *testing.T) {
	steps := []struct {
		name  string
		do    func(p *proxyState)
		want  string
		nack  string
		acked string
	}{
		{"never asked", func(*proxyState) {}, StatusIgnored, "", ""},
		{"subscribed", func(p *proxyState) { p.typeStatus(RouteType).Subscribed = true }, StatusNotSent, "", ""},
		{"sent", func(p *proxyState) { p.sent(RouteType, "v1", "1") }, StatusStale, "", ""},
		{"acked", func(p *proxyState) { p.acked(RouteType, "1") }, StatusSynced, "", "v1"},
		{"sent again", func(p *proxyState) { p.sent(RouteType, "v2", "2") }, StatusStale, "", "v1"},
		{"late ack of the old nonce", func(p *proxyState) { p.acked(RouteType, "1") }, StatusStale, "", "v1"},
		{"nacked", func(p *proxyState) { p.nacked(RouteType, "2", "bad route") }, StatusStale, "bad route", "v1"},
		{"fixed and acked", func(p *proxyState) { p.sent(RouteType, "v3", "3"); p.acked(RouteType, "3") }, StatusSynced, "", "v3"},
	}
	p := &proxyState{info: &proxyInfo{}, types: map[string]*TypeStatus{}}
	for _, s := range steps {
		s.do(p)
		got := p.status().Types[RouteType]
		if got.Status != s.want || got.Nacked != s.nack || got.Acked != s.acked {
			t.Errorf("%s: got %+v, want status %s nack %q acked %q", s.name, got, s.want, s.nack, s.acked)
		}
	}
}
