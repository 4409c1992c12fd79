package harness

import "os"

// RemoteHub returns a Hub that something other than the harness runs (a
// container), served at httpURL and used with the admin token; the CLI from
// binDir keeps its configuration in dir. It has no process: Proc is nil, so
// Restart, Stop, Kill and Tail are not for it.
func RemoteHub(binDir, dir, httpURL, token string) (*Hub, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &Hub{BinDir: binDir, HTTPURL: httpURL, Token: token, dir: dir}, nil
}
