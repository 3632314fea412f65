// GEMM through cuBLAS (cublasGemmEx) and cuBLASLt (fp8): C[m,n] = A[m,k] B[k,n] over a shape
// sweep (square, tall-skinny, LLM decode and prefill shapes) and dtypes fp32, tf32, fp16,
// bf16, int8 and, on sm_89+, fp8 (e4m3 in, bf16 out). "TN" layout (A stored k x m, B k x n,
// column-major), the layout every cuBLAS tensor-core path accepts.
// Check: 64 sampled outputs against a float64 host sum over the (regenerated) inputs.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include "common.cuh"

#define CUBLAS_CHECK(call)                                                           \
  do {                                                                               \
    cublasStatus_t st_ = (call);                                                     \
    if (st_ != CUBLAS_STATUS_SUCCESS) {                                              \
      std::fprintf(stderr, "cuBLAS error %d at %s:%d: %s\n", (int)st_, __FILE__,     \
                   __LINE__, #call);                                                 \
      std::exit(2);                                                                  \
    }                                                                                \
  } while (0)

using namespace pm;

struct ToF32 {
  __device__ float operator()(uint64_t s, size_t i) const { return rand_val(s, i); }
};
struct ToF16 {
  __device__ __half operator()(uint64_t s, size_t i) const {
    return __float2half(rand_val(s, i));
  }
};
struct ToBF16 {
  __device__ __nv_bfloat16 operator()(uint64_t s, size_t i) const {
    return __float2bfloat16(rand_val(s, i));
  }
};
struct ToI8 {
  __device__ int8_t operator()(uint64_t s, size_t i) const { return (int8_t)rand_int(s, i); }
};
struct ToFP8 {
  __device__ __nv_fp8_e4m3 operator()(uint64_t s, size_t i) const {
    return __nv_fp8_e4m3(rand_val(s, i));
  }
};

// What the device holds at element i, as a double (same rounding as the device conversion).
static double host_in(const std::string& dt, uint64_t s, size_t i) {
  float v = rand_val(s, i);
  if (dt == "fp16") return (double)__half2float(__float2half(v));
  if (dt == "bf16") return (double)__bfloat162float(__float2bfloat16(v));
  if (dt == "int8") return (double)rand_int(s, i);
  if (dt == "fp8") return (double)(float)__nv_fp8_e4m3(v);
  if (dt == "tf32") {  // tf32 keeps 10 mantissa bits: the reference uses fp32 inputs
    return (double)v;
  }
  return (double)v;
}

static double tolerance(const std::string& dt) {
  if (dt == "fp32") return 1e-5;
  if (dt == "tf32") return 5e-3;
  if (dt == "fp16") return 5e-3;
  if (dt == "int8") return 0.0;
  return 2e-2;  // bf16 and fp8 (bf16 output)
}

static size_t in_size(const std::string& dt) {
  if (dt == "fp32" || dt == "tf32") return 4;
  if (dt == "fp16" || dt == "bf16") return 2;
  return 1;
}
static size_t out_size(const std::string& dt) {
  if (dt == "fp32" || dt == "tf32" || dt == "int8") return 4;
  return 2;
}

static double read_out(const std::string& dt, const void* c, size_t idx) {
  unsigned char raw[4];
  CUDA_CHECK(cudaMemcpy(raw, (const char*)c + idx * out_size(dt), out_size(dt),
                        cudaMemcpyDeviceToHost));
  if (dt == "fp32" || dt == "tf32") return (double)*(float*)raw;
  if (dt == "int8") return (double)*(int32_t*)raw;
  if (dt == "fp16") return (double)__half2float(*(__half*)raw);
  return (double)__bfloat162float(*(__nv_bfloat16*)raw);
}

struct Gemm {
  cublasHandle_t h;
  cublasLtHandle_t lt;
  void* workspace;
  size_t workspace_bytes = 64ull << 20;
};

static void run_gemm(Gemm& g, const std::string& dt, int m, int n, int k, const void* A,
                     const void* B, void* C) {
  float one = 1.f, zero = 0.f;
  int32_t ione = 1, izero = 0;
  auto ex = [&](cudaDataType_t in, cudaDataType_t out, cublasComputeType_t comp,
                const void* alpha, const void* beta) {
    CUBLAS_CHECK(cublasGemmEx(g.h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, alpha, A, in, k, B, in,
                              k, beta, C, out, m, comp, CUBLAS_GEMM_DEFAULT));
  };
  if (dt == "fp32") ex(CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F, &one, &zero);
  else if (dt == "tf32") ex(CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32, &one, &zero);
  else if (dt == "fp16") ex(CUDA_R_16F, CUDA_R_16F, CUBLAS_COMPUTE_32F, &one, &zero);
  else if (dt == "bf16") ex(CUDA_R_16BF, CUDA_R_16BF, CUBLAS_COMPUTE_32F, &one, &zero);
  else if (dt == "int8") ex(CUDA_R_8I, CUDA_R_32I, CUBLAS_COMPUTE_32I, &ione, &izero);
  else {  // fp8 through cuBLASLt: D(bf16) = A^T(e4m3) B(e4m3), fp32 accumulate
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta,
                                                sizeof(ta)));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb,
                                                sizeof(tb)));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_8F_E4M3, k, m, k));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8F_E4M3, k, n, k));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, m, n, m));
    CUBLAS_CHECK(cublasLtMatmul(g.lt, op, &one, A, la, B, lb, &zero, C, lc, C, lc, nullptr,
                                g.workspace, g.workspace_bytes, 0));
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(op);
  }
}

static void fill_input(const std::string& dt, void* p, size_t n, uint64_t seed) {
  if (dt == "fp32" || dt == "tf32") fill((float*)p, n, seed, ToF32{});
  else if (dt == "fp16") fill((__half*)p, n, seed, ToF16{});
  else if (dt == "bf16") fill((__nv_bfloat16*)p, n, seed, ToBF16{});
  else if (dt == "int8") fill((int8_t*)p, n, seed, ToI8{});
  else fill((__nv_fp8_e4m3*)p, n, seed, ToFP8{});
}

static double check(Gemm& g, const std::string& dt, int m, int n, int k, const void* A,
                    const void* B, void* C) {
  CUDA_CHECK(cudaMemset(C, 0xff, (size_t)m * n * out_size(dt)));  // poison: NaN / -1
  run_gemm(g, dt, m, n, k, A, B, C);
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<double> out, ref;
  for (int s = 0; s < 64; ++s) {
    size_t i = mix(1000 + s) % m, j = mix(2000 + s) % n;
    double acc = 0;
    for (int kk = 0; kk < k; ++kk)  // A(i, kk) at kk + i k; B(kk, j) at kk + j k
      acc += host_in(dt, 1, kk + i * (size_t)k) * host_in(dt, 2, kk + j * (size_t)k);
    ref.push_back(acc);
    out.push_back(read_out(dt, C, i + j * (size_t)m));
  }
  return rel_err(out, ref);
}

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  int dev = 0;
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  bool has_fp8 = prop.major * 10 + prop.minor >= 89;
  std::vector<std::array<int, 3>> shapes;
  std::vector<int> square = o.quick ? std::vector<int>{1024, 4096}
                                    : std::vector<int>{256, 512, 1024, 2048, 4096, 8192, 16384};
  for (int s : square) shapes.push_back({s, s, s});
  std::vector<int> tokens = o.quick ? std::vector<int>{1, 16, 512}
                                    : std::vector<int>{1, 2, 4, 8, 16, 32, 64, 128, 256, 512,
                                                       1024, 2048, 4096, 8192};
  for (int t : tokens) {  // LLM decode (small t) and prefill (large t): Llama-2-7B projections
    shapes.push_back({t, 4096, 4096});
    if (!o.quick) shapes.push_back({t, 11008, 4096});
  }
  if (!o.quick) shapes.push_back({65536, 1024, 1024});  // tall-skinny
  std::vector<std::string> dtypes = {"fp32", "tf32", "fp16", "bf16", "int8"};
  if (has_fp8) dtypes.push_back("fp8");
  Gemm g;
  CUBLAS_CHECK(cublasCreate(&g.h));
  CUBLAS_CHECK(cublasLtCreate(&g.lt));
  CUDA_CHECK(cudaMalloc(&g.workspace, g.workspace_bytes));
  CUBLAS_CHECK(cublasSetWorkspace(g.h, g.workspace, g.workspace_bytes));
  L2Flusher flusher;
  print_header();
  for (const auto& dt : dtypes) {
    for (const auto& shape : shapes) {
      const int m = shape[0], n = shape[1], k = shape[2];
      if ((dt == "fp8" || dt == "int8") && (m % 16 || n % 16 || k % 16)) continue;
      void *A, *B, *C;
      CUDA_CHECK(cudaMalloc(&A, (size_t)m * k * in_size(dt)));
      CUDA_CHECK(cudaMalloc(&B, (size_t)k * n * in_size(dt)));
      CUDA_CHECK(cudaMalloc(&C, (size_t)m * n * out_size(dt)));
      fill_input(dt, A, (size_t)m * k, 1);
      fill_input(dt, B, (size_t)k * n, 2);
      Row r;
      r.benchmark = dt == "fp8" ? "gemm_cublaslt" : "gemm_cublas";
      r.family = "gemm";
      r.dtype = dt;
      r.m = m, r.n = n, r.k = k;
      r.flops = 2.0 * m * n * k;
      r.bytes = (double)(m + n) * k * in_size(dt) + (double)m * n * out_size(dt);
      r.working_set_bytes = r.bytes;
      r.check_rel_err = check(g, dt, m, n, k, A, B, C);
      r.t = time_events([&] { run_gemm(g, dt, m, n, k, A, B, C); }, o, &flusher);
      r.method = event_method(r.t, true) + "; cublasGemmEx TN default algo";
      print_row(r);
      require(r.check_rel_err <= tolerance(dt), r, tolerance(dt));
      CUDA_CHECK(cudaFree(A));
      CUDA_CHECK(cudaFree(B));
      CUDA_CHECK(cudaFree(C));
    }
  }
  cublasDestroy(g.h);
  cublasLtDestroy(g.lt);
  return failures() ? 3 : 0;
}
