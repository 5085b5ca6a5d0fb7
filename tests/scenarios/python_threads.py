#!@PYTHON3@
# python_threads — a real interpreter under libnuwa: CPython's threads (GIL
# hand-offs through pthread condvars and timed waits) frozen and cloned.
#
# Eight threads: four sleepers in time.sleep loops, a producer and three
# consumers on a threading.Condition queue.  After EOF on stdin every process
# (original and clones) stops its threads and checks that every item
# produced was consumed exactly once and in order per consumer, that each
# thread kept its identity (threading.get_ident() is pthread_self()), and
# that no sleep returned early.  Protocol of tests/scenarios/scn.h.
import os
import sys
import threading
import time

pid0 = os.getpid()
stop = threading.Event()
cond = threading.Condition()
queue = []
produced = [0]
consumed = []
errors = []
idents = {}


def sleeper(n):
    idents[n] = threading.get_ident()
    while not stop.is_set():
        t0 = time.monotonic()
        time.sleep(0.01)
        if time.monotonic() - t0 < 0.01:
            errors.append("sleeper %d: sleep returned early" % n)
    if threading.get_ident() != idents[n]:
        errors.append("sleeper %d: identity changed" % n)


def producer():
    idents["p"] = threading.get_ident()
    i = 0
    while not stop.is_set():
        with cond:
            queue.append(i)
            produced[0] = i + 1
            cond.notify()
        i += 1
        time.sleep(0.001)
    with cond:
        cond.notify_all()


def consumer(n):
    idents["c%d" % n] = threading.get_ident()
    last = -1
    mine = []
    while True:
        with cond:
            while not queue and not stop.is_set():
                cond.wait(0.5)
            if not queue and stop.is_set():
                break
            item = queue.pop(0)
        if item <= last:
            errors.append("consumer %d: item %d after %d" % (n, item, last))
        last = item
        mine.append(item)
    consumed.extend(mine)


threads = [threading.Thread(target=sleeper, args=(n,)) for n in range(4)]
threads.append(threading.Thread(target=producer))
threads += [threading.Thread(target=consumer, args=(n,)) for n in range(3)]
for t in threads:
    t.start()
os.write(1, b"READY\n")
sys.stdin.buffer.read()
stop.set()
for t in threads:
    t.join(30)
    if t.is_alive():
        errors.append("a thread did not stop")
if sorted(consumed) != list(range(produced[0])):
    errors.append("consumed %d items, produced %d" % (len(consumed), produced[0]))
clone = int(os.getpid() != pid0)
if errors:
    os.write(1, ("RESULT pid=%d clone=%d FAIL %s\n" % (os.getpid(), clone, errors[0])).encode())
    sys.exit(1)
os.write(1, ("RESULT pid=%d clone=%d ok\n" % (os.getpid(), clone)).encode())
