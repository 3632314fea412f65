// Device-memory bandwidth: STREAM copy, scale, add and triad (McCalpin's kernels, as
// BabelStream runs them on GPUs) on fp64 arrays from 256 KB (L2-sized) to 1 GB per array.
// L2 is flushed before every repetition, so each size measures the cold path: small sizes
// show the launch/latency ramp, large ones the HBM rate. Bytes counted as STREAM does:
// copy/scale 2 arrays, add/triad 3 arrays per element.
// Check: 256 sampled elements of each kernel's output against the host formula.
#include "common.cuh"

using namespace pm;

constexpr double SCALAR = 0.4;

__global__ void copy_k(double* __restrict__ a, const double* __restrict__ b, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    a[i] = b[i];
}
__global__ void scale_k(double* __restrict__ a, const double* __restrict__ b, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    a[i] = SCALAR * b[i];
}
__global__ void add_k(double* __restrict__ a, const double* __restrict__ b,
                      const double* __restrict__ c, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    a[i] = b[i] + c[i];
}
__global__ void triad_k(double* __restrict__ a, const double* __restrict__ b,
                        const double* __restrict__ c, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    a[i] = b[i] + SCALAR * c[i];
}

struct ToF64 {
  __device__ double operator()(uint64_t s, size_t i) const { return rand_val(s, i); }
};

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  int dev = 0, sms = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  std::vector<size_t> sizes;
  for (size_t s = 256ull << 10; s <= (1ull << 30); s *= o.quick ? 16 : 4) sizes.push_back(s);
  L2Flusher flusher;
  print_header();
  for (size_t size : sizes) {
    size_t n = size / sizeof(double);
    double *a, *b, *c;
    CUDA_CHECK(cudaMalloc(&a, size));
    CUDA_CHECK(cudaMalloc(&b, size));
    CUDA_CHECK(cudaMalloc(&c, size));
    fill(b, n, 1, ToF64{});
    fill(c, n, 2, ToF64{});
    int blocks = (int)std::min<size_t>((n + 255) / 256, (size_t)sms * 32);
    const char* names[] = {"copy", "scale", "add", "triad"};
    const int arrays[] = {2, 2, 3, 3};
    for (int kind = 0; kind < 4; ++kind) {
      auto launch = [&] {
        if (kind == 0) copy_k<<<blocks, 256>>>(a, b, n);
        if (kind == 1) scale_k<<<blocks, 256>>>(a, b, n);
        if (kind == 2) add_k<<<blocks, 256>>>(a, b, c, n);
        if (kind == 3) triad_k<<<blocks, 256>>>(a, b, c, n);
        LAUNCH_CHECK();
      };
      CUDA_CHECK(cudaMemset(a, 0xff, size));
      launch();
      CUDA_CHECK(cudaDeviceSynchronize());
      std::vector<double> out(256), ref(256);
      for (int t = 0; t < 256; ++t) {
        size_t i = mix(t + 7) % n;
        CUDA_CHECK(cudaMemcpy(&out[t], a + i, sizeof(double), cudaMemcpyDeviceToHost));
        double bv = rand_val(1, i), cv = rand_val(2, i);
        ref[t] = kind == 0 ? bv : kind == 1 ? SCALAR * bv : kind == 2 ? bv + cv
                                                                      : bv + SCALAR * cv;
      }
      Row r;
      r.benchmark = std::string("stream_") + names[kind];
      r.family = "membw";
      r.dtype = "fp64";
      r.bytes = (double)arrays[kind] * size;
      r.working_set_bytes = r.bytes;
      r.flops = kind == 0 ? NAN : (double)n * (kind == 3 ? 2 : 1);
      r.check_rel_err = rel_err(out, ref);
      r.t = time_events(launch, o, &flusher);
      r.method = event_method(r.t, true) + "; grid-stride loop, 256 threads x 32 blocks/SM";
      print_row(r);
      require(r.check_rel_err <= 1e-15, r, 1e-15);
    }
    CUDA_CHECK(cudaFree(a));
    CUDA_CHECK(cudaFree(b));
    CUDA_CHECK(cudaFree(c));
  }
  return failures() ? 3 : 0;
}
