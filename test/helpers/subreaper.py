"""
Runs a command as a child subreaper (prctl PR_SET_CHILD_SUBREAPER): whatever the command leaves
behind when it exits (a child still running, or one dead but not reaped) is reparented here rather
than to init. After the command exits, lists those processes, kills and reaps them, and writes
{"code": <the command's exit code>, "orphans": [{"pid", "comm", "state"}]} as JSON to RESULT.

    python3 subreaper.py RESULT COMMAND [ARG]...
"""
import ctypes
import json
import os
import signal
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36

libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit(f"subreaper: prctl failed: {os.strerror(ctypes.get_errno())}")

result, argv = sys.argv[1], sys.argv[2:]
code = subprocess.Popen(argv).wait()

orphans = []
for tid in os.listdir('/proc/self/task'):
    with open(f'/proc/self/task/{tid}/children') as f:
        for pid in f.read().split():
            with open(f'/proc/{pid}/stat') as s:
                stat = s.read()
            # comm is in parentheses and may hold spaces; the state follows the last ')'.
            orphans.append({'pid': int(pid), 'comm': stat[stat.index('(') + 1:stat.rindex(')')], 'state': stat[stat.rindex(')') + 2]})
for p in orphans:
    try:
        os.kill(p['pid'], signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(p['pid'], 0)

with open(result, 'w') as f:
    json.dump({'code': code, 'orphans': orphans}, f)
