// Elementwise and reduction kernels, the memory-bound ops between matrix products in a
// model: c = a + b and y = gelu(x) (tanh form) in fp16 and fp32, and a sum over all
// elements (fp32, two-stage: per-block partial sums, then one block), over sizes from 1 MB
// to 1 GB per operand. L2 flushed before each repetition. Bytes: add 3 operands, gelu 2,
// sum 1 (the partials are negligible).
// Check: 256 sampled outputs (add, gelu) or the total (sum) against the float64 host value.
#include <cuda_fp16.h>

#include "common.cuh"

using namespace pm;

template <typename T> __device__ __host__ inline float to_f(T v) { return (float)v; }
template <> __device__ __host__ inline float to_f<__half>(__half v) { return __half2float(v); }
template <typename T> __device__ inline T from_f(float v) { return (T)v; }
template <> __device__ inline __half from_f<__half>(float v) { return __float2half(v); }

template <typename T>
__global__ void add_k(T* __restrict__ c, const T* __restrict__ a, const T* __restrict__ b,
                      size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    c[i] = from_f<T>(to_f(a[i]) + to_f(b[i]));
}

__host__ __device__ inline float gelu(float x) {
  return 0.5f * x * (1.f + tanhf(0.7978845608f * (x + 0.044715f * x * x * x)));
}

template <typename T>
__global__ void gelu_k(T* __restrict__ y, const T* __restrict__ x, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    y[i] = from_f<T>(gelu(to_f(x[i])));
}

__global__ void sum_k(const float* __restrict__ x, size_t n, float* __restrict__ partial) {
  __shared__ float s[256];
  float acc = 0.f;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    acc += x[i];
  s[threadIdx.x] = acc;
  __syncthreads();
  for (int w = 128; w > 0; w >>= 1) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = s[0];
}

template <typename T>
struct Fill {
  __device__ T operator()(uint64_t s, size_t i) const { return from_f<T>(rand_val(s, i)); }
};

template <typename T>
double host_val(uint64_t s, size_t i) {
  return (double)to_f<T>((T)rand_val(s, i));
}
template <>
double host_val<__half>(uint64_t s, size_t i) {
  return (double)__half2float(__float2half(rand_val(s, i)));
}

template <typename T>
void run_pointwise(const char* dt, size_t size, int blocks, const Options& o, L2Flusher& fl) {
  size_t n = size / sizeof(T);
  T *a, *b, *c;
  CUDA_CHECK(cudaMalloc(&a, size));
  CUDA_CHECK(cudaMalloc(&b, size));
  CUDA_CHECK(cudaMalloc(&c, size));
  fill(a, n, 1, Fill<T>{});
  fill(b, n, 2, Fill<T>{});
  const double tol = sizeof(T) == 2 ? 2e-3 : 1e-6;
  for (int kind = 0; kind < 2; ++kind) {
    auto launch = [&] {
      if (kind == 0) add_k<T><<<blocks, 256>>>(c, a, b, n);
      else gelu_k<T><<<blocks, 256>>>(c, a, n);
      LAUNCH_CHECK();
    };
    CUDA_CHECK(cudaMemset(c, 0xff, size));
    launch();
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<double> out(256), ref(256);
    for (int t = 0; t < 256; ++t) {
      size_t i = mix(t + 3) % n;
      T v;
      CUDA_CHECK(cudaMemcpy(&v, c + i, sizeof(T), cudaMemcpyDeviceToHost));
      out[t] = (double)to_f<T>(v);
      double x = host_val<T>(1, i), y = host_val<T>(2, i);
      ref[t] = kind == 0 ? x + y : (double)gelu((float)x);
    }
    Row r;
    r.benchmark = kind == 0 ? "add" : "gelu";
    r.family = "elementwise";
    r.dtype = dt;
    r.flops = kind == 0 ? (double)n : 8.0 * n;
    r.bytes = (kind == 0 ? 3.0 : 2.0) * size;
    r.working_set_bytes = r.bytes;
    r.check_rel_err = rel_err(out, ref);
    r.t = time_events(launch, o, &fl);
    r.method = event_method(r.t, true);
    print_row(r);
    require(r.check_rel_err <= tol, r, tol);
  }
  CUDA_CHECK(cudaFree(a));
  CUDA_CHECK(cudaFree(b));
  CUDA_CHECK(cudaFree(c));
}

void run_sum(size_t size, int blocks, const Options& o, L2Flusher& fl) {
  size_t n = size / sizeof(float);
  float *x, *partial, *total;
  CUDA_CHECK(cudaMalloc(&x, size));
  CUDA_CHECK(cudaMalloc(&partial, sizeof(float) * blocks));
  CUDA_CHECK(cudaMalloc(&total, sizeof(float)));
  fill(x, n, 5, Fill<float>{});
  auto launch = [&] {
    sum_k<<<blocks, 256>>>(x, n, partial);
    sum_k<<<1, 256>>>(partial, blocks, total);
    LAUNCH_CHECK();
  };
  CUDA_CHECK(cudaMemset(total, 0xff, sizeof(float)));
  launch();
  float got;
  CUDA_CHECK(cudaMemcpy(&got, total, sizeof(float), cudaMemcpyDeviceToHost));
  double ref = 0, mag = 0;
  for (size_t i = 0; i < n; ++i) {
    ref += rand_val(5, i);
    mag += std::fabs(rand_val(5, i));
  }
  Row r;
  r.benchmark = "reduce_sum";
  r.family = "reduction";
  r.dtype = "fp32";
  r.flops = (double)n;
  r.bytes = (double)size;
  r.working_set_bytes = r.bytes;
  r.check_rel_err = std::fabs(got - ref) / mag;  // relative to the sum of magnitudes
  r.t = time_events(launch, o, &fl);
  r.method = event_method(r.t, true) + "; two kernels (block partials, then one block)";
  print_row(r);
  require(r.check_rel_err <= 1e-6, r, 1e-6);
  CUDA_CHECK(cudaFree(x));
  CUDA_CHECK(cudaFree(partial));
  CUDA_CHECK(cudaFree(total));
}

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  int sms = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const int blocks = sms * 8;
  L2Flusher fl;
  print_header();
  for (size_t size = 1ull << 20; size <= (1ull << 30); size *= o.quick ? 32 : 4) {
    run_pointwise<__half>("fp16", size, blocks, o, fl);
    run_pointwise<float>("fp32", size, blocks, o, fl);
    run_sum(size, blocks, o, fl);
  }
  return failures() ? 3 : 0;
}
