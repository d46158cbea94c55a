// The seccomp filter (a second line behind the namespaces and the
// unprivileged uid), installed once in each worker's zygote with
// no_new_privs, so every run inherits it. Default: allow; these fail with
// EPERM (ENOSYS for clone3, so glibc falls back to clone, whose namespace
// flags are then checked):
//   sockets other than AF_UNIX; ptrace and cross-process memory access;
//   mount/umount/pivot_root/chroot; namespace creation and entry (unshare,
//   setns, clone with CLONE_NEW* except CLONE_NEWIPC); kernel modules, kexec, bpf,
//   perf_event_open, keyctl/add_key/request_key, userfaultfd, io_uring,
//   reboot, swapon/off, clock/time setting, syslog, acct, quotactl,
//   open_by_handle_at, iopl/ioperm, personality changes.
#include <fcntl.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <string>

#include "sandbox/sandbox_impl.h"

namespace prefopt::sandbox_detail {

namespace {

const char* const kDenied[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "mount", "umount2", "pivot_root",
    "chroot", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "unshare",
    "setns", "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "bpf",
    "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "reboot", "swapon", "swapoff", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "syslog", "acct", "quotactl", "open_by_handle_at", "name_to_handle_at", "iopl", "ioperm", "personality",
    "lookup_dcookie", "vhangup", "fanotify_init", "sethostname", "setdomainname", "uselib", "nfsservctl"};

std::string build() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) return "";
  bool ok = true;
  const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  for (const char* name : kDenied) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    seccomp_rule_add(ctx, eperm, nr, 0);  // best effort per syscall
  }
  // Sockets: AF_UNIX only.
  ok = ok && seccomp_rule_add(ctx, eperm, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX)) == 0;
  ok = ok && seccomp_rule_add(ctx, eperm, SCMP_SYS(socketpair), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX)) == 0;
  // clone: no new namespaces; clone3 (flags live in memory, not checkable) -> ENOSYS.
  // CLONE_NEWIPC stays allowed: the zygote (under this filter) gives every run
  // its own IPC namespace; a run, without capabilities, cannot make one.
  const uint64_t ns_flags[] = {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWCGROUP};
  for (uint64_t f : ns_flags)
    ok = ok && seccomp_rule_add(ctx, eperm, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, f, f)) == 0;
  int nr3 = seccomp_syscall_resolve_name("clone3");
  if (nr3 != __NR_SCMP_ERROR) ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr3, 0) == 0;
  std::string out;
  if (ok) {
    int fd = memfd_create("prefopt-seccomp", MFD_CLOEXEC);
    if (fd >= 0 && seccomp_export_bpf(ctx, fd) == 0) {
      off_t n = lseek(fd, 0, SEEK_END);
      if (n > 0 && n % 8 == 0) {
        out.resize(static_cast<size_t>(n));
        if (pread(fd, out.data(), out.size(), 0) != n) out.clear();
      }
    }
    if (fd >= 0) close(fd);
  }
  seccomp_release(ctx);
  return out;
}

}  // namespace

const std::string& seccomp_bpf() {
  static std::once_flag once;
  static std::string bpf;
  std::call_once(once, [] { bpf = build(); });
  return bpf;
}

std::string seccomp_summary() {
  return std::to_string(sizeof(kDenied) / sizeof(kDenied[0])) +
         " syscalls denied, sockets AF_UNIX only, clone without CLONE_NEW* (but IPC), clone3 ENOSYS; " +
         std::to_string(seccomp_bpf().size() / 8) + " BPF instructions";
}

}  // namespace prefopt::sandbox_detail
