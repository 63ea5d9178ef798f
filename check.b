import _socket; echo _socket.SOCKRPC
