// L2 bandwidth: every thread block streams a buffer that fits in L2 (and, for contrast, two
// that do not) `passes` times with 16-byte loads; the buffer stays warm (no flush: this is
// the cache's rate). Bytes = buffer x passes. The loaded values (all 1.0f) are summed and
// each thread writes its sum, so the loads cannot be optimised away; the check compares the
// total with buffer elements x passes.
#include "common.cuh"

using namespace pm;

__global__ void read_k(const float4* __restrict__ p, size_t n4, int passes,
                       float* __restrict__ sums) {
  float acc = 0.f;
  size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  size_t stride = (size_t)gridDim.x * blockDim.x;
  for (int pass = 0; pass < passes; ++pass)
    for (size_t i = tid; i < n4; i += stride) {
      float4 v = __ldcg(p + i);  // cache in L2 only: the L1 does not serve repeats
      acc += v.x + v.y + v.z + v.w;
    }
  sums[tid] = acc;
}

struct One {
  __device__ float operator()(uint64_t, size_t) const { return 1.0f; }
};

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  int dev = 0, sms = 0, l2 = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
  std::vector<size_t> sizes;
  for (size_t s = 1ull << 20; s <= 4 * (size_t)l2; s *= o.quick ? 8 : 2) sizes.push_back(s);
  const int blocks = sms * 4, threads = 512;
  float* sums;
  CUDA_CHECK(cudaMalloc(&sums, sizeof(float) * blocks * threads));
  print_header();
  for (size_t size : sizes) {
    size_t n = size / sizeof(float);
    float* buf;
    CUDA_CHECK(cudaMalloc(&buf, size));
    fill(buf, n, 0, One{});
    const int passes = (int)std::max<size_t>(1, (256ull << 20) / size);
    auto launch = [&] {
      read_k<<<blocks, threads>>>((const float4*)buf, n / 4, passes, sums);
      LAUNCH_CHECK();
    };
    CUDA_CHECK(cudaMemset(sums, 0xff, sizeof(float) * blocks * threads));
    launch();
    std::vector<float> host(blocks * threads);
    CUDA_CHECK(cudaMemcpy(host.data(), sums, sizeof(float) * host.size(),
                          cudaMemcpyDeviceToHost));
    double total = 0;
    for (float v : host) total += v;
    double expect = (double)n * passes;
    Row r;
    r.benchmark = "l2_read";
    r.family = "l2";
    r.dtype = "fp32";
    r.bytes = (double)size * passes;
    r.working_set_bytes = (double)size;
    r.flops = (double)n * passes;
    r.check_rel_err = std::fabs(total - expect) / expect;
    r.t = time_events(launch, o, nullptr);
    r.method = event_method(r.t, false) + "; " + std::to_string(passes) +
               " passes over the buffer per launch, ld.global.cg float4";
    print_row(r);
    require(r.check_rel_err == 0.0, r, 0.0);
    CUDA_CHECK(cudaFree(buf));
  }
  return failures() ? 3 : 0;
}
