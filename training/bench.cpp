#include "training/bench.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include "skills/amx_conv.h"
#include "skills/blas_runtime.h"
#include "skills/skill_conv_embedding.h"
#include "skills/winograd_conv.h"
#include "skills/winograd_conv_fp32.h"
#include "training/trainer.h"

namespace skillgrid::training {

double ForwardFlopsPerFrame(const std::string& arch) {
  auto conv = [](double in, double out, double k, double hw) { return 2.0 * in * out * k * k * hw; };
  auto lin = [](double in, double out) { return 2.0 * in * out; };
  double f = 0.0;
  if (arch == "bow_endpool_res") {
    f += 2 * conv(128, 128, 3, 49);  // stem
    f += 4 * conv(128, 128, 3, 49);  // two FiLM blocks
    f += 4 * lin(128, 128);          // FiLM gamma, beta
    f += lin(128, 512) + lin(128, 512);
    f += 2 * (lin(128, 64) + lin(64, 4));
  } else if (arch == "expert_filmcnn") {
    f += conv(3, 128, 2, 64) + conv(128, 128, 3, 16);
    f += 4 * conv(128, 128, 3, 4);
    f += 4 * lin(128, 128);
    f += lin(128, 512) + lin(128, 512);
    f += 2 * (lin(128, 64) + lin(64, 4));
  } else {
    f += conv(3, 16, 2, 36) + conv(16, 32, 2, 4) + conv(32, 64, 2, 1);
    f += lin(64, 256) + lin(64, 256);
    f += 2 * (lin(192, 64) + lin(64, 4));
  }
  return f;
}

namespace {

// The nominal clock in MHz (first "cpu MHz" line of /proc/cpuinfo; 0 when unknown) and whether
// the first "flags" line lists `flag`.
double CpuMhz() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("cpu MHz", 0) == 0 && line.find(':') != std::string::npos) {
      return std::atof(line.substr(line.find(':') + 1).c_str());
    }
  }
  return 0.0;
}

bool CpuHasFlag(const std::string& flag) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) return (line + " ").find(" " + flag + " ") != std::string::npos;
  }
  return false;
}

#if defined(__x86_64__)
// The CPU's family (CPUID leaf 1: base family plus extended family).
unsigned CpuFamily() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return 0;
  const unsigned base = (eax >> 8) & 0xFu;
  return base == 0xFu ? base + ((eax >> 20) & 0xFFu) : base;
}
#endif

int Fp32FlopsPerCycle() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  // Zen 4 (AMD family 19h) splits each 512-bit FMA over its two 256-bit units: 32 flop/cycle,
  // as AVX2 (measured: 116 GFLOP/s per core at 3.6 GHz with either width). Zen 5 has 512-bit units.
  if (__builtin_cpu_supports("avx512f")) return __builtin_cpu_is("amd") && CpuFamily() == 0x19 ? 32 : 64;
  if (__builtin_cpu_supports("fma")) return 32;
#endif
  return 16;
}

#if defined(__x86_64__) && defined(__GNUC__)
// Seconds for `n` x 16 dependent register adds, which retire one per cycle on every x86-64 core.
double DependentAddSeconds(int64_t n) {
  uint64_t x = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n; ++i) {
    asm volatile(
        "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
        "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
        "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
        "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
        : "+r"(x));
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
#endif

// The running clock in MHz with every core busy, measured once per process (~25 ms): a chain
// of dependent adds on each core, adds per second. The nominal "cpu MHz" of /proc/cpuinfo
// understates boosting CPUs (2.1 GHz listed, ~3.3 GHz measured on this project's AMD VMs); it
// is the fallback off x86-64.
double RunningMhz(bool* measured) {
  static const double mhz = [] {
#if defined(__x86_64__) && defined(__GNUC__)
    const int threads = std::max(1u, std::thread::hardware_concurrency());
    constexpr int64_t kIterations = 4 << 20;  // 64M adds: ~20 ms at 3 GHz
    std::vector<double> seconds(static_cast<size_t>(threads));
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&seconds, t] { seconds[static_cast<size_t>(t)] = DependentAddSeconds(kIterations); });
    }
    for (auto& w : workers) w.join();
    const double slowest = *std::max_element(seconds.begin(), seconds.end());
    if (slowest > 0.0) return 16.0 * kIterations / slowest / 1e6;
#endif
    return -CpuMhz();  // negative: not measured
  }();
  *measured = mhz > 0.0;
  return std::abs(mhz);
}

double PeakFromClock(int cores, int flops_per_cycle, std::string* formula) {
  bool measured = false;
  const double mhz = RunningMhz(&measured);
  if (mhz <= 0.0 || cores < 1) {
    if (formula != nullptr) *formula = "unknown (no clock in /proc/cpuinfo)";
    return 0.0;
  }
  char text[128];
  std::snprintf(text, sizeof(text), "%d cores x %.2f GHz %s x %d flop/cycle", cores, mhz / 1000.0,
                measured ? "(measured, all cores busy)" : "(nominal)", flops_per_cycle);
  if (formula != nullptr) *formula = text;
  return cores * mhz / 1000.0 * flops_per_cycle;
}

}  // namespace

double EstimatePeakGflops(int cores, std::string* formula) {
  return PeakFromClock(cores, Fp32FlopsPerCycle(), formula);
}

double EstimatePeakGflopsBf16(int cores, std::string* formula) {
  // vdpbf16ps does twice an FMA's flops in the same slots (Zen 4 measured 64 flop/cycle).
  const int per_cycle = CpuHasFlag("amx_bf16") ? 1024 : CpuHasFlag("avx512_bf16") ? 2 * Fp32FlopsPerCycle() : Fp32FlopsPerCycle();
  return PeakFromClock(cores, per_cycle, formula);
}

TrainBenchResult RunTrainBench(const TrainBenchOptions& o) {
  TrainConfig c;
  c.run_dir = "";
  c.model = o.model;
  c.router = o.router;
  c.precision = o.precision;
  c.threads = o.threads;
  c.torch_threads = o.torch_threads;
  c.update_workers = o.update_workers;
  c.device = o.device;
  c.num_envs = o.num_envs;
  c.seed = o.seed;
  c.levels = o.levels;
  c.eval_interval = 0;
  c.progress = false;
  if (o.batch_size < 0) throw ConfigError("--batch-size must be >= 0, got " + std::to_string(o.batch_size));
  c.batch_size = o.batch_size > 0 ? o.batch_size : std::min<int>(c.batch_size, c.num_envs * c.frames_per_env);
  if (o.updates < 1) throw ConfigError("--updates must be >= 1, got " + std::to_string(o.updates));
  if (o.warmup < 0) throw ConfigError("--warmup must be >= 0, got " + std::to_string(o.warmup));
  c.frames = static_cast<int64_t>(o.updates + o.warmup) * c.frames_per_update();
  Trainer trainer(c, /*resume=*/false);
  for (int i = 0; i < o.warmup; ++i) trainer.Step();
  PhaseProfile* profile = o.phases ? &trainer.EnablePhaseProfile() : nullptr;
  double rollout = 0.0;
  const auto t0 = std::chrono::steady_clock::now();
  TrainBenchResult r;
  auto last = t0;
  for (int i = 0; i < o.updates; ++i) {
    rollout += trainer.Step().rollout_s;
    const auto now = std::chrono::steady_clock::now();
    r.update_frames_per_sec.push_back(c.frames_per_update() / std::chrono::duration<double>(now - last).count());
    last = now;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.frames = static_cast<int64_t>(o.updates) * c.frames_per_update();
  r.seconds = seconds;
  r.frames_per_sec = r.frames / seconds;
  r.rollout_share = rollout / seconds;
  r.flops_per_frame = ForwardFlopsPerFrame(o.model) * (1.0 + 3.0 * c.epochs);
  r.gflops = r.flops_per_frame * r.frames_per_sec / 1e9;
  if (profile != nullptr) r.phase_report = profile->Report(o.updates);
  r.batch_size = c.batch_size;
  r.parameters = trainer.model()->NumParameters();
  r.threads = c.ResolvedThreads();
  r.torch_threads = c.ResolvedTorchThreads();
  r.update_workers = c.ResolvedUpdateWorkers();
  // The update runs on workers x torch threads cores (capped by the machine's).
  const int update_cores = std::max(r.torch_threads, std::min(r.threads, r.torch_threads * r.update_workers));
  // The peaks describe this host's cores: meaningless when the update runs on a GPU.
  if (c.device == "cpu") {
    r.peak_gflops = EstimatePeakGflops(update_cores, &r.peak_formula);
    if (o.precision == "bf16") r.peak_gflops_bf16 = EstimatePeakGflopsBf16(update_cores, &r.peak_formula_bf16);
  }
  return r;
}

namespace {

// Median of `calls` timed runs of f (after two untimed ones), in milliseconds.
template <typename F>
double MedianMs(int calls, F&& f) {
  for (int i = 0; i < 2; ++i) f();
  std::vector<double> ms;
  for (int i = 0; i < calls; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms.size() % 2 == 1 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
}

}  // namespace

ConvBenchResult RunConvBench(const ConvBenchOptions& o) {
  if (o.rows < 1) throw ConfigError("--rows must be >= 1, got " + std::to_string(o.rows));
  if (o.channels < 1) throw ConfigError("--channels must be >= 1, got " + std::to_string(o.channels));
  if (o.size < 1) throw ConfigError("--size must be >= 1, got " + std::to_string(o.size));
  if (o.iterations < 1) throw ConfigError("--iterations must be >= 1, got " + std::to_string(o.iterations));
  if (o.threads < 0) throw ConfigError("--threads must be >= 0, got " + std::to_string(o.threads));
  const skills::ConvPrecision precision = [&] {
    try {
      return skills::ParseConvPrecision(o.precision);
    } catch (const std::invalid_argument& e) {
      throw ConfigError(std::string("--precision: ") + e.what());
    }
  }();
  const bool bf16 = precision == skills::ConvPrecision::kBFloat16;
  ConvBenchResult r;
  r.threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Restores the caller's thread count on every way out.
  struct ThreadCountGuard {
    int previous = at::get_num_threads();
    ~ThreadCountGuard() { at::set_num_threads(previous); }
  } thread_count_guard;
  at::set_num_threads(r.threads);
  skills::SetBlasThreads(1);  // as the trainer runs it: OpenBLAS beside torch's pool, not inside it
  at::manual_seed(o.seed);
  const int64_t n = o.rows, c = o.channels, hw = o.size;
  // The trunk's activations are channels-last bf16 (fp32 in fp32 runs), the kernel fp32.
  const auto act = at::TensorOptions().dtype(bf16 ? at::kBFloat16 : at::kFloat);
  at::Tensor x = at::randn({n, c, hw, hw}).to(act).contiguous(at::MemoryFormat::ChannelsLast).requires_grad_(true);
  const at::Tensor w = (at::randn({c, c, 3, 3}) * (1.0 / std::sqrt(9.0 * c))).requires_grad_(true);
  const at::Tensor b = at::zeros({c}).requires_grad_(true);
  const at::Tensor dy = at::randn({n, c, hw, hw}).to(act).contiguous(at::MemoryFormat::ChannelsLast);

  const at::Tensor y = skills::Conv2dInPrecision(x, w, b, 1, 1, precision);
  {
    at::NoGradGuard no_grad;  // the error of this arithmetic against fp32 on the same operands
    const at::Tensor ref = at::conv2d(x.detach().to(at::kFloat), w.detach(), b.detach(), {1, 1}, {1, 1});
    r.relative_error = ((y.detach().to(at::kFloat) - ref).norm() / ref.norm()).item<double>();
  }
  const at::Tensor xd = x.detach();
  const bool winograd_fp32 = !bf16 && skills::WinogradConv3x3Fp32Preferred(xd);
  r.forward_kernel = !bf16 ? (winograd_fp32 ? "winograd" : "onednn")
                           : skills::WinogradConv3x3Supports(xd, c) ? "winograd" : "onednn";
  r.weight_grad_kernel = !bf16                                          ? (winograd_fp32 ? "winograd" : "onednn")
                         : skills::Conv3x3WeightGradAmxSupports(xd, dy) ? "amx"
                         : skills::WinogradConv3x3Supports(xd, c)       ? "winograd"
                                                                        : "onednn";
  {
    at::NoGradGuard no_grad;
    r.forward_ms = MedianMs(o.iterations, [&] { skills::Conv2dInPrecision(xd, w, b, 1, 1, precision); });
  }
  r.backward_ms = MedianMs(o.iterations, [&] {
    const at::Tensor out = skills::Conv2dInPrecision(x, w, b, 1, 1, precision);
    torch::autograd::grad({out}, {x, w, b}, {dy});
  });
  // The timed backward above includes a forward; subtract it.
  r.backward_ms = std::max(0.0, r.backward_ms - r.forward_ms);
  r.direct_gflop = 2.0 * n * c * c * 9 * hw * hw / 1e9;
  r.forward_gflops = r.forward_ms > 0.0 ? r.direct_gflop / (r.forward_ms / 1e3) : 0.0;
  r.backward_gflops = r.backward_ms > 0.0 ? 2.0 * r.direct_gflop / (r.backward_ms / 1e3) : 0.0;
  r.peak_gflops = bf16 ? EstimatePeakGflopsBf16(r.threads, &r.peak_formula) : EstimatePeakGflops(r.threads, &r.peak_formula);
  return r;
}

}  // namespace skillgrid::training
