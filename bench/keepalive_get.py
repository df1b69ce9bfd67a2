# N keep-alive GETs of one URL on one connection, optionally with one header
# (bench/auth.sh); exits non-zero on any answer but 200.
import http.client, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
hdr = {}
if len(sys.argv) > 4 and sys.argv[4]: k, v = sys.argv[4].split(': ', 1); hdr[k] = v
c = http.client.HTTPConnection('127.0.0.1', port)
for i in range(n):
    c.request('GET', path, headers=hdr); r = c.getresponse(); r.read()
    if r.status != 200: sys.exit(f'status {r.status}')
