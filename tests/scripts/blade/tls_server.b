# Blade's ssl.TLSSocket as a server, unchanged: accept one TLS client, read its line, answer.
# Arguments: port, certificate, key. (Stock Blade's answer fails, "protocol is shutdown",
# after the read: its ssl package's bug, the same either way; the read shows the accepted
# socket carries TLS.)
import ssl
import os
var context = ssl.SSLContext(ssl.TLS_server_method)
context.set_verify(ssl.SSL_VERIFY_NONE)
context.load_certs(os.args[3], os.args[4])
var server = ssl.TLSSocket(nil, context)
server.bind(to_number(os.args[2]))
server.listen()
var client = server.accept()
var line = client.receive(10)
echo 'got ${line}'
client.send('tls echo: ${line}')
client.close()
server.close()
