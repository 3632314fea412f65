// Load latency per memory level: one thread follows a random cyclic permutation of 128-byte
// lines (Sattolo's algorithm, so the chain visits every line) through buffers from 16 KB
// (L1) to 1 GB (HBM). Each load depends on the previous one, so time / steps is the latency
// of one access at that working-set size; clock64() gives it in SM cycles as well.
// Check: the index reached after `steps` hops equals the host's walk of the same chain.
#include "common.cuh"

using namespace pm;

constexpr size_t LINE = 128 / sizeof(uint32_t);  // one index per 128-byte line

__global__ void chase_k(const uint32_t* __restrict__ next, uint32_t start, int steps,
                        uint32_t* out, long long* cycles) {
  uint32_t j = start;
  long long t0 = clock64();
  for (int s = 0; s < steps; ++s) j = next[(size_t)j * LINE];
  long long t1 = clock64();
  *out = j;
  *cycles = t1 - t0;
}

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  std::vector<size_t> sizes;
  for (size_t s = 16ull << 10; s <= (1ull << 30); s *= o.quick ? 32 : 4) sizes.push_back(s);
  uint32_t* out;
  long long* cyc;
  CUDA_CHECK(cudaMalloc(&out, sizeof(uint32_t)));
  CUDA_CHECK(cudaMalloc(&cyc, sizeof(long long)));
  print_header();
  const int steps = 1 << 14;
  for (size_t size : sizes) {
    size_t lines = size / 128;
    std::vector<uint32_t> perm(lines), host(lines * LINE, 0);
    for (size_t i = 0; i < lines; ++i) perm[i] = (uint32_t)i;
    for (size_t i = lines - 1; i > 0; --i) std::swap(perm[i], perm[mix(i) % i]);  // Sattolo
    for (size_t i = 0; i < lines; ++i) host[i * LINE] = perm[i];
    uint32_t* next;
    CUDA_CHECK(cudaMalloc(&next, size));
    CUDA_CHECK(cudaMemcpy(next, host.data(), size, cudaMemcpyHostToDevice));
    auto launch = [&] {
      chase_k<<<1, 1>>>(next, 0, steps, out, cyc);
      LAUNCH_CHECK();
    };
    launch();  // also warms the caches for the timed runs
    CUDA_CHECK(cudaDeviceSynchronize());
    uint32_t got;
    long long cycles;
    CUDA_CHECK(cudaMemcpy(&got, out, sizeof(got), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(&cycles, cyc, sizeof(cycles), cudaMemcpyDeviceToHost));
    uint32_t j = 0;
    for (int s = 0; s < steps; ++s) j = perm[j];
    Row r;
    r.benchmark = "pointer_chase";
    r.family = "latency";
    r.working_set_bytes = (double)size;
    r.bytes = 4.0 * steps;
    r.check_rel_err = got == j ? 0.0 : 1.0;
    r.t = time_events(launch, o, nullptr, 0, steps);
    r.cycles = (double)cycles / steps;
    r.method = event_method(r.t, false) + "; time per dependent load (" +
               std::to_string(steps) + " hops), cycles from clock64";
    print_row(r);
    require(got == j, r, 0.0);
    CUDA_CHECK(cudaFree(next));
  }
  return failures() ? 3 : 0;
}
