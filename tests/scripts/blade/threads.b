# Blade threads sharing the binding: each thread connects to one server, sends and reads
# its own messages; the main thread accepts and echoes. One connection to the daemon
# serves them all.
import socket { * }
import thread
import _socket

var server = Socket()
server.bind(0)
server.listen()
var port = server.info().port
var count = 4
var rounds = 20

var results = [0] * count
var threads = []
for i in 0..count {
  threads.append(thread.start(@(t, n) {
    var c = Socket()
    c.connect('127.0.0.1', port)
    var ok = 0
    for r in 0..rounds {
      var msg = 't${n}r${r};'
      c.send(msg)
      var got = ''
      while got.length() < msg.length() {
        var part = c.receive()
        if part == nil break
        got += part
      }
      if got == msg ok++
    }
    c.close()
    results[n] = ok
  }, [i]))
}

# Echo for every client until it closes, a thread each.
var echoes = []
for i in 0..count {
  var peer = server.accept()
  echoes.append(thread.start(@(t, p) {
    while true {
      var data
      catch { data = p.receive() } as e
      if e or data == nil or data == '' break
      p.send(data)
    }
    p.close()
  }, [peer]))
}
for th in threads th.await()
var total = 0
for r in results total += r
for th in echoes th.await()
server.close()
echo 'round trips ok: ${total} of ${count * rounds}'
