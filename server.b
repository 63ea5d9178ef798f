import http
var s = http.server(44471, '127.0.0.1')
s.handle('GET', '/', @(request, response) { response.write('hello') })
s.listen()
