// conv2d forward through cuDNN, fp16 NHWC (tensor cores), on ResNet-50 layer shapes at
// batch 1 and 32; the algorithm is cuDNN's first heuristic choice with its workspace.
// FLOP = 2 N K P Q C R S; bytes = input + filter + output (each once). L2 flushed.
// Check: 64 sampled outputs against a float64 direct convolution on the host.
#include <cuda_fp16.h>
#include <cudnn.h>

#include "common.cuh"

#define CUDNN_CHECK(call)                                                                 \
  do {                                                                                    \
    cudnnStatus_t st_ = (call);                                                           \
    if (st_ != CUDNN_STATUS_SUCCESS) {                                                    \
      std::fprintf(stderr, "cuDNN error %s at %s:%d: %s\n", cudnnGetErrorString(st_),     \
                   __FILE__, __LINE__, #call);                                            \
      std::exit(2);                                                                       \
    }                                                                                     \
  } while (0)

using namespace pm;

struct ToF16 {
  __device__ __half operator()(uint64_t s, size_t i) const {
    return __float2half(rand_val(s, i));
  }
};
static double hval(uint64_t s, size_t i) { return __half2float(__float2half(rand_val(s, i))); }

struct Shape {
  int c, h, k, r, stride;
};

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  // ResNet-50: conv1, a 3x3 of stage 1, 1x1 expand, stage-3 3x3 stride 2, stage-4 3x3
  std::vector<Shape> shapes = {{3, 224, 64, 7, 2}, {64, 56, 64, 3, 1}, {64, 56, 256, 1, 1},
                               {256, 28, 256, 3, 2}, {512, 7, 512, 3, 1}};
  std::vector<int> batches = o.quick ? std::vector<int>{1} : std::vector<int>{1, 32};
  cudnnHandle_t h;
  CUDNN_CHECK(cudnnCreate(&h));
  L2Flusher fl;
  print_header();
  for (int n : batches) {
    for (const Shape& s : shapes) {
      const int pad = s.r / 2, p = (s.h + 2 * pad - s.r) / s.stride + 1;
      cudnnTensorDescriptor_t xd, yd;
      cudnnFilterDescriptor_t wd;
      cudnnConvolutionDescriptor_t cd;
      CUDNN_CHECK(cudnnCreateTensorDescriptor(&xd));
      CUDNN_CHECK(cudnnCreateTensorDescriptor(&yd));
      CUDNN_CHECK(cudnnCreateFilterDescriptor(&wd));
      CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&cd));
      CUDNN_CHECK(cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, n, s.c,
                                             s.h, s.h));
      CUDNN_CHECK(cudnnSetFilter4dDescriptor(wd, CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC, s.k, s.c,
                                             s.r, s.r));
      CUDNN_CHECK(cudnnSetConvolution2dDescriptor(cd, pad, pad, s.stride, s.stride, 1, 1,
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
      CUDNN_CHECK(cudnnSetConvolutionMathType(cd, CUDNN_TENSOR_OP_MATH));
      CUDNN_CHECK(cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, n, s.k,
                                             p, p));
      cudnnConvolutionFwdAlgoPerf_t perf[8];
      int found = 0;
      CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, xd, wd, cd, yd, 8, &found, perf));
      cudnnConvolutionFwdAlgo_t algo = perf[0].algo;
      size_t ws_bytes = 0;
      CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, xd, wd, cd, yd, algo, &ws_bytes));
      size_t nx = (size_t)n * s.h * s.h * s.c, nw = (size_t)s.k * s.r * s.r * s.c,
             ny = (size_t)n * p * p * s.k;
      __half *x, *w, *y;
      void* ws = nullptr;
      CUDA_CHECK(cudaMalloc(&x, nx * 2));
      CUDA_CHECK(cudaMalloc(&w, nw * 2));
      CUDA_CHECK(cudaMalloc(&y, ny * 2));
      if (ws_bytes) CUDA_CHECK(cudaMalloc(&ws, ws_bytes));
      fill(x, nx, 1, ToF16{});
      fill(w, nw, 2, ToF16{});
      float one = 1.f, zero = 0.f;
      auto launch = [&] {
        CUDNN_CHECK(cudnnConvolutionForward(h, &one, xd, x, wd, w, cd, algo, ws, ws_bytes,
                                            &zero, yd, y));
      };
      CUDA_CHECK(cudaMemset(y, 0xff, ny * 2));
      launch();
      CUDA_CHECK(cudaDeviceSynchronize());
      std::vector<double> out, ref;
      for (int t = 0; t < 64; ++t) {  // NHWC: y[b][py][px][kk]; x[b][iy][ix][cc]; w[kk][r][s][cc]
        size_t b = mix(t) % n, py = mix(t + 100) % p, px = mix(t + 200) % p,
               kk = mix(t + 300) % s.k;
        double acc = 0;
        for (int fy = 0; fy < s.r; ++fy)
          for (int fx = 0; fx < s.r; ++fx) {
            long iy = (long)py * s.stride - pad + fy, ix = (long)px * s.stride - pad + fx;
            if (iy < 0 || ix < 0 || iy >= s.h || ix >= s.h) continue;
            for (int cc = 0; cc < s.c; ++cc)
              acc += hval(1, ((b * s.h + iy) * s.h + ix) * s.c + cc) *
                     hval(2, ((kk * s.r + fy) * s.r + fx) * s.c + cc);
          }
        __half v;
        CUDA_CHECK(cudaMemcpy(&v, y + ((b * p + py) * p + px) * s.k + kk, 2,
                              cudaMemcpyDeviceToHost));
        out.push_back(__half2float(v));
        ref.push_back(acc);
      }
      Row r;
      r.benchmark = "conv2d_cudnn";
      r.family = "conv";
      r.dtype = "fp16";
      r.batch = n;
      r.m = s.c, r.n = s.k, r.k = s.r;  // conv: m = in channels, n = out channels, k = kernel
      r.flops = 2.0 * n * s.k * p * p * (double)s.c * s.r * s.r;
      r.bytes = 2.0 * (nx + nw + ny);
      r.working_set_bytes = r.bytes;
      r.check_rel_err = rel_err(out, ref);
      r.t = time_events(launch, o, &fl);
      r.method = event_method(r.t, true) + "; NHWC, input " + std::to_string(s.h) + "x" +
                 std::to_string(s.h) + ", stride " + std::to_string(s.stride) +
                 ", cuDNN heuristic algo " + std::to_string((int)algo);
      print_row(r);
      require(r.check_rel_err <= 5e-3, r, 5e-3);
      cudaFree(x), cudaFree(w), cudaFree(y), cudaFree(ws);
      cudnnDestroyTensorDescriptor(xd), cudnnDestroyTensorDescriptor(yd);
      cudnnDestroyFilterDescriptor(wd), cudnnDestroyConvolutionDescriptor(cd);
    }
  }
  cudnnDestroy(h);
  return failures() ? 3 : 0;
}
