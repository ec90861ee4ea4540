package cluster

import (
	"net"
	"os"
)

func netListen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

func removeAll(dir string) error { return os.RemoveAll(dir) }
