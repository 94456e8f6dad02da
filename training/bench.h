// `skillgrid bench train`: the whole PPO loop (rollout and update) for a fixed number of updates.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "training/config.h"

namespace skillgrid::training {

/// What to benchmark. Defaults: BabyAI PPO hyperparameters on the eight-level suite, Poly skills.
struct TrainBenchOptions {
  /// Architecture (bow_endpool_res, expert_filmcnn, small).
  std::string model = "bow_endpool_res";
  /// Router (poly by default; none for the plain network).
  std::string router = "poly";
  /// Arithmetic of the image convolutions (TrainConfig::precision).
  std::string precision = "fp32";
  /// Updates timed after the warm-up.
  int updates = 3;
  /// Untimed warm-up updates.
  int warmup = 1;
  /// Threads (0 = all cores).
  int threads = 0;
  /// Torch threads (0 = auto).
  int torch_threads = 0;
  /// Threads splitting each minibatch (0 = auto, as TrainConfig::update_workers).
  int update_workers = 0;
  /// Device of the network.
  std::string device = "cpu";
  /// Parallel environments (BabyAI: 64).
  int num_envs = 64;
  /// PPO minibatch in frames (0: BabyAI's 1280, or the whole rollout when that is smaller).
  /// Larger minibatches mean fewer, larger kernels per frame, which matters on a GPU.
  int batch_size = 0;
  /// Seed.
  uint64_t seed = 1;
  /// Levels (default: the Polytropon suite).
  std::vector<std::string> levels = PolytroponSuite();
  /// Also time the phases of the timed updates (TrainBenchResult::phase_report); on a GPU this
  /// synchronises at every phase boundary, which lowers frames_per_sec a little.
  bool phases = false;
};

/// Measured throughput.
struct TrainBenchResult {
  /// Frames per second over the timed updates (rollout + update).
  double frames_per_sec = 0.0;
  /// Timed frames and seconds.
  int64_t frames = 0;
  /// Seconds of the timed updates.
  double seconds = 0.0;
  /// Share of the time spent in rollouts (the rest is the optimisation).
  double rollout_share = 0.0;
  /// Frames per second of each timed update on its own, in order (their spread shows how noisy
  /// the machine was; the median resists a slow stretch better than the mean).
  std::vector<double> update_frames_per_sec;
  /// Estimated FLOPs per trained frame of the base network (rollout forward plus epochs x
  /// forward+backward, skills and the deduplicated text encoder excluded).
  double flops_per_frame = 0.0;
  /// Achieved GFLOP/s by that estimate.
  double gflops = 0.0;
  /// Trainable parameters.
  int64_t parameters = 0;
  /// Threads used (env stepping).
  int threads = 1;
  /// Torch intra-op threads used.
  int torch_threads = 1;
  /// Resolved update workers (each runs torch_threads threads in the update).
  int update_workers = 1;
  /// The machine's fp32 peak for those torch threads in GFLOP/s (0 when unknown or when the
  /// network ran on a GPU); see EstimatePeakGflops.
  double peak_gflops = 0.0;
  /// How the peak was derived ("2 cores x 2.10 GHz x 64 flop/cycle").
  std::string peak_formula;
  /// The machine's bfloat16 peak for the same cores (0 unless the benchmark ran bf16); see
  /// EstimatePeakGflopsBf16.
  double peak_gflops_bf16 = 0.0;
  /// How the bf16 peak was derived.
  std::string peak_formula_bf16;
  /// The minibatch the update used, in frames.
  int batch_size = 0;
  /// PhaseProfile::Report of the timed updates (empty unless TrainBenchOptions::phases).
  std::string phase_report;
};

/// fp32 peak of `cores` cores: running clock (measured once with every core busy; the nominal
/// /proc/cpuinfo clock off x86-64) x FLOPs per cycle per core (64 with AVX-512, assuming two FMA
/// units as on Xeon Scalable and Zen 5; 32 with AVX2 FMA; 16 otherwise).
/// Returns 0 when the clock is unknown; `formula` receives the derivation.
double EstimatePeakGflops(int cores, std::string* formula);

/// bfloat16 peak of `cores` cores: that clock x 1024 FLOPs per cycle per core with AMX (one
/// 16x16x32 tile product per 16 cycles), 128 with AVX512-BF16 (two units), else the fp32 figure.
/// Returns 0 when the clock is unknown; `formula` receives the derivation.
double EstimatePeakGflopsBf16(int cores, std::string* formula);

/// Runs the benchmark with no run directory. Throws ConfigError for bad options.
TrainBenchResult RunTrainBench(const TrainBenchOptions& options);

/// What `skillgrid bench conv` times: one 3x3 "same" convolution of bow_endpool_res's trunk, run
/// as the model runs it (Conv2dInPrecision: Winograd, AMX or oneDNN kernels by CPU and precision).
struct ConvBenchOptions {
  /// Batch rows (160: a 1280-row minibatch's rows of one of eight tasks).
  int rows = 160;
  /// Input and output channels (bow_endpool_res: 128).
  int channels = 128;
  /// Height and width of the maps (BabyAI's view: 7).
  int size = 7;
  /// Timed calls of each kind, after two untimed ones.
  int iterations = 30;
  /// Torch threads (0 = all cores).
  int threads = 0;
  /// Arithmetic: "bf16" or "fp32".
  std::string precision = "bf16";
  /// Seed of the random input, kernel and output gradient.
  uint64_t seed = 1;
};

/// Timings and the arithmetic's error of the convolution.
struct ConvBenchResult {
  /// The kernels that ran: forward, then weight gradient ("winograd", "amx", "onednn").
  std::string forward_kernel, weight_grad_kernel;
  /// Median milliseconds of a forward call, and of a backward call (input and weight gradients).
  double forward_ms = 0.0, backward_ms = 0.0;
  /// GFLOP of one direct convolution: 2 x rows x channels^2 x 9 x size^2 / 1e9 (the backward
  /// is twice that); the rates below count these FLOPs, whatever algorithm ran.
  double direct_gflop = 0.0;
  /// Direct-equivalent GFLOP/s of the forward and of the backward.
  double forward_gflops = 0.0, backward_gflops = 0.0;
  /// The machine's peak in this precision for the threads used (0 when unknown), and its derivation.
  double peak_gflops = 0.0;
  std::string peak_formula;
  /// Threads used.
  int threads = 1;
  /// ||y - y_fp32|| / ||y_fp32|| of the forward against an fp32 convolution of the same operands.
  double relative_error = 0.0;
};

/// Runs the convolution benchmark on CPU. Throws ConfigError for bad options.
ConvBenchResult RunConvBench(const ConvBenchOptions& options);

/// Forward multiply-add FLOPs per observation of the base network of an architecture
/// (convolutions, FiLM, memory, heads; 2 FLOPs per multiply-add).
double ForwardFlopsPerFrame(const std::string& arch);

}  // namespace skillgrid::training
