import http
echo http.get('http://127.0.0.1:44471/').body.to_string()
