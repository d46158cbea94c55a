// The Python side of the sandbox: the zygote (a pre-started /usr/bin/python3
// inside a worker's namespaces, started by worker.cpp) and the per-run
// harness it forks. Kept as one embedded source so the C++ and Python halves
// of the protocol are versioned together.
//
// Protocol on fd 3 (a unix stream socket to the C++ worker thread):
//   zygote -> C++  "READY <python version>\n" once, after the init message.
//   C++ -> zygote  init: "I <n>\n" + n bytes of seccomp BPF (sock_filter[]).
//   C++ -> zygote  per run: 1 byte 'R' carrying 3 fds (SCM_RIGHTS: stdout,
//                  stderr and result pipe write ends), then the line
//                  "<secret> <cpu_s> <as> <fsize> <nofile> <nproc> <len_code> <len_test> <mode> <names>\n"
//                  and len_code + len_test bytes (UTF-8). mode: p = program,
//                  t = code + tests (two processes, below), u = prelude +
//                  program in one process. names: TestJob::entry_points, comma-
//                  separated, "-" for none.
//   zygote -> C++  "D <wait status> <cpu ms> <cand status> <cand cpu ms>\n"
//                  (the first pair: the run's process, for mode t the harness;
//                  the second: mode t's candidate, status -1 when it had none
//                  to report (killed after the harness ended) and -2 when its
//                  own setup failed) after the run's process was
//                  reaped and every other process of the worker's pid
//                  namespace was killed and reaped (kill(-1) from its pid 1;
//                  without a pid namespace: the run's process group and every
//                  process re-parented to the zygote, a child subreaper),
//                  then it wipes /tmp and /dev/shm and reads the next request.
// The zygote sits in the worker's pids and memory cgroups (placed there by
// the C++ side), so its runs are born in them.
//
// The run (a child cloned into a new ipc namespace; pid 2+ of the worker's pid
// namespace, so signals behave as in any process):
// oom_score_adj +1000, chdir /tmp, setgroups([]), uid/gid 65534, rlimits
// (no_new_privs and seccomp are inherited from the zygote, which installs
// them once), stdin /dev/null, stdout/stderr/result on fds 1/2/3,
// every other fd closed; then executes the code (and the tests) in a fresh
// __main__ (compiled by the zygote before the fork when small). Only after
// the last statement completed normally does it write
// "PASS <secret>\n" to fd 3 and _exit(0); an uncaught exception writes
// "EXC <type>\n" and exits 1; SystemExit exits with its code and no secret.
// The secret reaches the run only inside the zygote's memory image (a local
// of _run, never in the program's globals, never in a file or an fd).
//
// Mode t (run_tests) clones two processes instead of one: the candidate
// (uid 65534, fds 1/2 output, 3 requests in, 4 replies out; no result pipe)
// executes the code and serves calls; the harness (uid 65533, not dumpable,
// cwd /, fds 1/2 output, 3 result, 4 replies in, 5 requests out) executes the
// tests with proxies for the candidate's names and alone writes the result
// lines: "PASS <secret>", "EXC <type>", "BAD <why>" (a non-plain answer),
// "LOST <why>" (the candidate ended or broke the protocol; exit 3). The
// candidate's memory holds the secret too (it is a fork of the zygote) but it
// has no way to the result pipe. The codec, both sides: _enc / _dec.
namespace prefopt::sandbox_detail {

extern const char* const kZygoteSource = R"PY(
import builtins, ctypes, fcntl, gc, importlib, os, resource, socket, struct, sys, time, traceback, types, linecache
# What HumanEval/MBPP-style programs import most, loaded once here instead of
# in every run. Nothing seeded per process (random, tempfile, uuid): a forked
# copy would repeat the same stream in every run.
import bisect, collections, copy, functools, heapq, itertools, math, operator, re, string, typing

# Sources up to this size are compiled here, before the fork: compiling in the
# child writes ~1 MB of fresh memory (~280 copy-on-write faults, most of a
# trivial run's cost on a VM); larger ones are compiled in the run itself,
# under its rlimits.
COMPILE_IN_ZYGOTE = 256 << 10

def _main():
    sys.path.append("/usr/lib/python3/dist-packages")
    # argv: run uid, run gid, clone flags for a run (CLONE_NEWIPC | SIGCHLD when
    # namespaces work, else SIGCHLD), the work dir (wiped after every run).
    run_uid, run_gid, clone_flags = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    workdir = sys.argv[4]
    h_uid, h_gid = int(sys.argv[5]), int(sys.argv[6])   # the harness's own uid/gid
    ctl = socket.socket(fileno=3)
    rf = ctl.makefile("rb", buffering=1 << 16)
    libc = ctypes.PyDLL(None, use_errno=True)   # PyDLL: the GIL stays held across clone()
    libc.syscall.restype = ctypes.c_long
    libc.prctl.restype = ctypes.c_int
    papi = ctypes.pythonapi
    head = rf.readline().split()
    bpf = rf.read(int(head[1])) if head and head[0] == b"I" else b""
    bpf_buf = ctypes.create_string_buffer(bpf, len(bpf) if bpf else 1)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    fprog = SockFprog(len(bpf) // 8, ctypes.cast(bpf_buf, ctypes.c_void_p))
    # Without a pid namespace (degraded mode) the zygote is a child subreaper:
    # a process of the run whose parent died (a setsid daemon) is re-parented
    # here, where _sweep finds and kills it.
    if os.getpid() != 1 and libc.prctl(36, 1, 0, 0, 0) != 0:   # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "child subreaper")
    # no_new_privs and the seccomp filter are installed here, once: every run
    # inherits them (the zygote itself needs nothing the filter denies).
    if libc.prctl(38, 1, 0, 0, 0) != 0:                       # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "no_new_privs")
    if bpf and libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:   # PR_SET_SECCOMP, FILTER
        raise OSError(ctypes.get_errno(), "seccomp")
    # The runs' standard streams, made once: fds 0-2 are /dev/null here and
    # become /dev/null + the run's pipes in the child (the buffers are empty at
    # every fork: the zygote never writes to them).
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.__stdout__, sys.__stderr__, sys.__stdin__ = sys.stdout, sys.stderr, sys.stdin
    sys.argv = ["program.py"]
    compile("x = 1\n", "warm", "exec")
    gc.collect()
    gc.freeze()      # the zygote's objects stay out of the runs' GC: fewer copy-on-write faults
    libc.malloc_trim(0)   # fewer heap pages to copy at every fork
    # PyOS_BeforeFork / PyOS_AfterFork_Child (what os.fork() calls) re-create
    # the GIL, the import lock and the runtime's mutexes and run at-fork hooks:
    # ~70 page faults, a third of a trivial run. Here they have nothing to
    # repair: this process has one thread, the clone happens with the GIL held
    # (PyDLL) and no lock taken, and no at-fork hook is registered (threading,
    # random, logging are not imported). Should that ever change, the hooks run.
    full_fork_hooks = any(m in sys.modules for m in ("threading", "random", "logging", "multiprocessing"))
    SYS_clone = ctypes.c_long(56)
    ctl.sendall(b"READY %d.%d.%d\n" % sys.version_info[:3])
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(ctl, 1, 4)
        except OSError:
            os._exit(0)
        if not msg:
            os._exit(0)                      # the C++ side went away
        # rf is buffered: the 'R' byte was read from the socket directly, the rest through rf.
        line = rf.readline().split()
        secret = line[0]
        cpu, mem, fsize, nofile, nproc, lc, lt = (int(x) for x in line[1:8])
        mode = line[8]
        exports = frozenset(line[9].decode().split(",")) if len(line) > 9 and line[9] != b"-" else frozenset()
        code = rf.read(lc).decode("utf-8", "replace")
        test = rf.read(lt).decode("utf-8", "replace")
        if mode == b"p":
            parts = [(code, "program.py")]
        elif mode == b"u":
            parts = [(code, "prelude.py"), (test, "program.py")]
        else:
            parts = [(code, "solution.py"), (test, "tests.py")]
        units = []                           # code objects, (source, name) to compile later, or an exception
        for src, name in parts:
            linecache.cache[name] = (len(src), None, src.splitlines(True), name)
            if len(src) > COMPILE_IN_ZYGOTE:
                units.append((src, name))
                continue
            try:
                units.append(compile(src, name, "exec"))
            except BaseException as e:      # SyntaxError, RecursionError, MemoryError...
                e.__traceback__ = None
                units.append(e)
                break
        main = types.ModuleType("__main__")
        main.__dict__["__builtins__"] = builtins
        main.__file__ = workdir + "/program.py"
        del parts, code, test
        lim = (cpu, mem, fsize, nofile, nproc)

        def spawn(child):
            if full_fork_hooks:
                papi.PyOS_BeforeFork()
            pid = libc.syscall(SYS_clone, ctypes.c_ulong(clone_flags), None, None, None, ctypes.c_ulong(0))
            if pid == 0:
                if full_fork_hooks:
                    papi.PyOS_AfterFork_Child()
                ctl.detach()
                try:
                    child()
                finally:
                    os._exit(125)            # not reached
            if full_fork_hooks:
                papi.PyOS_AfterFork_Parent()
            return pid

        cpid, cstatus, cru = 0, -1, None
        if mode != b"t":
            pid = spawn(lambda: _run(libc, fds, secret, lim, units, main, run_uid, run_gid, workdir))
            pipes = ()
        else:
            # Two processes: the candidate (the code, serving calls) and the
            # harness (the tests, calling through a proxy). Two one-way pipes
            # join them; nothing else is shared that either can write.
            req_r, req_w = os.pipe()         # harness -> candidate
            rsp_r, rsp_w = os.pipe()         # candidate -> harness
            sp_r, sp_w = os.pipe()           # the candidate's "set up" byte
            pipes = (req_r, req_w, rsp_r, rsp_w, sp_w)
            cunit = units[0]
            tunit = units[1] if len(units) > 1 else None
            cpid = spawn(lambda: _candidate(libc, fds, req_r, rsp_w, sp_w, lim, cunit, main, run_uid, run_gid, workdir))
            pid = spawn(lambda: _harness(libc, fds, rsp_r, req_w, secret, lim, tunit, h_uid, h_gid, exports))
        for fd in pipes:
            os.close(fd)
        # Straight to waiting: every page the zygote writes while the run is
        # alive is a copy-on-write fault; the clean-up comes after.
        status, ru = -1, None
        if pid > 0:
            try:
                _, status, ru = os.wait4(pid, 0)
            except ChildProcessError:
                pass
        if cpid > 0:
            # The harness is done, so the candidate is not needed any more:
            # killed now, unless the harness lost it (exit 3), when its own
            # end (a signal, the CPU limit) explains the verdict: then it gets
            # 100 ms to be reaped with its status.
            lost = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3
            for i in range(100 if lost else 1):
                try:
                    w, cst, cr = os.wait4(cpid, os.WNOHANG)
                except ChildProcessError:
                    break
                if w == cpid:
                    cstatus, cru = cst, cr
                    break
                if lost:
                    time.sleep(0.001)
            else:
                try:
                    os.kill(cpid, 9)
                    _, _, cru = os.wait4(cpid, 0)
                except OSError:
                    pass
        if mode == b"t":
            # A candidate whose own setup failed (uid switch, rlimits) is the
            # sandbox's fault: reported as status -2.
            os.set_blocking(sp_r, False)
            try:
                if os.read(sp_r, 1) != b"k" and cpid > 0:
                    cstatus = -2
            except OSError:
                cstatus = -2
            os.close(sp_r)
        for fd in fds:
            os.close(fd)
        del secret, units, main
        for name in ("program.py", "prelude.py", "solution.py", "tests.py"):
            linecache.cache.pop(name, None)
        if pid < 0 or cpid < 0:
            _sweep(pid, cpid)
            ctl.sendall(b"D -1 0\n")
            continue
        cpu_ms = int((ru.ru_utime + ru.ru_stime) * 1000) if ru else 0
        ccpu_ms = int((cru.ru_utime + cru.ru_stime) * 1000) if cru else 0
        _sweep(pid, cpid)
        ctl.sendall(b"D %d %d %d %d\n" % (status, cpu_ms, cstatus, ccpu_ms))
        _wipe(workdir)
        if workdir == "/tmp":
            _wipe("/dev/shm")

def _sweep(pid, cpid):
    # Nothing of the run may outlive it. As pid 1 of the worker's pid namespace
    # the zygote's kill(-1) reaches exactly the processes of this namespace
    # (orphans such as setsid daemons were re-parented to us).
    if os.getpid() == 1:
        for _ in range(1000):
            try:
                os.kill(-1, 9)
            except OSError:
                pass
            try:
                while os.waitpid(-1, os.WNOHANG)[0] > 0:
                    pass
                os.waitpid(-1, 0)
            except ChildProcessError:
                return
        return
    # Without a pid namespace: the run's process group, then every child of
    # ours (the zygote is a child subreaper, so each process of the run whose
    # parent died is one), until we have no child left. No blocking wait: a
    # process still being re-parented to us would stall it.
    for _ in range(100000):
        for p in (pid, cpid):
            try:
                if p > 0:
                    os.killpg(p, 9)
            except OSError:
                pass
        for c in _children():
            try:
                os.kill(c, 9)
            except OSError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            return
        time.sleep(0.001)

def _children():
    me = os.getpid()
    try:
        with open("/proc/%d/task/%d/children" % (me, me)) as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        pass
    out = []                                 # no CONFIG_PROC_CHILDREN: scan /proc
    for n in os.listdir("/proc"):
        if not n.isdigit():
            continue
        try:
            with open("/proc/" + n + "/stat", "rb") as f:
                st = f.read()
            if int(st[st.rindex(b")") + 2:].split()[1]) == me:
                out.append(int(n))
        except (OSError, ValueError, IndexError):
            pass
    return out

def _wipe(top):
    try:
        names = os.listdir(top)
    except OSError:
        return
    for n in names:
        p = top + "/" + n
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                _rmtree(p)
            else:
                os.unlink(p)
        except OSError:
            pass

def _rmtree(p):
    try:
        os.chmod(p, 0o700)
    except OSError:
        pass
    for n in os.listdir(p):
        q = p + "/" + n
        if os.path.isdir(q) and not os.path.islink(q):
            _rmtree(q)
        else:
            os.unlink(q)
    os.rmdir(p)

def _setup(libc, targets, lim, uid, gid, cwd):
    # The common start of a run's process: OOM first, fds 0 = /dev/null and
    # 1.. = targets (every other fd closed), its own process group without a
    # pid namespace, cwd, the unprivileged uid, rlimits.
    cpu, mem, fsize, nofile, nproc = lim
    oom = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
    os.write(oom, b"1000")                   # the zygote is -1000: the OOM killer takes runs first
    os.close(oom)
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 256) for fd in [os.open("/dev/null", os.O_RDONLY)] + list(targets)]
    for i, fd in enumerate(high):
        os.dup2(fd, i)
    os.closerange(len(high), 1 << 16)
    if os.getpid() != 1 and os.getppid() != 1:
        os.setpgid(0, 0)                      # no pid namespace: the sweep kills this group
    os.chdir(cwd)
    if os.getuid() != uid:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    else:
        _drop_caps(libc)
    R = resource
    R.setrlimit(R.RLIMIT_CORE, (0, 0))
    R.setrlimit(R.RLIMIT_CPU, (cpu, cpu + 1))
    R.setrlimit(R.RLIMIT_AS, (mem, mem))
    R.setrlimit(R.RLIMIT_FSIZE, (fsize, fsize))
    R.setrlimit(R.RLIMIT_NOFILE, (nofile, nofile))
    R.setrlimit(R.RLIMIT_NPROC, (nproc, nproc))

def _setup_failed(e, result_fd):
    try:
        os.write(2, b"sandbox setup failed: %s\n" % repr(e).encode())
        if result_fd is not None:
            os.write(result_fd, b"SETUP\n")
    finally:
        os._exit(126)

def _exit_code(e):
    c = e.code
    if c is None:
        return 0
    if not isinstance(c, int):
        try:
            print(c, file=sys.stderr)
        except BaseException:
            pass
        return 1
    return c & 0xFF

def _print_exc(e):
    try:
        tb = e.__traceback__
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next                   # drop the harness frame
        elif tb is not None:
            tb = None                         # raised by the harness itself (a compile error)
        traceback.print_exception(type(e), e, tb)
    except BaseException:
        pass

def _unit(u):
    if isinstance(u, BaseException):
        raise u                               # the compile error, reported like any other
    if isinstance(u, tuple):
        return compile(u[0], u[1], "exec")
    return u

def _run(libc, fds, secret, lim, units, main, uid, gid, workdir):
    # A whole program (run_python): one process, PASS after its last line.
    try:
        _setup(libc, fds, lim, uid, gid, workdir)
    except BaseException as e:
        _setup_failed(e, 3)
    sys.modules["__main__"] = main
    g = main.__dict__
    del main
    try:
        for u in units:
            exec(_unit(u), g)
        del units, g, u
    except SystemExit as e:
        c = _exit_code(e)
        _flush()
        os._exit(c)
    except BaseException as e:
        _print_exc(e)
        _flush()
        os.write(3, b"EXC " + type(e).__name__.encode("ascii", "replace") + b"\n")
        os._exit(1)
    _flush()
    os.write(3, b"PASS " + secret + b"\n")
    os._exit(0)

# ---- code + tests: the candidate and the harness in two processes ----
#
# Frames on both pipes: 4-byte little-endian length, then one value in the
# plain-data codec below. Harness -> candidate: ("call", name, args, kwargs).
# Candidate -> harness: first ("ok", [(name, kind, payload), ...]) after the
# code ran (kind "f": a callable, proxied; "m": a module, payload its name;
# "v": a plain-data value) or ("err", ...) when it raised; then one reply per
# call: ("ok", value), ("err", type name, builtin base name, args, traceback
# text) or ("bad", why) when the value is not plain data.

_PK = struct.Struct("<I")
_PD = struct.Struct("<d")
_MAX_FRAME = 64 << 20
_MAX_DEPTH = 200
_SEQ = {list: b"l", tuple: b"t", set: b"S", frozenset: b"z"}
_ALIASES = {("np", "numpy"), ("pd", "pandas")}
_BUILTIN_NAMES = frozenset(builtins.__dict__)
# What the candidate's side uses to list its names, taken before any code ran
# (a candidate that patches builtins only confuses its own answers).
_ISSUBCLASS, _GETATTR, _CALLABLE = issubclass, getattr, callable

class _NotPlain(Exception):
    pass

class _Gone(BaseException):
    # The candidate cannot answer any more (its process ended, broke the
    # protocol or returned something that is not plain data). Not an
    # Exception, so a test's `except Exception` does not swallow it; the
    # verdict is FAILED even when a bare `except:` does.
    pass

def _enc(x):
    out = []
    _enc1(x, out, 0)
    return b"".join(out)

def _enc1(x, out, depth):
    if depth > _MAX_DEPTH:
        raise _NotPlain("nested deeper than %d levels (or cyclic)" % _MAX_DEPTH)
    t = type(x)
    if x is None:
        out.append(b"N")
    elif t is bool:
        out.append(b"T" if x else b"F")
    elif t is int:
        if -(1 << 62) < x < (1 << 62):
            out.append(b"i%d;" % x)
        else:
            n = (x.bit_length() + 8) // 8
            out.append(b"I" + _PK.pack(n) + int.to_bytes(x, n, "little", signed=True))
    elif t is float:
        out.append(b"f" + _PD.pack(x))
    elif t is str:
        b = str.encode(x, "utf-8", "surrogatepass")
        out.append(b"s" + _PK.pack(len(b)) + b)
    elif t is bytes:
        out.append(b"b" + _PK.pack(len(x)) + x)
    elif t is complex:
        out.append(b"c" + _PD.pack(x.real) + _PD.pack(x.imag))
    elif t is list or t is tuple or t is set or t is frozenset:
        out.append(_SEQ[t] + _PK.pack(len(x)))
        for y in x:
            _enc1(y, out, depth + 1)
    elif t is dict:
        out.append(b"d" + _PK.pack(len(x)))
        for k, v in dict.items(x):
            _enc1(k, out, depth + 1)
            _enc1(v, out, depth + 1)
    elif t is _MATCH:
        # A re.Match (a type that cannot be subclassed) crosses as what
        # produced it: the pattern, its flags, the string, pos, endpos and
        # the group spans. The receiver re-runs the regex with its own re
        # module and rebuilds the Match only if that gives the same spans.
        out.append(b"M")
        _enc1((x.re.pattern, x.re.flags, x.string, x.pos, x.endpos, x.regs), out, depth + 1)
    else:
        # A subclass of a builtin that keeps the builtin's comparison (a
        # namedtuple, an IntEnum, a defaultdict) and the stdlib's Counter and
        # OrderedDict (compared with a plain dict as a dict is) are sent as an
        # exact copy of their builtin value, made by the builtin's own C code
        # (no method of the subclass runs). The receiver only ever sees the
        # builtin: whatever the subclass does, it compares as plain data.
        for base, copy in _COPIES:
            if issubclass(t, base):
                if t in _DICTS or getattr(t, "__eq__", None) is base.__eq__:
                    _enc1(copy(x), out, depth)
                    return
                break
        try:
            name = type.__getattribute__(t, "__qualname__")
        except BaseException:
            name = "?"
        raise _NotPlain("a %s is not plain data" % (name if type(name) is str else "?"))

_COPIES = ((dict, dict.copy), (list, list.copy), (tuple, lambda x: tuple.__getitem__(x, slice(None))),
           (set, set.copy), (frozenset, frozenset.copy), (str, str.__str__), (int, int.__int__),
           (float, float.__float__), (bytes, lambda x: bytes.__getitem__(x, slice(None))))
_DICTS = (collections.Counter, collections.OrderedDict)
_MATCH = type(re.match("", ""))

def _rematch(v):
    # A Match from its plain-data projection, found again by this side's own
    # re: the search, fullmatch or one of the finditer matches with the same
    # pos, endpos and spans (a Match from search, match, fullmatch or finditer
    # over the same pattern and string). Anything else is not plain data.
    if type(v) is tuple and len(v) == 6:
        pat, flags, s, pos, endpos, regs = v
        if type(pat) in (str, bytes) and type(s) is type(pat) and type(flags) is int \
                and type(pos) is int and type(endpos) is int and type(regs) is tuple:
            try:
                p = re.compile(pat, flags)
                found = [p.search(s, pos, endpos), p.fullmatch(s, pos, endpos)]
                for m in found + [None]:
                    if m is None:
                        m = next((x for x in p.finditer(s, pos, endpos) if x.regs == regs), None)
                    if m is not None and m.regs == regs and m.pos == pos and m.endpos == endpos:
                        return m
            except (re.error, TypeError, ValueError, OverflowError):
                pass
    raise _NotPlain("a Match that this side's re does not reproduce is not plain data")

def _dec(b):
    v, i = _dec1(b, 0, 0)
    if i != len(b):
        raise ValueError("trailing bytes")
    return v

def _dec1(b, i, depth):
    if depth > _MAX_DEPTH:
        raise ValueError("nested too deep")
    t = b[i:i + 1]
    i += 1
    if t == b"N":
        return None, i
    if t == b"T":
        return True, i
    if t == b"F":
        return False, i
    if t == b"i":
        j = b.index(b";", i, i + 24)
        return int(b[i:j]), j + 1
    if t == b"f":
        return _PD.unpack_from(b, i)[0], i + 8
    if t == b"c":
        return complex(_PD.unpack_from(b, i)[0], _PD.unpack_from(b, i + 8)[0]), i + 16
    if t == b"M":
        v, i = _dec1(b, i, depth + 1)
        return _rematch(v), i
    n = _PK.unpack_from(b, i)[0]
    i += 4
    if t in (b"I", b"s", b"b"):
        if i + n > len(b):
            raise ValueError("truncated")
        raw = b[i:i + n]
        if t == b"I":
            return int.from_bytes(raw, "little", signed=True), i + n
        if t == b"s":
            return raw.decode("utf-8", "surrogatepass"), i + n
        return raw, i + n
    if n > len(b) - i:
        raise ValueError("truncated")
    items = []
    if t == b"d":
        d = {}
        for _ in range(n):
            k, i = _dec1(b, i, depth + 1)
            v, i = _dec1(b, i, depth + 1)
            d[k] = v
        return d, i
    for _ in range(n):
        v, i = _dec1(b, i, depth + 1)
        items.append(v)
    if t == b"l":
        return items, i
    if t == b"t":
        return tuple(items), i
    if t == b"S":
        return set(items), i
    if t == b"z":
        return frozenset(items), i
    raise ValueError("unknown tag")

def _send(fd, data):
    data = _PK.pack(len(data)) + data
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]

def _read_exact(fd, n):
    parts = []
    while n > 0:
        c = os.read(fd, min(n, 1 << 20))
        if not c:
            return None
        parts.append(c)
        n -= len(c)
    return b"".join(parts)

def _candidate(libc, fds, req_r, rsp_w, sp_w, lim, unit, main, uid, gid, workdir):
    # fds: 1/2 stdout/stderr, 3 requests in, 4 replies out, 5 "set up" (closed
    # before the code runs). No result pipe: nothing written here decides.
    try:
        _setup(libc, [fds[0], fds[1], req_r, rsp_w, sp_w], lim, uid, gid, workdir)
        os.write(5, b"k")
        os.close(5)
    except BaseException as e:
        _setup_failed(e, None)
    sys.modules["__main__"] = main
    g = main.__dict__
    del main
    try:
        exec(_unit(unit), g)
        del unit
    except BaseException as e:
        if not isinstance(e, SystemExit):
            _print_exc(e)
        _flush()
        _reply(4, _err_msg(e, ""))
        os._exit(1)
    names = []
    for k, v in list(g.items()):
        if type(k) is not str or k.startswith("__"):
            continue
        if _ISSUBCLASS(type(v), types.ModuleType):
            m = _GETATTR(v, "__name__", None)
            if type(m) is str:
                names.append((k, "m", m))
        elif _CALLABLE(v):
            names.append((k, "f", None))
        else:
            try:
                _enc(v)
                names.append((k, "v", v))
            except _NotPlain:
                pass
    _flush()
    _reply(4, ("ok", names))
    del names, k, v
    while True:
        head = _read_exact(3, 4)
        if head is None:
            _flush()
            os._exit(0)                       # the harness is done
        body = _read_exact(3, _PK.unpack(head)[0])
        _, name, args, kwargs = _dec(body)
        try:
            value = g[name](*args, **kwargs)
        except BaseException as e:
            try:
                tb = "".join(traceback.format_exception(type(e), e, e.__traceback__.tb_next))
            except BaseException:
                tb = ""
            msg = _err_msg(e, tb)
            del e
        else:
            msg = ("ok", value)
            del value
        _flush()
        _reply(4, msg, name)
        del msg, args, kwargs

def _err_msg(e, tb):
    t = type(e)
    base = "Exception"
    for c in t.__mro__:
        if getattr(builtins, c.__name__, None) is c:
            base = c.__name__
            break
    args = e.args
    try:
        _enc(args)
    except BaseException:
        args = (str(e),)
    return ("err", t.__name__, base, args, tb)

def _reply(fd, msg, name=None):
    try:
        data = _enc(msg)
    except _NotPlain as e:
        what = "%s() returned" % name if name else "the candidate's answer holds"
        try:
            data = _enc(("bad", "%s something that is not plain data: %s" % (what, e)))
        except BaseException:
            data = _enc(("bad", "not plain data"))
    except BaseException:
        data = _enc(("bad", "the candidate's answer could not be encoded"))
    _send(fd, data)

class _Link:
    def __init__(self):
        self.lost = ""                        # why the candidate cannot answer any more
        self.bad = ""                         # a non-plain answer (FAILED, with this reason)

    def gone(self, why, bad=False):
        if bad:
            self.bad = self.bad or why
        else:
            self.lost = self.lost or why
        return _Gone(why)

    def recv(self):
        try:
            head = _read_exact(4, 4)
            if head is None:
                raise self.gone("the candidate's process ended (or closed its reply pipe)")
            n = _PK.unpack(head)[0]
            if n > _MAX_FRAME:
                raise self.gone("protocol error: a reply of %d bytes" % n)
            body = _read_exact(4, n)
            if body is None:
                raise self.gone("the candidate's process ended in the middle of a reply")
            m = _dec(body)
        except _Gone:
            raise
        except _NotPlain as e:
            raise self.gone("the candidate's answer holds something that is not plain data: %s" % e, bad=True)
        except Exception as e:
            raise self.gone("protocol error in the candidate's reply: %s" % type(e).__name__)
        if type(m) is not tuple or not m or m[0] not in ("ok", "err", "bad"):
            raise self.gone("protocol error: unexpected reply")
        if m[0] == "bad":
            raise self.gone(m[1] if len(m) > 1 and type(m[1]) is str else "not plain data", bad=True)
        if m[0] == "ok" and len(m) != 2:
            raise self.gone("protocol error: unexpected reply")
        return m

    def exc(self, m):
        # The candidate's exception, rebuilt here from plain data: a class of
        # the same name derived from the same builtin exception type.
        if len(m) != 5 or type(m[1]) is not str or type(m[2]) is not str or type(m[3]) is not tuple \
                or type(m[4]) is not str:
            return self.gone("protocol error: malformed exception")
        _, name, base, args, tb = m
        cls = getattr(builtins, base, None)
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            return self.gone("the candidate raised %s" % name)
        if name != base:
            try:
                cls = type(name, (cls,), {})
            except BaseException:
                pass                          # a name type() refuses: the builtin itself
        try:
            e = cls(*args)
        except BaseException:
            e = cls.__new__(cls)
            e.args = args
        e._prefopt_candidate_tb = tb
        return e

    def call(self, name, args, kwargs):
        if self.lost or self.bad:
            raise _Gone(self.lost or self.bad)
        try:
            data = _enc(("call", name, args, kwargs))
        except _NotPlain as e:
            raise TypeError("an argument of %s() is not plain data: %s" % (name, e)) from None
        try:
            _send(5, data)
        except OSError:
            raise self.gone("the candidate's process ended (its request pipe is closed)") from None
        m = self.recv()
        if m[0] == "ok":
            return m[1]
        raise self.exc(m)

def _proxy(link, name):
    def proxy(*args, **kwargs):
        return link.call(name, args, kwargs)
    proxy.__name__ = proxy.__qualname__ = name
    return proxy

def _harness(libc, fds, rsp_r, req_w, secret, lim, unit, uid, gid, exports):
    # fds: 1/2 stdout/stderr, 3 the result pipe, 4 replies in, 5 requests out.
    # Its own uid and not dumpable: the candidate can neither ptrace it, read
    # its memory or fds through /proc, nor signal it.
    try:
        _setup(libc, [fds[0], fds[1], fds[2], rsp_r, req_w], lim, uid, gid, "/")
        if libc.prctl(4, 0, 0, 0, 0) != 0:    # PR_SET_DUMPABLE
            raise OSError(ctypes.get_errno(), "dumpable")
    except BaseException as e:
        _setup_failed(e, 3)
    link = _Link()
    mod = types.ModuleType("__main__")
    sys.modules["__main__"] = mod
    g = mod.__dict__
    g["__builtins__"] = builtins
    loaded = False
    try:
        m = link.recv()
        if m[0] == "err":
            e = link.exc(m)
            loaded = True                     # the candidate printed its own traceback
            raise e
        names = m[1]
        if type(names) is not list:
            raise link.gone("protocol error: malformed names")
        for ent in names:
            if type(ent) is not tuple or len(ent) != 3 or type(ent[0]) is not str or type(ent[1]) is not str:
                raise link.gone("protocol error: malformed names")
            name, kind, val = ent
            if name.startswith("__") or not name.isidentifier():
                continue                      # never __name__, __builtins__...: the tests' own
            if name in _BUILTIN_NAMES and name not in exports:
                continue                      # the tests keep the real builtin
            if kind == "f":
                g[name] = _proxy(link, name)
            elif kind == "v":
                g[name] = val
            elif kind == "m" and type(val) is str and (name in (val, val.rsplit(".", 1)[-1]) or (name, val) in _ALIASES):
                try:
                    g[name] = importlib.import_module(val)
                except BaseException:
                    pass
        del names, m
        exec(_unit(unit), g)
    except BaseException as e:
        _flush()
        if link.bad:
            os.write(3, b"BAD " + link.bad.encode("utf-8", "replace")[:2000].replace(b"\n", b" ") + b"\n")
        elif link.lost:
            os.write(3, b"LOST " + link.lost.encode("utf-8", "replace")[:2000].replace(b"\n", b" ") + b"\n")
            os._exit(3)                       # the zygote then waits for the candidate's status
        else:
            if not loaded:
                _print_test_exc(e)
                _flush()
            os.write(3, b"EXC " + type(e).__name__.encode("ascii", "replace") + b"\n")
        os._exit(1)
    _flush()
    if link.bad or link.lost:                 # swallowed by the tests: still not a pass
        reason = link.bad or link.lost
        os.write(3, (b"BAD " if link.bad else b"LOST ") + reason.encode("utf-8", "replace")[:2000].replace(b"\n", b" ") + b"\n")
        os._exit(1 if link.bad else 3)
    os.write(3, b"PASS " + secret + b"\n")
    os._exit(0)

def _print_test_exc(e):
    # The candidate's side of the failing call first (its traceback, sent as
    # text), then the tests' frames (the harness's own frames left out).
    try:
        c = e
        for _ in range(8):
            if c is None:
                break
            tb = getattr(c, "_prefopt_candidate_tb", "")
            if tb:
                sys.stderr.write(tb)
                break
            c = c.__cause__ or c.__context__
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename != "<string>"]
        sys.stderr.write("Traceback (most recent call last):\n" + "".join(traceback.format_list(frames)) +
                         "".join(traceback.format_exception_only(type(e), e)))
    except BaseException:
        pass

def _drop_caps(libc):
    # Already the unprivileged uid (no uid to switch to, e.g. an unprivileged
    # host user mapped to root of the worker's user namespace): drop every
    # capability; no_new_privs (set in the zygote) keeps exec from granting new ones.
    for cap in range(64):
        libc.prctl(24, cap, 0, 0, 0)                  # PR_CAPBSET_DROP
    class Hdr(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class Data(ctypes.Structure):
        _fields_ = [("eff", ctypes.c_uint32), ("perm", ctypes.c_uint32), ("inh", ctypes.c_uint32)]
    data = (Data * 2)()
    if libc.capset(ctypes.byref(Hdr(0x20080522, 0)), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")

def _flush():
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except BaseException:
            pass

_main()
)PY";

}  // namespace prefopt::sandbox_detail
