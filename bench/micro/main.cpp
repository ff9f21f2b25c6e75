// voxbridge-micro: Google Benchmark microbenchmarks of the per-frame media path, one component
// at a time. See bench/README.md.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
