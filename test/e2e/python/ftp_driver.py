#!/usr/bin/env python3
"""Drive Python's ftplib against a Moat server and print JSON results.

Usage: python3 ftp_driver.py '<json spec>'   (or the spec on stdin with '-')

Spec:
  {"host": "127.0.0.1", "port": 2121, "user": "alice", "password": "...",
   "login": true, "pasv": true, "timeout": 15,
   "steps": [{"op": "cmd", "line": "SYST"}, {"op": "mlsd", "path": "/"}, ...]}

Every step yields {"op", "ok", "result"?, "error"?, "transcript"}; the
transcript holds every line ftplib sent ("> ...", PASS masked) and every reply
it read ("< ..."), so the caller can assert on the commands a real client uses
(PASV vs EPSV, PORT vs EPRT) as well as on the replies. A failing step does not
stop the run: its error text (the server's reply) is recorded instead.
The output is one JSON object: {"welcome", "steps": [...]} on stdout.
"""

import base64
import ftplib
import io
import json
import socket
import sys


class RecordingFTP(ftplib.FTP):
    """ftplib.FTP that records the conversation."""

    def __init__(self, *args, **kwargs):
        self.transcript = []
        super().__init__(*args, **kwargs)

    def putcmd(self, line):
        shown = 'PASS ****' if line.upper().startswith('PASS ') else line
        self.transcript.append('> ' + shown)
        super().putcmd(line)

    def getresp(self):
        try:
            resp = super().getresp()
        except ftplib.Error as e:
            self.transcript.append('< ' + str(e))
            raise
        self.transcript.append('< ' + resp)
        return resp


def b64(data):
    return base64.b64encode(data).decode('ascii')


def run_step(ftp, step):
    op = step['op']
    if op == 'cmd':
        return ftp.sendcmd(step['line'])
    if op == 'login':
        return ftp.login(step.get('user', ''), step.get('password', ''))
    if op == 'set_pasv':
        ftp.set_pasv(bool(step['value']))
        return None
    if op == 'pwd':
        return ftp.pwd()
    if op == 'cwd':
        return ftp.cwd(step['path'])
    if op == 'mkd':
        return ftp.mkd(step['path'])
    if op == 'rmd':
        return ftp.rmd(step['path'])
    if op == 'delete':
        return ftp.delete(step['path'])
    if op == 'rename':
        return ftp.rename(step['from'], step['to'])
    if op == 'size':
        return ftp.size(step['path'])
    if op == 'nlst':
        return ftp.nlst(*([step['path']] if 'path' in step else []))
    if op == 'mlsd':
        return [[name, facts] for name, facts in ftp.mlsd(step.get('path', ''), step.get('facts', []))]
    if op == 'retrlines':
        lines = []
        resp = ftp.retrlines(step['line'], lines.append)
        return {'reply': resp, 'lines': lines}
    if op == 'retrbinary':
        chunks = []
        resp = ftp.retrbinary(step['line'], chunks.append, rest=step.get('rest'))
        return {'reply': resp, 'data': b64(b''.join(chunks))}
    if op == 'storbinary':
        data = base64.b64decode(step['data'])
        return ftp.storbinary(step['line'], io.BytesIO(data), rest=step.get('rest'))
    if op == 'storlines':
        data = base64.b64decode(step['data'])
        return ftp.storlines(step['line'], io.BytesIO(data))
    if op == 'partial_retr':
        # Read only the first `bytes` of a download, then close the data
        # connection and tell the server with ABOR (as a plain command line,
        # not ftplib's abort(), which sends the line as TCP urgent data).
        conn = ftp.transfercmd(step['line'], rest=step.get('rest'))
        want = int(step['bytes'])
        got = b''
        while len(got) < want:
            chunk = conn.recv(want - len(got))
            if not chunk:
                break
            got += chunk
        conn.close()
        # ABOR answers with one or two replies (426 then 226, or 226/426 then
        # 225, depending on who noticed first); a NOOP after it marks the end.
        ftp.putcmd('ABOR')
        ftp.putcmd('NOOP')
        replies = []
        while True:
            resp = ftp.getmultiline()
            ftp.transcript.append('< ' + resp)
            if resp.startswith('200'):
                break
            replies.append(resp)
        return {'data': b64(got), 'replies': replies}
    if op == 'ftplib_abort':
        # ftplib's own abort(), after reading `bytes`: it sends "ABOR\r\n"
        # with MSG_OOB (RFC 959's Synch), so the final LF travels as TCP
        # urgent data. It reads one reply; a 426 is followed by the ABOR's own.
        conn = ftp.transfercmd(step['line'], rest=step.get('rest'))
        got = conn.recv(int(step['bytes']))
        replies = [ftp.abort()]
        ftp.transcript.append('< ' + replies[0])
        conn.close()
        if replies[0].startswith('426'):
            replies.append(ftp.getmultiline())
            ftp.transcript.append('< ' + replies[1])
        return {'data': b64(got), 'replies': replies}
    if op == 'quit':
        return ftp.quit()
    raise ValueError('unknown op ' + op)


def main():
    raw = sys.stdin.read() if sys.argv[1] == '-' else sys.argv[1]
    spec = json.loads(raw)
    out = {'steps': []}
    ftp = RecordingFTP(timeout=spec.get('timeout', 15))
    try:
        out['welcome'] = ftp.connect(spec['host'], spec['port'])
        out['family'] = 'ipv6' if ftp.af == socket.AF_INET6 else 'ipv4'
        ftp.set_pasv(spec.get('pasv', True))
        if spec.get('login', True):
            out['login'] = ftp.login(spec.get('user', 'alice'), spec['password'])
        for step in spec['steps']:
            start = len(ftp.transcript)
            entry = {'op': step['op']}
            try:
                entry['result'] = run_step(ftp, step)
                entry['ok'] = True
            except (ftplib.Error, OSError, EOFError) as e:
                entry['ok'] = False
                entry['error'] = str(e)
                entry['error_type'] = type(e).__name__
            entry['transcript'] = ftp.transcript[start:]
            out['steps'].append(entry)
    except (ftplib.Error, OSError, EOFError) as e:
        out['fatal'] = '%s: %s' % (type(e).__name__, e)
    finally:
        try:
            ftp.close()
        except OSError:
            pass
    json.dump(out, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
