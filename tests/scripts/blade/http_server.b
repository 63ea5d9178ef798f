# Blade's own http server, unchanged: it answers GET /hello and GET /stop (which ends it).
import http
import os
import _socket

var server = http.server(to_number(os.args[2]), '127.0.0.1')
server.handle('GET', '/hello', @(request, response) {
  response.write('hello ${request.queries.get("name", "?")}, sockrpc=${_socket.SOCKRPC}')
})
server.handle('GET', '/stop', @(request, response) {
  response.write('bye')
  server.close()
})
server.listen()
