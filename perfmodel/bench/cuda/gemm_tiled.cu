// A plain tiled CUDA GEMM in fp32 (no library): the "what a hand-written kernel gets" point.
// 64 x 64 output tile per block of 256 threads, 4 x 4 outputs per thread, k in steps of 16
// through shared memory. Row-major C[m,n] = A[m,k] B[k,n]; sizes are multiples of 64.
// Check: 64 sampled outputs against a float64 host sum.
#include "common.cuh"

using namespace pm;

constexpr int TILE = 64, BK = 16, PER = 4;

__global__ void __launch_bounds__(256) tiled_gemm(const float* __restrict__ A,
                                                  const float* __restrict__ B,
                                                  float* __restrict__ C, int m, int n, int k) {
  __shared__ float As[BK][TILE];
  __shared__ float Bs[BK][TILE];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int row0 = blockIdx.y * TILE, col0 = blockIdx.x * TILE;
  float acc[PER][PER] = {};
  for (int k0 = 0; k0 < k; k0 += BK) {
    for (int i = threadIdx.x; i < BK * TILE; i += blockDim.x) {
      int r = i / BK, c = i % BK;  // A tile: TILE rows x BK cols, stored transposed
      As[c][r] = A[(size_t)(row0 + r) * k + k0 + c];
      int br = i / TILE, bc = i % TILE;  // B tile: BK rows x TILE cols
      Bs[br][bc] = B[(size_t)(k0 + br) * n + col0 + bc];
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float a[PER], b[PER];
#pragma unroll
      for (int p = 0; p < PER; ++p) {
        a[p] = As[kk][ty * PER + p];
        b[p] = Bs[kk][tx * PER + p];
      }
#pragma unroll
      for (int i = 0; i < PER; ++i)
#pragma unroll
        for (int j = 0; j < PER; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < PER; ++i)
#pragma unroll
    for (int j = 0; j < PER; ++j)
      C[(size_t)(row0 + ty * PER + i) * n + col0 + tx * PER + j] = acc[i][j];
}

struct ToF32 {
  __device__ float operator()(uint64_t s, size_t i) const { return rand_val(s, i); }
};

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  std::vector<int> sizes = o.quick ? std::vector<int>{512, 2048}
                                   : std::vector<int>{256, 512, 1024, 2048, 4096, 8192};
  L2Flusher flusher;
  print_header();
  for (int s : sizes) {
    const int m = s, n = s, k = s;
    float *A, *B, *C;
    CUDA_CHECK(cudaMalloc(&A, sizeof(float) * m * k));
    CUDA_CHECK(cudaMalloc(&B, sizeof(float) * k * n));
    CUDA_CHECK(cudaMalloc(&C, sizeof(float) * m * n));
    fill(A, (size_t)m * k, 1, ToF32{});
    fill(B, (size_t)k * n, 2, ToF32{});
    dim3 grid(n / TILE, m / TILE);
    auto launch = [&] {
      tiled_gemm<<<grid, 256>>>(A, B, C, m, n, k);
      LAUNCH_CHECK();
    };
    CUDA_CHECK(cudaMemset(C, 0xff, sizeof(float) * m * n));  // poison (NaN)
    launch();
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<double> out, ref;
    for (int t = 0; t < 64; ++t) {
      size_t i = mix(10 + t) % m, j = mix(20 + t) % n;
      double acc = 0;
      for (int kk = 0; kk < k; ++kk)
        acc += (double)rand_val(1, i * k + kk) * (double)rand_val(2, (size_t)kk * n + j);
      float v;
      CUDA_CHECK(cudaMemcpy(&v, C + i * n + j, sizeof(float), cudaMemcpyDeviceToHost));
      out.push_back(v);
      ref.push_back(acc);
    }
    Row r;
    r.benchmark = "gemm_tiled";
    r.family = "gemm";
    r.dtype = "fp32";
    r.m = m, r.n = n, r.k = k;
    r.flops = 2.0 * m * n * k;
    r.bytes = 4.0 * ((double)m * k + (double)k * n + (double)m * n);
    r.check_rel_err = rel_err(out, ref);
    r.t = time_events(launch, o, &flusher);
    r.method = event_method(r.t, true) + "; hand-written 64x64 tiled kernel, no library";
    print_row(r);
    require(r.check_rel_err <= 1e-5, r, 1e-5);
    CUDA_CHECK(cudaFree(A));
    CUDA_CHECK(cudaFree(B));
    CUDA_CHECK(cudaFree(C));
  }
  return failures() ? 3 : 0;
}
