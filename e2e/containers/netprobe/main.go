// Command netprobe opens a TCP connection to each host:port argument and
// prints one line per address: "ADDR open" or "ADDR closed: REASON". The
// container tier runs it in another container's network namespace
// (docker run --network container:NAME) to see what that container can reach.
package main

import (
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	timeout := 3 * time.Second
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: netprobe HOST:PORT...")
		os.Exit(2)
	}
	for _, addr := range os.Args[1:] {
		conn, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			fmt.Printf("%s closed: %v\n", addr, err)
			continue
		}
		_ = conn.Close()
		fmt.Printf("%s open\n", addr)
	}
}
