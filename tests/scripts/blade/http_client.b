# Blade's own http client, unchanged: one GET, its status and body.
import http
import os
import _socket

var response = http.get('http://127.0.0.1:${os.args[2]}${os.args[3]}')
echo 'status=${response.status} body=${response.body.to_string()} sockrpc=${_socket.SOCKRPC}'
