// prefopt dist: `--nproc_per_node N` for machines without Python (torchrun
// stays the documented launcher and the only multi-node path). The process
// becomes a launcher: it starts N copies of itself (/proc/self/exe, the same
// arguments minus --nproc_per_node and --master_port) with torchrun's
// environment contract (RANK = LOCAL_RANK = i, WORLD_SIZE = LOCAL_WORLD_SIZE
// = N, MASTER_ADDR = 127.0.0.1, MASTER_PORT = a free port or --master_port,
// OMP_NUM_THREADS = 1 unless set), prefixes each rank's stderr lines with
// "[rank i] " (stdout passes through), forwards SIGINT, SIGTERM and SIGHUP to
// the ranks, and when a rank exits non-zero or by a signal stops the others
// (SIGTERM, then SIGKILL after a grace period). Ranks die with the launcher
// (PR_SET_PDEATHSIG), so none is left behind even if it is killed.
#pragma once
#include <string>

namespace prefopt::dist {

// nproc, master_port: the flags' raw values ("" when not given). With N > 1
// runs the ranks and exits the process: 0 when every rank returned 0, else
// the first failing rank's status (128 + signal when killed). With N = 1
// returns and the command runs in this process. An Error (exit 2) for N < 1,
// a malformed value, or N > 1 under a launcher that already set RANK,
// WORLD_SIZE, LOCAL_RANK or LOCAL_WORLD_SIZE.
void run_local_ranks_if_asked(const std::string& nproc, const std::string& master_port);

// Seconds between the SIGTERM and the SIGKILL that stop the other ranks.
constexpr double kLocalRanksGraceSeconds = 5.0;

}  // namespace prefopt::dist
