"""pyftpdlib peer for Moat's benchmark: one user, one root, a passive range, optional explicit FTPS.

Usage: pyftpdlib_server.py HOST PORT ROOT USER PASSWORD PASV_MIN PASV_MAX [CERT KEY]
"""
import logging
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def main() -> None:
    host, port, root, user, password, pmin, pmax = sys.argv[1:8]
    cert = sys.argv[8] if len(sys.argv) > 9 else None
    key = sys.argv[9] if len(sys.argv) > 9 else None
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, root, perm="elradfmwMT")
    handler = FTPHandler
    if cert:
        try:
            from pyftpdlib.handlers import TLS_FTPHandler
            handler = TLS_FTPHandler
            handler.certfile = cert
            handler.keyfile = key
            handler.tls_control_required = False
            handler.tls_data_required = False
        except ImportError as e:  # no pyOpenSSL: plain only
            print(f"pyftpdlib: no TLS ({e})", file=sys.stderr)
    handler.authorizer = authorizer
    handler.passive_ports = range(int(pmin), int(pmax) + 1)
    handler.banner = "pyftpdlib ready"
    logging.basicConfig(level=logging.WARNING)
    server = FTPServer((host, int(port)), handler)
    server.max_cons = 0
    server.max_cons_per_ip = 0
    print("listening", flush=True)
    server.serve_forever(handle_exit=True)


if __name__ == "__main__":
    main()
