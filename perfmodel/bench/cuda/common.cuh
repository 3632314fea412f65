// Shared helpers for perfmodel's CUDA microbenchmarks: error checks, deterministic non-zero
// inputs, L2 flushing, CUDA-event timing (warm-up, then the median of many repetitions) and
// the CSV row every benchmark prints (parsed by perfmodel/bench/runner.py).
//
// Practice (the device tool's METHOD.md): every CUDA call and every launch is checked;
// inputs are random and never zero; outputs are poisoned before the checked run and
// compared with a float64 host reference; timing uses events around each repetition after
// warm-up; L2 is flushed before a repetition wherever the data would otherwise stay cached.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#define CUDA_CHECK(call)                                                              \
  do {                                                                                \
    cudaError_t err_ = (call);                                                        \
    if (err_ != cudaSuccess) {                                                        \
      std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", #call, __FILE__, __LINE__, \
                   cudaGetErrorString(err_));                                         \
      std::exit(2);                                                                   \
    }                                                                                 \
  } while (0)
#define LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

namespace pm {

struct Options {
  int warmup = 5;
  int repeats = 50;
  double max_seconds = 2.0;  // stop repeating a case after this much timed work (>= 10 reps)
  bool quick = false;
};

inline Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      o.quick = true;
      o.repeats = 20;
    } else if (!std::strcmp(argv[i], "--repeats") && i + 1 < argc) {
      o.repeats = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--warmup") && i + 1 < argc) {
      o.warmup = std::max(0, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--repeats N] [--warmup N]\n", argv[0]);
      std::exit(1);
    }
  }
  return o;
}

// splitmix64: a deterministic hash, the same on host and device, so the host reference can
// regenerate any input element without copying the buffers back.
__host__ __device__ inline uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A value in +-[0.25, 1): random sign and magnitude, never zero.
__host__ __device__ inline float rand_val(uint64_t seed, uint64_t i) {
  uint64_t h = mix(seed * 0x100000001B3ull + i);
  float mag = 0.25f + 0.75f * (float)((h >> 11) & 0xFFFFFF) / 16777216.0f;
  return (h & 1) ? mag : -mag;
}

// A small non-zero integer in {-4..-1, 1..4} (int8 GEMM inputs: exact int32 sums).
__host__ __device__ inline int rand_int(uint64_t seed, uint64_t i) {
  uint64_t h = mix(seed * 0x100000001B3ull + i);
  int mag = 1 + (int)((h >> 8) & 3);
  return (h & 1) ? mag : -mag;
}

template <typename T, typename F>
__global__ void fill_kernel(T* p, size_t n, uint64_t seed, F convert) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    p[i] = convert(seed, i);
}

template <typename T, typename F>
void fill(T* p, size_t n, uint64_t seed, F convert) {
  fill_kernel<<<1024, 256>>>(p, n, seed, convert);
  LAUNCH_CHECK();
}

// Writing twice the L2 size evicts whatever the previous repetition left there.
struct L2Flusher {
  void* buf = nullptr;
  size_t bytes = 0;
  L2Flusher() {
    int dev = 0, l2 = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
    bytes = std::max<size_t>(2 * (size_t)l2, 64ull << 20);
    CUDA_CHECK(cudaMalloc(&buf, bytes));
  }
  ~L2Flusher() { cudaFree(buf); }
  void flush(cudaStream_t s) { CUDA_CHECK(cudaMemsetAsync(buf, 0x5a, bytes, s)); }
};

struct Stats {
  double median_s, p10_s, p90_s;
  int repeats;
};

inline Stats summarize(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  auto q = [&](double f) { return t[(size_t)std::floor(f * (t.size() - 1) + 0.5)]; };
  return {q(0.5), q(0.1), q(0.9), (int)t.size()};
}

// Times `launch` (which enqueues work on stream s and checks its launches) with CUDA events
// around each repetition, after o.warmup untimed calls. Each repetition is preceded, outside
// the timed region, by an L2 flush when a flusher is given.
template <typename F>
Stats time_events(F launch, const Options& o, L2Flusher* flusher, cudaStream_t s = 0,
                  int per_repetition = 1) {
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < o.warmup; ++i) launch();
  CUDA_CHECK(cudaStreamSynchronize(s));
  std::vector<double> times;
  double total = 0;
  for (int r = 0; r < o.repeats; ++r) {
    if (flusher) flusher->flush(s);
    CUDA_CHECK(cudaEventRecord(a, s));
    launch();
    CUDA_CHECK(cudaEventRecord(b, s));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    times.push_back(ms * 1e-3 / per_repetition);
    total += ms * 1e-3;
    if (r >= 9 && total > o.max_seconds) break;
  }
  CUDA_CHECK(cudaEventDestroy(a));
  CUDA_CHECK(cudaEventDestroy(b));
  return summarize(times);
}

// One CSV row; NAN fields are printed empty. Header order matches print_header().
struct Row {
  std::string benchmark, family, dtype, method;
  double m = NAN, n = NAN, k = NAN, batch = NAN, seq = NAN;
  double flops = NAN, bytes = NAN, working_set_bytes = NAN;
  Stats t{NAN, NAN, NAN, 0};
  double cycles = NAN, check_rel_err = NAN, busbw_GBps = NAN, num_devices = 1;
};

inline void print_header() {
  std::printf(
      "benchmark,family,dtype,m,n,k,batch,seq,flops,bytes,working_set_bytes,repeats,time_s,"
      "time_p10_s,time_p90_s,cycles,check_rel_err,busbw_GBps,num_devices,method\n");
}

inline void field(double v) {
  if (std::isnan(v))
    std::printf(",");
  else
    std::printf(",%.9g", v);
}

inline void print_row(const Row& r) {
  std::printf("%s,%s,%s", r.benchmark.c_str(), r.family.c_str(), r.dtype.c_str());
  for (double v : {r.m, r.n, r.k, r.batch, r.seq, r.flops, r.bytes, r.working_set_bytes,
                   (double)r.t.repeats, r.t.median_s, r.t.p10_s, r.t.p90_s, r.cycles,
                   r.check_rel_err, r.busbw_GBps, r.num_devices})
    field(v);
  std::printf(",\"%s\"\n", r.method.c_str());
  std::fflush(stdout);
}

// Relative L2 error ||out - ref|| / ||ref|| over the checked samples.
inline double rel_err(const std::vector<double>& out, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    double d = out[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
    if (std::isnan(out[i])) return INFINITY;
  }
  return den > 0 ? std::sqrt(num / den) : (num > 0 ? INFINITY : 0.0);
}

// A failed check is reported on stderr and turns the exit code non-zero at the end.
inline int& failures() {
  static int n = 0;
  return n;
}

inline void require(bool ok, const Row& r, double tol) {
  if (!ok) {
    std::fprintf(stderr, "CHECK FAILED: %s %s m=%g n=%g k=%g bytes=%g: rel. error %g > %g\n",
                 r.benchmark.c_str(), r.dtype.c_str(), r.m, r.n, r.k, r.bytes, r.check_rel_err,
                 tol);
    ++failures();
  }
}

inline std::string event_method(const Stats& s, bool flushed) {
  return "CUDA events per repetition; median of " + std::to_string(s.repeats) +
         " after warm-up" + (flushed ? "; L2 flushed before each" : "; L2 warm");
}

}  // namespace pm
