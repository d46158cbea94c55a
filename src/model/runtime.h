// prefopt model runtime: ATen intra-op thread set-up. No torch header here.
#pragma once

namespace prefopt {

// Sets ATen's intra-op threads; n <= 0 means one per online core. OpenBLAS
// keeps its own pool (see ../shared/design/CPU-FACTS.md); bench_model measures
// forward throughput with 1 thread vs one per core.
void configure_threads(int n);

}  // namespace prefopt
