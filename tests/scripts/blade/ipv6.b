# IPv6 on ::1: server and client, addresses in info() and accept().
import socket { * }
import .common { * }

var server = Socket(AF_INET6)
show('bind ::1', @{ return server.bind(0, '::1') })
echo 'info: ${info(server)}'
show('listen', @{ return server.listen(5) })
var port = server.info().port
var client = Socket(AF_INET6)
show('connect ::1', @{ return client.connect('::1', port) })
var peer = server.accept()
state('accepted', peer)
echo 'accepted info: ${info(peer)}'
client.send('over six')
show('receive', @{ return peer.receive() })
show('get_address_info ::1', @{ return get_address_info('::1', nil, AF_INET6) })
show('get_address_info 127.0.0.1', @{ return get_address_info('127.0.0.1') })
show('get_address_info localhost', @{ return get_address_info('localhost') })
show('get_address_info unspec', @{ return get_address_info('127.0.0.1', nil, AF_UNSPEC) })
show('get_address_info https', @{ return get_address_info('127.0.0.1', 'https') })
show('get_address_info bad type', @{ return get_address_info('127.0.0.1', 5) })
show('get_address_info bad address', @{ return get_address_info(5) })
var any6 = Socket(AF_INET6)
show('bind *', @{ return any6.bind(0, '*') })
echo 'any info: ${info(any6)}'
peer.close()
client.close()
server.close()
any6.close()
