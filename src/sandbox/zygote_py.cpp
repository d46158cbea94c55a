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
//                  "<secret> <cpu_s> <as> <fsize> <nofile> <nproc> <len_code> <len_test> <mode>\n"
//                  and len_code + len_test bytes (UTF-8). mode: p = program, t = code+tests.
//   zygote -> C++  "D <wait status> <cpu ms>\n" after the run's process was
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
namespace prefopt::sandbox_detail {

extern const char* const kZygoteSource = R"PY(
import builtins, ctypes, gc, os, resource, socket, sys, time, traceback, types, linecache
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
        code = rf.read(lc).decode("utf-8", "replace")
        test = rf.read(lt).decode("utf-8", "replace")
        parts = [(code, "program.py" if mode == b"p" else "solution.py")]
        if mode != b"p":
            parts.append((test, "tests.py"))
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
        if full_fork_hooks:
            papi.PyOS_BeforeFork()
        pid = libc.syscall(SYS_clone, ctypes.c_ulong(clone_flags), None, None, None, ctypes.c_ulong(0))
        if pid == 0:
            if full_fork_hooks:
                papi.PyOS_AfterFork_Child()
            ctl.detach()
            _run(libc, fds, secret, cpu, mem, fsize, nofile, nproc, units, main,
                 run_uid, run_gid, workdir)
            os._exit(125)                    # not reached
        if full_fork_hooks:
            papi.PyOS_AfterFork_Parent()
        # Straight to waiting: every page the zygote writes while the run is
        # alive is a copy-on-write fault; the clean-up comes after.
        status, ru = -1, None
        if pid > 0:
            try:
                _, status, ru = os.wait4(pid, 0)
            except ChildProcessError:
                pass
        for fd in fds:
            os.close(fd)
        del secret, units, main
        for name in ("program.py", "solution.py", "tests.py"):
            linecache.cache.pop(name, None)
        if pid < 0:
            ctl.sendall(b"D -1 0\n")
            continue
        cpu_ms = int((ru.ru_utime + ru.ru_stime) * 1000) if ru else 0
        _sweep(pid)
        ctl.sendall(b"D %d %d\n" % (status, cpu_ms))
        _wipe(workdir)
        if workdir == "/tmp":
            _wipe("/dev/shm")

def _sweep(pid):
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
        try:
            os.killpg(pid, 9)
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

def _run(libc, fds, secret, cpu, mem, fsize, nofile, nproc, units, main, uid, gid, workdir):
    try:
        oom = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
        os.write(oom, b"1000")               # the zygote is -1000: the OOM killer takes runs first
        os.close(oom)
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        os.dup2(fds[2], 3)
        os.closerange(4, 1 << 16)
        if os.getpid() != 1 and os.getppid() != 1:
            os.setpgid(0, 0)                  # no pid namespace: the sweep kills this group
        os.chdir(workdir)
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
    except BaseException as e:
        try:
            os.write(2, b"sandbox setup failed: %s\n" % repr(e).encode())
            os.write(3, b"SETUP\n")
        finally:
            os._exit(126)
    sys.modules["__main__"] = main
    g = main.__dict__
    del main
    try:
        for u in units:
            if isinstance(u, BaseException):
                raise u                       # the compile error, reported like any other
            if isinstance(u, tuple):
                u = compile(u[0], u[1], "exec")
            exec(u, g)
        del units, g, u
    except SystemExit as e:
        c = e.code
        if c is None:
            c = 0
        elif not isinstance(c, int):
            try:
                print(c, file=sys.stderr)
            except BaseException:
                pass
            c = 1
        _flush()
        os._exit(c & 0xFF)
    except BaseException as e:
        try:
            tb = e.__traceback__
            if tb is not None and tb.tb_next is not None:
                tb = tb.tb_next               # drop the harness frame
            elif tb is not None:
                tb = None                     # raised by the harness itself (a compile error)
            traceback.print_exception(type(e), e, tb)
        except BaseException:
            pass
        _flush()
        os.write(3, b"EXC " + type(e).__name__.encode("ascii", "replace") + b"\n")
        os._exit(1)
    _flush()
    os.write(3, b"PASS " + secret + b"\n")
    os._exit(0)

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
