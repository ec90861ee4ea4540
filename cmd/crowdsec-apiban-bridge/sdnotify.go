package main

import (
	"context"
	"net"
	"os"
	"strconv"
	"time"
)

// notifier speaks systemd's sd_notify protocol: one datagram per state
// change to the unix socket named by NOTIFY_SOCKET. Without that variable
// (not under systemd, or Type is not notify) every call does nothing.
type notifier struct {
	socket string
}

func newNotifier(getenv func(string) string) notifier {
	return notifier{socket: getenv("NOTIFY_SOCKET")}
}

// send writes one message such as "READY=1". Failures are ignored on
// purpose: systemd going away must not stop the bridge.
func (n notifier) send(msg string) {
	if n.socket == "" {
		return
	}
	name := n.socket
	if name[0] == '@' { // abstract socket namespace
		name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = conn.Write([]byte(msg))
}

// watchdogInterval is half of WATCHDOG_USEC (systemd's advice), or 0 when
// the watchdog is off or meant for another process (WATCHDOG_PID).
func watchdogInterval(getenv func(string) string) time.Duration {
	usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// watchdog pings systemd until ctx ends. It proves the process and its
// scheduler are alive; a sync that is slow because APIBAN paces us is not
// a reason to be killed, so it does not wait on the sync loop.
func (n notifier) watchdog(ctx context.Context, every time.Duration) {
	if every <= 0 || n.socket == "" {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.send("WATCHDOG=1")
		}
	}
}
