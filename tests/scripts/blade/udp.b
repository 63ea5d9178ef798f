# UDP: send_to and receive_from on unconnected sockets, connected datagrams, one
# datagram a receive, and what a datagram socket refuses.
import socket { * }
import .common { * }

var server = Socket(AF_INET, SOCK_DGRAM, 0)
state('udp fresh', server)
show('bind', @{ return server.bind(0) })
var port = server.info().port
echo 'udp info: ${info(server)}'
# A failed call closes the socket (Blade's _check_error): listen on a spare one.
var spare = Socket(AF_INET, SOCK_DGRAM, 0)
spare.bind(0)
show('listen', @{ return spare.listen() })

var client = Socket(AF_INET, SOCK_DGRAM, 0)
show('send_to', @{ return client.send_to('127.0.0.1', port, nil, 'ping') })
var got = server.receive_from()
echo 'receive_from: data=${got.data} host=${got.host} port>0: ${got.port > 0}'
show('send_to bytes', @{ return client.send_to('127.0.0.1', port, nil, bytes([1, 2, 3])) })
show('receive_from(2)', @{ return server.receive_from(2).data.length() })
show('receive on unconnected', @{ return server.receive() })
show('send_to no port', @{ return Socket(AF_INET, SOCK_DGRAM, 0).send_to('127.0.0.1') })
show('send_to bad message', @{ return client.send_to('127.0.0.1', port, nil, 12) })

# A connected datagram socket: send, and one datagram per receive.
show('connect', @{ return client.connect('127.0.0.1', port) })
show('send', @{ return client.send('one') })
show('send', @{ return client.send('two') })
echo 'first: ${server.receive_from().data}'
echo 'second: ${server.receive_from().data}'
client.send('three')
var r = server.receive_from()
show('reply', @{ return server.send_to(r.host, r.port, nil, 'back') })
show('receive one datagram', @{ return client.receive() })
show('SO_TYPE', @{ return client.get_option(SO_TYPE) })
show('SO_BROADCAST', @{ return client.set_option(SO_BROADCAST, true) })
show('get SO_BROADCAST', @{ return client.get_option(SO_BROADCAST) })
show('set_option RCVTIMEO', @{ return client.set_option(SO_RCVTIMEO, 150) })
show('receive timeout', @{ return client.receive() })
state('after timeout', client)
show('close', @{ return server.close() })
