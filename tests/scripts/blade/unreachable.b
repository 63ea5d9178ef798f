# Unreachable networks and connect timeouts. Run only where nothing routes (test_blade.sh
# runs in a namespace of its own with loopback alone): no packet can leave.
import socket { * }
import .common { * }

show('connect unreachable', @{ return Socket().connect('192.0.2.1', 80) })
show('connect unreachable v6', @{ return Socket(AF_INET6).connect('2001:db8::1', 80) })

# A listener whose accept queue is full (backlog 0, one connection waiting) drops further
# SYNs: a connect with a timeout then times out.
var full = Socket()
full.bind(0)
full.listen(0)
var port = full.info().port
var first = Socket()
show('connect queued', @{ return first.connect('127.0.0.1', port) })
var second = Socket()
# The message differs: the daemon says "Connection timed out"; stock Blade retries the
# timed-out socket for each of getaddrinfo's results (stream, datagram, raw) and reports
# the retry's "Operation already in progress".
show_type('connect timeout', @{ return second.connect('127.0.0.1', port, 300) })
state('after timeout', second)
