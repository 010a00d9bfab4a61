package dataplane

import (
	"sort"
	"strconv"
	"time"
)

// rlevel is one priority level of a cluster: its endpoints and balancer.
type rlevel struct {
	priority  int
	endpoints []*rendpoint
	lb        picker
}

func hasPriorities(eps []*rendpoint) bool {
	for _, e := range eps {
		if e.priority != 0 {
			return true
		}
	}
	return false
}

// priorityLevels splits a cluster's endpoints by priority (locality
// failover), each level balanced on its own as the cluster's policy says.
func priorityLevels(cl *rcluster, st *state) []*rlevel {
	byPrio := map[int][]*rendpoint{}
	for _, e := range cl.endpoints {
		byPrio[e.priority] = append(byPrio[e.priority], e)
	}
	var out []*rlevel
	for p, eps := range byPrio {
		lv := &rlevel{priority: p, endpoints: eps}
		switch cl.lbName {
		case "ROUND_ROBIN":
			lv.lb = newRoundRobin(eps, st.rrPosition(cl.name+"|p"+strconv.Itoa(p)))
		default:
			lv.lb = cl.lb
		}
		out = append(out, lv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].priority < out[j].priority })
	return out
}

// pickLevel picks in the best priority level that has a healthy endpoint,
// so traffic fails over to farther localities only when the nearer ones
// are ejected or gone, as Envoy's priorities do (without its 1.4
// overprovisioning: a level keeps all its traffic while any host is up).
func (cl *rcluster) pickLevel() *rendpoint {
	now := time.Now()
	for _, lv := range cl.levels {
		for _, e := range lv.endpoints {
			if !e.ejected(now) {
				return pickIn(lv.lb, lv.endpoints, cl.outlier)
			}
		}
	}
	return pickIn(cl.levels[0].lb, cl.levels[0].endpoints, cl.outlier)
}
