// Naive (unfused) attention, fp16: S = Q K^T / sqrt(d) (cuBLAS strided-batched, fp32 out),
// row softmax (one warp per row, fp32 in, fp16 P out), O = P V (strided-batched, fp16).
// The three kernels as an unfused framework runs them; FLOP = 4 B H S^2 D (two matmuls)
// + 5 B H S^2 (softmax); bytes = Q, K, V, O once + S written and read (fp32) + P written and
// read (fp16). L2 flushed before each repetition.
// Check: 16 sampled output rows x 8 columns against a float64 host attention.
#include <cublas_v2.h>
#include <cuda_fp16.h>

#include "common.cuh"

#define CUBLAS_CHECK(call)                                                         \
  do {                                                                             \
    cublasStatus_t st_ = (call);                                                   \
    if (st_ != CUBLAS_STATUS_SUCCESS) {                                            \
      std::fprintf(stderr, "cuBLAS error %d at %s:%d\n", (int)st_, __FILE__, __LINE__); \
      std::exit(2);                                                                \
    }                                                                              \
  } while (0)

using namespace pm;

__global__ void softmax_k(const float* __restrict__ s, __half* __restrict__ p, int rows,
                          int cols) {
  int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float* in = s + (size_t)row * cols;
  float mx = -INFINITY, sum = 0.f;
  for (int c = lane; c < cols; c += 32) mx = fmaxf(mx, in[c]);
  for (int o = 16; o; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, o));
  for (int c = lane; c < cols; c += 32) sum += __expf(in[c] - mx);
  for (int o = 16; o; o >>= 1) sum += __shfl_xor_sync(0xffffffff, sum, o);
  for (int c = lane; c < cols; c += 32)
    p[(size_t)row * cols + c] = __float2half(__expf(in[c] - mx) / sum);
}

struct ToF16 {
  __device__ __half operator()(uint64_t s, size_t i) const {
    return __float2half(rand_val(s, i));
  }
};
static double hval(uint64_t s, size_t i) { return __half2float(__float2half(rand_val(s, i))); }

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  const int heads = 32, d = 128;  // Llama-2-7B attention
  std::vector<std::array<int, 2>> cases;  // (batch, seq)
  for (int s : o.quick ? std::vector<int>{512, 2048} : std::vector<int>{256, 512, 1024, 2048, 4096})
    cases.push_back({1, s});
  if (!o.quick) cases.push_back({8, 1024});
  cublasHandle_t h;
  CUBLAS_CHECK(cublasCreate(&h));
  L2Flusher fl;
  print_header();
  for (const auto& cs : cases) {
    const int b = cs[0], seq = cs[1], bh = b * heads;
    size_t nq = (size_t)bh * seq * d, ns = (size_t)bh * seq * seq;
    __half *q, *k, *v, *out, *p;
    float* s;
    CUDA_CHECK(cudaMalloc(&q, nq * 2));
    CUDA_CHECK(cudaMalloc(&k, nq * 2));
    CUDA_CHECK(cudaMalloc(&v, nq * 2));
    CUDA_CHECK(cudaMalloc(&out, nq * 2));
    CUDA_CHECK(cudaMalloc(&s, ns * 4));
    CUDA_CHECK(cudaMalloc(&p, ns * 2));
    fill(q, nq, 1, ToF16{});
    fill(k, nq, 2, ToF16{});
    fill(v, nq, 3, ToF16{});
    const float scale = 1.f / std::sqrt((float)d), one = 1.f, zero = 0.f;
    // Row-major [seq, d] per head is column-major [d, seq]: S^T(col-major) = K^T... so
    // S (row-major seq x seq) = Q K^T is col-major S^T = K Q^T: gemm(T, N) with A = K, B = Q.
    auto launch = [&] {
      CUBLAS_CHECK(cublasGemmStridedBatchedEx(
          h, CUBLAS_OP_T, CUBLAS_OP_N, seq, seq, d, &scale, k, CUDA_R_16F, d,
          (long long)seq * d, q, CUDA_R_16F, d, (long long)seq * d, &zero, s, CUDA_R_32F, seq,
          (long long)seq * seq, bh, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      softmax_k<<<(bh * seq + 7) / 8, 256>>>(s, p, bh * seq, seq);
      LAUNCH_CHECK();
      // O (row-major seq x d) = P V: col-major O^T = V^T P^T: gemm(N, N) with A = V, B = P
      CUBLAS_CHECK(cublasGemmStridedBatchedEx(
          h, CUBLAS_OP_N, CUBLAS_OP_N, d, seq, seq, &one, v, CUDA_R_16F, d, (long long)seq * d,
          p, CUDA_R_16F, seq, (long long)seq * seq, &zero, out, CUDA_R_16F, d,
          (long long)seq * d, bh, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    };
    CUDA_CHECK(cudaMemset(out, 0xff, nq * 2));
    launch();
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<double> got, ref;
    for (int t = 0; t < 16; ++t) {
      size_t head = mix(t) % bh, row = mix(t + 50) % seq;
      std::vector<double> w(seq);
      double mx = -1e300, sum = 0;
      for (int c = 0; c < seq; ++c) {
        double acc = 0;
        for (int j = 0; j < d; ++j)
          acc += hval(1, (head * seq + row) * d + j) * hval(2, (head * seq + c) * d + j);
        w[c] = acc / std::sqrt((double)d);
        mx = std::max(mx, w[c]);
      }
      for (int c = 0; c < seq; ++c) sum += (w[c] = std::exp(w[c] - mx));
      for (int j = 0; j < 8; ++j) {
        double acc = 0;
        for (int c = 0; c < seq; ++c) acc += w[c] / sum * hval(3, (head * seq + c) * d + j);
        __half hv;
        CUDA_CHECK(cudaMemcpy(&hv, out + (head * seq + row) * d + j, 2,
                              cudaMemcpyDeviceToHost));
        got.push_back(__half2float(hv));
        ref.push_back(acc);
      }
    }
    Row r;
    r.benchmark = "attention_naive";
    r.family = "attention";
    r.dtype = "fp16";
    r.batch = b;
    r.seq = seq;
    r.m = heads, r.k = d;
    r.flops = 4.0 * bh * (double)seq * seq * d + 5.0 * bh * (double)seq * seq;
    r.bytes = 2.0 * 4 * nq + 4.0 * 2 * ns + 2.0 * 2 * ns;
    r.working_set_bytes = r.bytes;
    r.check_rel_err = rel_err(got, ref);
    r.t = time_events(launch, o, &fl);
    r.method = event_method(r.t, true) + "; " + std::to_string(heads) + " heads x d " +
               std::to_string(d) + ", unfused: cuBLAS QK^T, softmax kernel, cuBLAS PV";
    print_row(r);
    require(r.check_rel_err <= 1e-2, r, 1e-2);
    cudaFree(q), cudaFree(k), cudaFree(v), cudaFree(out), cudaFree(s), cudaFree(p);
  }
  cublasDestroy(h);
  return failures() ? 3 : 0;
}
