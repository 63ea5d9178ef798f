# Helpers of the differential scripts: each prints what a call returned or raised, so
# stock Blade and the sockrpc Blade can be compared line by line.
def show(label, f) {
  catch {
    echo '${label}: ${f()}'
  } as e
  if e echo '${label} raised ${e.type}: ${e.message}'
}

# Only the exception's type: where docs say the two messages differ (the test says why).
def show_type(label, f) {
  catch {
    echo '${label}: ${f()}'
  } as e
  if e echo '${label} raised ${e.type}'
}

def state(label, s) {
  echo '${label}: client=${s.is_client} bound=${s.is_bound} connected=${s.is_connected} ' +
    'listening=${s.is_listening} closed=${s.is_closed} shutdown=${s.is_shutdown} ' +
    'blocking=${s.is_blocking} reason=${s.shutdown_reason} host=${s.host} ' +
    'family=${s.family} type=${s.type} protocol=${s.protocol}'
}

# The local address without the port the kernel picked.
def info(s) {
  var i = s.info()
  return '{address: ${i.address}, ipv6: ${i.ipv6}, family: ${i.family}, port>0: ${i.port > 0}}'
}
