"""A small TCP service for the real-program suite (python3 case).

Threads: the main thread serves one request per connection on 127.0.0.1:PORT;
a ThreadPoolExecutor of 8 threads computes tasks whose results a queue.Queue
consumer thread adds up.  All of them exist before the freeze.

  who            -> pid=P threads=T
  set K V        -> ok
  get K          -> value=V   (value= if absent)
  work N         -> pid=P done=N sum=S   (8 pool threads meet at a barrier,
                                          then N tasks go pool -> queue -> consumer)
  signals        -> pid=P usr1=N         (SIGUSR1 handled so far)
"""
import concurrent.futures
import os
import queue
import signal
import socket
import sys
import threading

POOL = 8
store = {}
usr1 = 0
results = queue.Queue()
totals = {"n": 0, "sum": 0}
cv = threading.Condition()
pool = concurrent.futures.ThreadPoolExecutor(max_workers=POOL)


def on_usr1(signum, frame):
    global usr1
    usr1 += 1


def consumer():
    while True:
        v = results.get()
        with cv:
            totals["n"] += 1
            totals["sum"] += v
            cv.notify_all()


def task(i):
    results.put(i * i % 7919)


def meet(barrier):
    barrier.wait()


def work(n):
    barrier = threading.Barrier(POOL, timeout=30)
    for f in [pool.submit(meet, barrier) for _ in range(POOL)]:
        f.result(timeout=60)
    with cv:
        totals["n"] = totals["sum"] = 0
    for i in range(n):
        pool.submit(task, i)
    with cv:
        if not cv.wait_for(lambda: totals["n"] == n, timeout=60):
            return "timeout done=%d" % totals["n"]
        return "pid=%d done=%d sum=%d" % (os.getpid(), totals["n"], totals["sum"])


def answer(line):
    words = line.split()
    if words[:1] == ["who"]:
        return "pid=%d threads=%d" % (os.getpid(), threading.active_count())
    if words[:1] == ["set"] and len(words) == 3:
        store[words[1]] = words[2]
        return "ok"
    if words[:1] == ["get"] and len(words) == 2:
        return "value=" + store.get(words[1], "")
    if words[:1] == ["work"] and len(words) == 2:
        return work(int(words[1]))
    if words[:1] == ["signals"]:
        return "pid=%d usr1=%d" % (os.getpid(), usr1)
    return "error"


def main():
    signal.signal(signal.SIGUSR1, on_usr1)
    threading.Thread(target=consumer, name="consumer", daemon=True).start()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(sys.argv[1])))
    srv.listen(64)
    work(100)   # every pool thread exists before anyone connects
    while True:
        conn, _ = srv.accept()
        with conn:
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            conn.sendall((answer(data.decode()) + "\n").encode())


main()
