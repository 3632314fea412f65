// Kernel launch overhead: (1) back-to-back launches of a one-thread kernel, timed with
// events around 1000 of them (per launch: what a stream of small kernels pays); (2) the same
// 1000 kernels captured once in a CUDA graph and replayed (per kernel); (3) launch plus
// cudaStreamSynchronize, host clock (a framework that waits on every kernel).
// Check: each kernel adds 1 to a counter; the counter must equal the launches made.
#include <chrono>

#include "common.cuh"

using namespace pm;

__global__ void tick_k(unsigned long long* counter) { atomicAdd(counter, 1ull); }

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  const int batch = 1000;
  unsigned long long* counter;
  CUDA_CHECK(cudaMalloc(&counter, sizeof(*counter)));
  CUDA_CHECK(cudaMemset(counter, 0, sizeof(*counter)));
  cudaStream_t s;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  unsigned long long launched = 0;
  auto plain = [&] {
    for (int i = 0; i < batch; ++i) tick_k<<<1, 1, 0, s>>>(counter);
    LAUNCH_CHECK();
    launched += batch;
  };
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  for (int i = 0; i < batch; ++i) tick_k<<<1, 1, 0, s>>>(counter);
  CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  auto replay = [&] {
    CUDA_CHECK(cudaGraphLaunch(exec, s));
    launched += batch;
  };
  print_header();
  Row r;
  r.family = "launch";
  r.t = time_events(plain, o, nullptr, s, batch);
  r.benchmark = "launch_plain";
  r.method = event_method(r.t, false) + "; per kernel, 1000 back-to-back launches";
  print_row(r);
  r.t = time_events(replay, o, nullptr, s, batch);
  r.benchmark = "launch_graph";
  r.method = event_method(r.t, false) + "; per kernel, CUDA graph of 1000 kernels replayed";
  print_row(r);
  std::vector<double> times;
  for (int i = 0; i < o.warmup + std::max(o.repeats, 100); ++i) {
    auto t0 = std::chrono::steady_clock::now();
    tick_k<<<1, 1, 0, s>>>(counter);
    LAUNCH_CHECK();
    CUDA_CHECK(cudaStreamSynchronize(s));
    auto t1 = std::chrono::steady_clock::now();
    ++launched;
    if (i >= o.warmup) times.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  r.t = summarize(times);
  r.benchmark = "launch_sync";
  r.method = "host steady_clock around launch + cudaStreamSynchronize; median of " +
             std::to_string(r.t.repeats) + " after warm-up";
  CUDA_CHECK(cudaStreamSynchronize(s));
  unsigned long long got;
  CUDA_CHECK(cudaMemcpy(&got, counter, sizeof(got), cudaMemcpyDeviceToHost));
  r.check_rel_err = got == launched ? 0.0 : 1.0;
  print_row(r);
  require(got == launched, r, 0.0);
  return failures() ? 3 : 0;
}
