package server

import (
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/internal/agentapi"
)

// reservedFiles are the open files kept for everything but agent
// connections: the HTTP API, the store, git mirrors, renders.
const reservedFiles = 1024

// fitOpenFiles lowers l.MaxConns so that a full agent port leaves
// reservedFiles of the process's open-file limit (which Go raises to the
// hard limit at start) for the rest of the hub.
func fitOpenFiles(l agentapi.Limits, log hclog.Logger) agentapi.Limits {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return l // unknown or unlimited
	}
	room := int64(rl.Cur) - reservedFiles
	if room < 64 {
		room = 64
	}
	if int64(l.MaxConns) > room {
		log.Warn("agent connections limited by the open-file limit", "agent_max_conns", room, "open_files", rl.Cur)
		l.MaxConns = int(room)
	}
	return l
}
