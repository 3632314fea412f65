// NCCL collectives across every visible GPU in one process (ncclCommInitAll): all_reduce,
// all_gather and reduce_scatter of fp32 over per-rank buffer sizes from 1 MB to 1 GB, timed
// like nccl-tests: events on rank 0's stream around each grouped call, after warm-up; median.
// Columns as nccl-tests reports them: time, algbw = size / time, busbw = algbw x 2(n-1)/n
// (all_reduce) or x (n-1)/n (all_gather, reduce_scatter); `bytes` is the per-rank size.
// Check: every rank contributes (rank + 1); all_reduce must give n(n+1)/2 everywhere.
#include <nccl.h>

#include "common.cuh"

#define NCCL_CHECK(call)                                                                \
  do {                                                                                  \
    ncclResult_t r_ = (call);                                                           \
    if (r_ != ncclSuccess) {                                                            \
      std::fprintf(stderr, "NCCL error %s at %s:%d\n", ncclGetErrorString(r_), __FILE__, \
                   __LINE__);                                                           \
      std::exit(2);                                                                     \
    }                                                                                   \
  } while (0)

using namespace pm;

__global__ void set_k(float* p, size_t n, float v) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    p[i] = v;
}

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  int ndev = 0;
  CUDA_CHECK(cudaGetDeviceCount(&ndev));
  print_header();
  if (ndev < 2) {
    std::printf("# skipped: collectives need at least 2 GPUs, %d visible\n", ndev);
    return 0;
  }
  std::vector<ncclComm_t> comms(ndev);
  std::vector<cudaStream_t> streams(ndev);
  NCCL_CHECK(ncclCommInitAll(comms.data(), ndev, nullptr));
  for (int i = 0; i < ndev; ++i) {
    CUDA_CHECK(cudaSetDevice(i));
    CUDA_CHECK(cudaStreamCreate(&streams[i]));
  }
  const char* names[] = {"all_reduce", "all_gather", "reduce_scatter"};
  for (size_t size = 1ull << 20; size <= (1ull << 30); size *= o.quick ? 32 : 4) {
    size_t n = size / sizeof(float);
    std::vector<float*> send(ndev), recv(ndev);
    for (int i = 0; i < ndev; ++i) {
      CUDA_CHECK(cudaSetDevice(i));
      CUDA_CHECK(cudaMalloc(&send[i], size));
      CUDA_CHECK(cudaMalloc(&recv[i], size * ndev));
      set_k<<<256, 256>>>(send[i], n, (float)(i + 1));
      LAUNCH_CHECK();
    }
    for (int kind = 0; kind < 3; ++kind) {
      auto launch = [&] {
        NCCL_CHECK(ncclGroupStart());
        for (int i = 0; i < ndev; ++i) {
          if (kind == 0)
            NCCL_CHECK(ncclAllReduce(send[i], recv[i], n, ncclFloat, ncclSum, comms[i],
                                     streams[i]));
          else if (kind == 1)
            NCCL_CHECK(ncclAllGather(send[i], recv[i], n / ndev, ncclFloat, comms[i],
                                     streams[i]));
          else
            NCCL_CHECK(ncclReduceScatter(send[i], recv[i], n / ndev, ncclFloat, ncclSum,
                                         comms[i], streams[i]));
        }
        NCCL_CHECK(ncclGroupEnd());
        for (int i = 1; i < ndev; ++i) CUDA_CHECK(cudaStreamSynchronize(streams[i]));
      };
      CUDA_CHECK(cudaSetDevice(0));
      Row r;
      r.t = time_events(launch, o, nullptr, streams[0]);
      float got = 0;
      CUDA_CHECK(cudaSetDevice(ndev - 1));
      CUDA_CHECK(cudaMemcpy(&got, recv[ndev - 1], sizeof(float), cudaMemcpyDeviceToHost));
      double expect = kind == 1 ? 1.0 : ndev * (ndev + 1) / 2.0;
      r.benchmark = names[kind];
      r.family = "collective";
      r.dtype = "fp32";
      r.bytes = (double)size;
      r.num_devices = ndev;
      double factor = kind == 0 ? 2.0 * (ndev - 1) / ndev : (double)(ndev - 1) / ndev;
      r.busbw_GBps = size / r.t.median_s / 1e9 * factor;
      r.check_rel_err = std::fabs(got - expect) / expect;
      r.method = event_method(r.t, false) + "; NCCL " + std::to_string(NCCL_VERSION_CODE) +
                 ", one process, " + std::to_string(ndev) + " GPUs (nccl-tests conventions)";
      print_row(r);
      require(r.check_rel_err == 0.0, r, 0.0);
    }
    for (int i = 0; i < ndev; ++i) {
      CUDA_CHECK(cudaSetDevice(i));
      cudaFree(send[i]), cudaFree(recv[i]);
    }
  }
  for (auto c : comms) ncclCommDestroy(c);
  return failures() ? 3 : 0;
}
