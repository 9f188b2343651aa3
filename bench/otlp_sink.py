#!/usr/bin/env python3
"""A stand-in OTLP/HTTP collector for bench/run.sh's events row: reads every POST /v1/traces and answers
200 {} (it decodes nothing, so it costs the machine as little as a collector can). Prints PORT=N."""
import http.server
import sys


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
print(f"PORT={server.server_address[1]}", flush=True)
sys.stdout.close()
server.serve_forever()
