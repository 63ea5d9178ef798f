# Blade's ssl.TLSSocket, unchanged: connect to 127.0.0.1:PORT, one request, the reply.
import ssl
import os
catch {
  var t = ssl.TLSSocket()
  if t.connect('127.0.0.1', to_number(os.args[2])) {
    t.send('ping\n')
    echo 'tls reply: ${t.receive()}'
  }
  t.close()
} as e
if e echo '${e.type}: ${e.message}'
