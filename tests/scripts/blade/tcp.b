# TCP client and server in one process: create, bind, listen, accept, connect, send and
# receive in every form, options, blocking mode, shutdown and close.
import socket { * }
import .common { * }
import os

var server = Socket()
state('fresh', server)
echo 'fresh info: ${info(server)}'
show('bind', @{ return server.bind(0) })
state('bound', server)
echo 'bound info: ${info(server)}'
var port = server.info().port
show('listen', @{ return server.listen() })
state('listening', server)
show('SO_ACCEPTCONN', @{ return server.get_option(SO_ACCEPTCONN) })

var client = Socket()
show('connect', @{ return client.connect('127.0.0.1', port) })
state('client', client)
var peer = server.accept()
state('accepted', peer)
echo 'accepted host=${peer.host} port matches: ${peer.port == client.info().port}'
echo 'accepted info: ${info(peer)}'

# Strings, bytes and a file's content.
show('send string', @{ return client.send('hello') })
show('receive', @{ return peer.receive() })
show('send bytes', @{ return client.send(bytes([104, 105, 0, 33])) })
show('receive bytes', @{ return peer.receive().length() })
var path = os.cwd() + '/payload.txt'
file(path, 'w').write('from a file\n')
show('send file', @{ return client.send(file(path)) })
show('receive file', @{ return peer.receive() })
file(path).delete()

# Lengths, peeking, read, and receive(0) with data pending.
peer.send('0123456789')
show('receive(4)', @{ return client.receive(4) })
show('receive peek', @{ return client.receive(3, 2) })
show('receive(0)', @{ return client.receive(0) })
show('receive rest', @{ return client.receive() })
peer.send('abcdef')
show('client read(4)', @{ return client.read(4) })
show('client read', @{ return client.read() })
client.send('xyz')
show('peer read(3)', @{ return peer.read(3) })

# Options.
show('SO_TYPE', @{ return client.get_option(SO_TYPE) })
show('SO_ERROR', @{ return client.get_option(SO_ERROR) })
show('set SO_KEEPALIVE', @{ return client.set_option(SO_KEEPALIVE, true) })
show('get SO_KEEPALIVE', @{ return client.get_option(SO_KEEPALIVE) })
show('set SO_REUSEADDR off', @{ return client.set_option(SO_REUSEADDR, false) })
show('get SO_REUSEADDR', @{ return client.get_option(SO_REUSEADDR) })
show('set SO_SNDBUF number', @{ return client.set_option(SO_SNDBUF, 8192) })
show('set SO_TYPE', @{ return client.set_option(SO_TYPE, true) })
show('set SO_LINGER', @{ return client.set_option(SO_LINGER, 1) })
show('set SO_SNDTIMEO', @{ return client.set_option(SO_SNDTIMEO, 1500) })
show('get SO_SNDTIMEO', @{ return client.get_option(SO_SNDTIMEO) })
show('set SO_RCVTIMEO', @{ return peer.set_option(SO_RCVTIMEO, 200) })
show('get SO_RCVTIMEO', @{ return peer.get_option(SO_RCVTIMEO) })
show('set option nil', @{ return peer.set_option(SO_KEEPALIVE) })
show('get option string', @{ return peer.get_option('x') })

# The receive timeout: nothing arrives within 200 ms (Blade closes the socket then).
show('receive timeout', @{ return peer.receive() })
state('after timeout', peer)

# Blocking mode.
show('set_blocking false', @{ return server.set_blocking(false) })
show('set_blocking 1', @{ return server.set_blocking(1) })
show('accept nothing pending', @{ return server.accept() })
show('set_blocking true', @{ return server.set_blocking(true) })

# Shutdown and end of stream.
var c2 = Socket()
c2.connect('127.0.0.1', port)
var p2 = server.accept()
show('shutdown 9', @{ return c2.shutdown(9) })
show('shutdown WR', @{ return c2.shutdown(SHUT_WR) })
state('shut down', c2)
show('shutdown WR again', @{ return c2.shutdown(SHUT_WR) })
show('receive at end', @{ return p2.receive() })
show('read at end', @{ return p2.read() })
show('send after shutdown', @{ return c2.send('x') })
show('close', @{ return c2.close() })
state('closed', c2)
show('close again', @{ return c2.close() })
show('send closed', @{ return c2.send('x') })
show('receive closed', @{ return c2.receive() })
show('shutdown closed', @{ return c2.shutdown(SHUT_RDWR) })
show('set_option closed', @{ return c2.set_option(SO_KEEPALIVE, true) })
p2.close()
client.close()
server.close()
