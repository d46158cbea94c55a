// prefopt model runtime: ATen intra-op thread set-up. No torch header here.
#pragma once

namespace prefopt {

// ATen intra-op threads recommended for CPU work: 1. Matmuls run on
// OpenBLAS's own pthreads; a second pool of ATen threads on the same cores
// oversubscribes them (CPU-FACTS). bench_model measured a 21M Llama log-prob
// forward (T=512, B=4) on 2 cores: 395 tokens/s with 1 ATen thread vs 141
// with one per core.
constexpr int kRecommendedAtenThreads = 1;

// Sets ATen's intra-op threads; n <= 0 means one per online core.
void configure_threads(int n);

// Measured single-precision GEMM rate (best of `reps` n×n×n products), GFLOP/s.
double measure_sgemm_gflops(int n = 1024, int reps = 5);

}  // namespace prefopt
