// An independent ttrpc client for the agent tests: containerd/ttrpc (Debian's 1.1.1) does the
// framing; the request payload is passed in hex (encoded by the test with the project's protos
// or hand-made), so this program needs no generated Go code.
//
//	ttrpc-client [-n N] ADDR SERVICE METHOD HEXPAYLOAD
//
// ADDR is unix:///path or tcp://host:port. With -n, N calls run concurrently on one connection.
// Prints one line per call: "code=<grpc code> payload=<hex> msg=<message>".
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/status"
)

// raw is a protobuf message whose wire bytes are given as is.
type raw struct{ b []byte }

func (r *raw) Reset()                   { r.b = nil }
func (r *raw) String() string           { return hex.EncodeToString(r.b) }
func (r *raw) ProtoMessage()            {}
func (r *raw) Marshal() ([]byte, error) { return r.b, nil }
func (r *raw) Unmarshal(b []byte) error { r.b = append([]byte(nil), b...); return nil }

func dial(addr string) (net.Conn, error) {
	switch {
	case strings.HasPrefix(addr, "unix://"):
		return net.Dial("unix", strings.TrimPrefix(addr, "unix://"))
	case strings.HasPrefix(addr, "tcp://"):
		return net.Dial("tcp", strings.TrimPrefix(addr, "tcp://"))
	}
	return nil, fmt.Errorf("bad address %q", addr)
}

func main() {
	n := flag.Int("n", 1, "concurrent calls on one connection")
	flag.Parse()
	if flag.NArg() != 4 {
		fmt.Fprintln(os.Stderr, "usage: ttrpc-client [-n N] ADDR SERVICE METHOD HEXPAYLOAD")
		os.Exit(2)
	}
	payload, err := hex.DecodeString(flag.Arg(3))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad hex payload:", err)
		os.Exit(2)
	}
	conn, err := dial(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()

	lines := make([]string, *n)
	var wg sync.WaitGroup
	for i := 0; i < *n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			var resp raw
			err := client.Call(ctx, flag.Arg(1), flag.Arg(2), &raw{b: payload}, &resp)
			st, _ := status.FromError(err)
			lines[i] = fmt.Sprintf("code=%d payload=%s msg=%s", int(st.Code()), hex.EncodeToString(resp.b), st.Message())
		}(i)
	}
	wg.Wait()
	for _, l := range lines {
		fmt.Println(l)
	}
}
