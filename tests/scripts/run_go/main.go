// A static Go program (CGO_ENABLED=0: Go's own resolver, raw system calls, no libc)
// that test_run_go.sh runs under `sockrpc run`: looks up a name, fetches a URL by that
// name, then looks up a name the policy denies. Go's standard library only.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: run_go NAME URL DENIED-NAME")
		os.Exit(2)
	}
	addrs, err := net.LookupHost(os.Args[1])
	if err != nil {
		fmt.Println("lookup:", err)
		os.Exit(1)
	}
	fmt.Println("lookup:", addrs)
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Get(os.Args[2])
	if err != nil {
		fmt.Println("get:", err)
		os.Exit(1)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		fmt.Println("read:", err)
		os.Exit(1)
	}
	fmt.Printf("get: %d %s", resp.StatusCode, body)
	if _, err := net.LookupHost(os.Args[3]); err != nil {
		fmt.Println("denied lookup: failed")
	} else {
		fmt.Println("denied lookup: resolved")
	}
}
