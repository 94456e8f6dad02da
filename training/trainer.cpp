#include "training/trainer.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <c10/core/InferenceMode.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adam.h>
#include <torch/optim/rmsprop.h>
#include <torch/serialize.h>

#include "envs/thread_pool.h"
#include "envs/vec_env.h"
#include "skills/blas_runtime.h"
#include "skills/router.h"
#include "skills/task_batch.h"
#include "skills/training_helpers.h"
#include "skills/winograd_conv.h"
#include "training/checkpoint.h"
#include "training/evaluate.h"
#include "training/fused_adam.h"
#include "training/instruction_cache.h"
#include "training/losses.h"
#include "training/phase_profile.h"
#include "training/teachers.h"

namespace skillgrid::training {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string Num(double v) {
  if (std::isnan(v)) return "";
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

// Writes `text` to `path` through a temporary file renamed into place.
void WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw RunError("cannot write " + tmp);
    out << text;
    if (!out.flush()) throw RunError("cannot write " + tmp);
  }
  fs::rename(tmp, path);
}

// Keeps the header and the complete rows whose first field (the update number) is <=
// max_update; a row cut short by a kill (fewer fields than the header) is dropped.
void TruncateCsv(const std::string& path, int64_t max_update) {
  std::ifstream in(path);
  if (!in) return;
  std::string line, kept;
  bool header = true;
  std::ptrdiff_t fields = 0;
  while (std::getline(in, line)) {
    if (header) {
      kept += line + "\n";
      fields = std::count(line.begin(), line.end(), ',');
      header = false;
      continue;
    }
    if (line.empty() || std::count(line.begin(), line.end(), ',') != fields) continue;
    long long update = -1;
    if (std::sscanf(line.c_str(), "%lld", &update) == 1 && update <= max_update) kept += line + "\n";
  }
  in.close();
  WriteFileAtomically(path, kept);
}

at::Generator CpuGenerator() { return at::detail::getDefaultCPUGenerator(); }

// splitmix64's finaliser: spreads nearby inputs over all 64 bits.
uint64_t Mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Seed of update worker `worker` for a run's `minibatch`-th minibatch of update `update`.
uint64_t WorkerSeed(uint64_t run_seed, int64_t update, int64_t minibatch, int worker) {
  uint64_t h = Mix64(run_seed + 0x9e3779b97f4a7c15ULL);
  for (const uint64_t v : {static_cast<uint64_t>(update), static_cast<uint64_t>(minibatch), static_cast<uint64_t>(worker)}) {
    h = Mix64(h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
  }
  return h;
}

}  // namespace

struct Trainer::Impl {
  TrainConfig cfg;
  /// The bf16 Winograd tile of this run (cfg.winograd_tile), in force while the trainer lives.
  std::optional<skills::ScopedWinogradBf16Tile> winograd_tile;
  at::Device device{at::kCPU};
  int threads = 1;
  bool has_dir = false;

  agents::ActorCritic model{nullptr};
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::vector<at::Tensor> all_params;

  // Environments and their buffers.
  std::unique_ptr<envs::VecEnv> env;
  int n = 0, steps = 0, view = 7, width = 64, levels = 1;
  std::vector<uint8_t> images, terminated, truncated, ep_success;
  std::vector<int32_t> dirs, tokens, lengths, ep_lengths, actions_i32;
  std::vector<float> rewards, ep_returns;
  envs::VecEnvBuffers buf;
  at::Tensor env_tasks;       // (N) int64, CPU
  skills::TaskBatch env_batch;  // on the device

  // Recurrent state of the rollout.
  at::Tensor memory;  // (N, M) on the device
  at::Tensor mask;    // (N) on the device: 0 where the previous step ended an episode
  // Instruction embeddings of the rollout: the weights are fixed for a whole rollout and an
  // instruction lasts a whole episode, so each distinct (task, instruction) is encoded once per
  // update (one routing draw) instead of at every step; Step() clears it before each rollout.
  InstructionCache instr_cache;
  // Phase timings for `bench train --phases` (null otherwise).
  std::unique_ptr<PhaseProfile> profile;
  // Policy distillation: the frozen teachers stepped beside the rollout (null without --teacher).
  std::unique_ptr<TeacherSet> teachers;

  // Counters and rolling statistics.
  int64_t update = 0, frames = 0, episodes = 0;
  double duration_before = 0.0;
  std::vector<int64_t> level_episodes;
  std::vector<std::deque<std::array<double, 3>>> windows;  // (success, return, length)
  UpdateStats last;
  nlohmann::json skills_snapshots = nlohmann::json::array();
  Clock::time_point session_start = Clock::now();
  // Train stops after the update in which this flag reads true (nullptr: never).
  const std::atomic<bool>* stop_flag = nullptr;
  StopReason stop_reason = StopReason::kNone;

  std::ofstream log, actions_log;

  std::string Path(const char* name) const { return (fs::path(cfg.run_dir) / name).string(); }

  agents::ModelOptions MakeModelOptions() const {
    agents::RoutingOptions r;
    r.router(cfg.router).n_tasks(static_cast<int64_t>(cfg.levels.size())).n_skills(cfg.skills);
    r.inventory(cfg.inventory).rank(cfg.rank).density(cfg.density).heads(cfg.heads).families(cfg.families);
    r.task_names(cfg.levels);
    agents::ModelOptions m(cfg.model);
    m.routing(r);
    return m;
  }

  void BuildOptimizer() {
    all_params = model->NetworkParameters();
    const auto routers = model->RouterParameters();
    all_params.insert(all_params.end(), routers.begin(), routers.end());
    optimizer = MakeOptimizer(*model, cfg);
  }

  void BuildEnv() {
    envs::VecEnvConfig vc;
    vc.levels = cfg.levels;
    vc.num_envs = cfg.num_envs;
    vc.num_threads = threads;
    vc.seed = cfg.seed;
    env = std::make_unique<envs::VecEnv>(vc);
    n = env->num_envs();
    steps = cfg.frames_per_env;
    view = env->view_size();
    width = vc.max_mission_tokens;
    levels = static_cast<int>(cfg.levels.size());
    images.assign(static_cast<size_t>(n) * view * view * 3, 0);
    terminated.assign(n, 0);
    truncated.assign(n, 0);
    ep_success.assign(n, 0);
    dirs.assign(n, 0);
    tokens.assign(static_cast<size_t>(n) * width, 0);
    lengths.assign(n, 0);
    ep_lengths.assign(n, 0);
    actions_i32.assign(n, 0);
    rewards.assign(n, 0.0f);
    ep_returns.assign(n, 0.0f);
    buf = envs::VecEnvBuffers{images.data(),  dirs.data(),      tokens.data(),    lengths.data(),
                              rewards.data(), terminated.data(), truncated.data(), ep_returns.data(),
                              ep_lengths.data(), ep_success.data()};
    std::vector<int64_t> tasks(n);
    for (int i = 0; i < n; ++i) tasks[i] = env->task_of(i);
    env_tasks = at::from_blob(tasks.data(), {n}, at::kLong).clone();
    env_batch = skills::TaskBatch::FromTaskIds(env_tasks.to(device));
    env->Reset(buf);
    memory = at::zeros({n, model->memory_size()}, at::TensorOptions().device(device));
    mask = at::ones({n}, at::TensorOptions().device(device));
  }

  // The envs' current observations, on the host (MakeObservation copies out of the buffers).
  agents::Observation HostObservation() {
    return agents::MakeObservation(at::from_blob(images.data(), {n, view, view, 3}, at::kByte),
                                   at::from_blob(tokens.data(), {n, width}, at::kInt),
                                   at::from_blob(lengths.data(), {n}, at::kInt), env_tasks);
  }

  void RecordEpisode(int i) {
    const int task = env->task_of(i);
    ++episodes;
    ++level_episodes[task];
    auto& w = windows[task];
    w.push_back({ep_success[i] ? 1.0 : 0.0, static_cast<double>(ep_returns[i]), static_cast<double>(ep_lengths[i])});
    while (static_cast<int>(w.size()) > cfg.stats_window) w.pop_front();
  }

  // ---------------------------------------------------------------------------------------------
  std::vector<std::string> LogHeader() const {
    std::vector<std::string> h = {"update", "frames", "episodes", "duration_s", "fps", "mean_success"};
    for (const auto& l : cfg.levels) h.push_back("success_" + ShortLevelName(l));
    for (const auto& l : cfg.levels) h.push_back("return_" + ShortLevelName(l));
    for (const auto& l : cfg.levels) h.push_back("episodes_" + ShortLevelName(l));
    for (const char* c : {"policy_loss", "value_loss", "entropy", "value", "approx_kl", "clip_frac", "grad_norm"}) {
      h.push_back(c);
    }
    if (cfg.distilling()) {  // only then, so runs without teachers keep the columns they always had
      h.push_back("distill_coef");
      h.push_back("distill_kl");
      for (const auto& l : cfg.levels) h.push_back("kl_" + ShortLevelName(l));
    }
    return h;
  }

  static std::string JoinCsv(const std::vector<std::string>& fields) {
    std::string s;
    for (size_t i = 0; i < fields.size(); ++i) s += (i ? "," : "") + fields[i];
    return s + "\n";
  }

  void OpenLogs(bool fresh) {
    if (!has_dir) return;
    if (fresh || !fs::exists(Path("log.csv"))) WriteFileAtomically(Path("log.csv"), JoinCsv(LogHeader()));
    log.open(Path("log.csv"), std::ios::app);
    actions_log.open(Path("actions.bin"), std::ios::binary | (fresh ? std::ios::trunc : std::ios::app));
    if (!log || !actions_log) throw RunError("cannot open the logs in " + cfg.run_dir);
  }

  void WriteLogRow(const UpdateStats& s) {
    if (!has_dir) return;
    std::vector<std::string> f = {std::to_string(s.update), std::to_string(s.frames), std::to_string(s.episodes),
                                  Num(s.duration_s), Num(s.fps), Num(s.mean_success)};
    for (double v : s.success) f.push_back(Num(v));
    for (double v : s.returns) f.push_back(Num(v));
    for (int64_t v : s.level_episodes) f.push_back(std::to_string(v));
    for (double v : {s.policy_loss, s.value_loss, s.entropy, s.value_mean, s.approx_kl, s.clip_fraction, s.grad_norm}) {
      f.push_back(Num(v));
    }
    if (cfg.distilling()) {
      f.push_back(Num(s.distill_coef));
      f.push_back(Num(s.distill_kl));
      for (double v : s.level_kl) f.push_back(Num(v));
    }
    log << JoinCsv(f);
    log.flush();
  }

  void FillLevelStats(UpdateStats* s) const {
    s->success.assign(levels, std::nan(""));
    s->returns.assign(levels, std::nan(""));
    s->level_episodes = level_episodes;
    s->mean_success = 0.0;
    for (int t = 0; t < levels; ++t) {
      const auto& w = windows[t];
      if (w.empty()) continue;
      double succ = 0.0, ret = 0.0;
      for (const auto& e : w) {
        succ += e[0];
        ret += e[1];
      }
      s->success[t] = succ / w.size();
      s->returns[t] = ret / w.size();
      s->mean_success += s->success[t] / levels;
    }
  }

  // ---------------------------------------------------------------------------------------------
  nlohmann::json Counters() const {
    nlohmann::json w = nlohmann::json::array();
    for (const auto& dq : windows) {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& e : dq) a.push_back({e[0], e[1], e[2]});
      w.push_back(a);
    }
    return {{"update", update},
            {"frames", frames},
            {"episodes", episodes},
            {"level_episodes", level_episodes},
            {"windows", w},
            {"duration_s", duration_before + std::chrono::duration<double>(Clock::now() - session_start).count()}};
  }

  void SaveCheckpoint() {
    if (!has_dir) return;
    actions_log.flush();
    torch::serialize::OutputArchive archive;
    torch::serialize::OutputArchive model_archive;
    model->save(model_archive);
    archive.write("model", model_archive);
    torch::serialize::OutputArchive optim_archive;
    optimizer->save(optim_archive);
    archive.write("optimizer", optim_archive);
    {
      at::Generator gen = CpuGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      archive.write("rng_cpu", gen.get_state());
    }
    if (device.is_cuda()) {
      // Action sampling and Poly's routing noise draw from the device's generator there.
      at::Generator gen = at::globalContext().defaultGenerator(device);
      std::lock_guard<std::mutex> lock(gen.mutex());
      archive.write("rng_cuda", gen.get_state());
    }
    archive.write("memory", memory.to(at::kCPU));
    archive.write("mask", mask.to(at::kCPU));
    for (size_t k = 0; teachers && k < teachers->size(); ++k) {
      archive.write("teacher_memory_" + std::to_string(k), teachers->memory(k).to(at::kCPU));
    }
    nlohmann::json meta = {{"format", "skillgrid-checkpoint-1"},
                           {"config", cfg.ToJson()},
                           {"model", model->options.ToJson()},
                           {"counters", Counters()},
                           {"num_parameters", model->NumParameters()}};
    WriteJson(archive, "meta_json", meta);
    SaveArchiveAtomically(archive, CheckpointPath(cfg.run_dir, update));
    PruneCheckpoints(cfg.run_dir, cfg.keep_checkpoints);
    // Routing snapshot.
    const nlohmann::json layers = model->RoutingSnapshot();
    if (!layers.empty()) {
      skills_snapshots.push_back({{"update", update}, {"frames", frames}, {"layers", layers}});
      const nlohmann::json doc = {{"levels", cfg.levels}, {"router", cfg.router}, {"snapshots", skills_snapshots}};
      WriteFileAtomically(Path("skills.json"), doc.dump());
    }
  }

  // Adaptation: copies the network of `source` (a run directory's newest checkpoint, or a
  // checkpoint file) into the fresh model, every parameter and buffer but the routers'.
  void InitFrom(const std::string& source) {
    const std::string path = ResolveCheckpoint(source, "--init-from");
    // Building the source network draws initial weights; keep those draws out of the run's stream.
    at::Generator gen = CpuGenerator();
    const at::Tensor rng_state = gen.get_state();
    const LoadedModel src = LoadModel(path, "cpu");
    gen.set_state(rng_state);
    std::unordered_map<std::string, at::Tensor> from;
    for (const auto& item : src.model->named_parameters()) from[item.key()] = item.value();
    for (const auto& item : src.model->named_buffers()) from[item.key()] = item.value();
    std::set<const void*> router_tensors;  // this run's routers start afresh
    skills::ForEachRouter(*model, [&](const std::string&, skills::RouterImpl& router) {
      for (const auto& p : router.parameters()) router_tensors.insert(p.unsafeGetTensorImpl());
      for (const auto& b : router.buffers()) router_tensors.insert(b.unsafeGetTensorImpl());
    });
    at::NoGradGuard no_grad;
    auto copy = [&](const std::string& name, at::Tensor to) {
      if (router_tensors.count(to.unsafeGetTensorImpl()) > 0) return;
      const auto it = from.find(name);
      if (it == from.end()) {
        throw RunError("--init-from " + path + ": its network has no " + name + " (another model or routed families?)");
      }
      if (it->second.sizes() != to.sizes()) {
        std::ostringstream msg;
        msg << "--init-from " << path << ": " << name << " is " << it->second.sizes() << " there and " << to.sizes()
            << " here (same --model, --skills, --inventory, --rank and --heads needed)";
        throw RunError(msg.str());
      }
      to.copy_(it->second);
    };
    for (const auto& item : model->named_parameters()) copy(item.key(), item.value());
    for (const auto& item : model->named_buffers()) copy(item.key(), item.value());
  }

  void LoadCheckpoint(const std::string& path) {
    const nlohmann::json meta = ReadCheckpointMeta(path);
    CheckSameArchitecture(meta.at("model"), model->options, path);
    const TrainConfig saved = TrainConfig::FromJson(meta.at("config"));
    if (saved.levels != cfg.levels || saved.num_envs != cfg.num_envs || saved.frames_per_env != cfg.frames_per_env ||
        saved.seed != cfg.seed) {
      throw RunError("checkpoint " + path + " was trained with other levels, env count, rollout length or seed; "
                     "resume with the run's own config.json");
    }
    if (saved.eval_unseen != cfg.eval_unseen) {
      throw RunError("checkpoint " + path + " was evaluated on other --eval-unseen levels; eval.csv keeps its columns, "
                     "so resume with the run's own --eval-unseen");
    }
    torch::serialize::InputArchive archive;
    // Onto this run's device, whichever one saved it: parameters and Adam state must meet there.
    archive.load_from(path, device);
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    model->load(model_archive);
    torch::serialize::InputArchive optim_archive;
    archive.read("optimizer", optim_archive);
    optimizer->load(optim_archive);
    // The config is the source of truth for the learning rates (a resumed run may change them).
    auto& groups = optimizer->param_groups();
    for (size_t g = 0; g < groups.size(); ++g) {
      const bool routing_group = cfg.train_only_routing || g == 1;  // see MakeOptimizer
      groups[g].options().set_lr(routing_group ? cfg.router_lr : cfg.lr);
    }
    at::Tensor rng, mem, msk;
    archive.read("rng_cpu", rng);
    archive.read("memory", mem);
    archive.read("mask", msk);
    {
      at::Generator gen = CpuGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(rng.to(at::kCPU));  // generator states are host byte tensors
    }
    at::Tensor rng_cuda;
    if (device.is_cuda() && archive.try_read("rng_cuda", rng_cuda)) {  // absent when a CPU run saved it
      at::Generator gen = at::globalContext().defaultGenerator(device);
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(rng_cuda.to(at::kCPU));
    }
    memory = mem.to(device);
    mask = msk.to(device);
    for (size_t k = 0; teachers && k < teachers->size(); ++k) {
      at::Tensor teacher_memory;
      if (!archive.try_read("teacher_memory_" + std::to_string(k), teacher_memory)) {
        throw RunError("checkpoint " + path + " has no memory of teacher " + std::to_string(k) +
                       " (was the run started with other --teacher values?)");
      }
      teachers->set_memory(k, teacher_memory);
    }
    const auto& c = meta.at("counters");
    update = c.at("update").get<int64_t>();
    frames = c.at("frames").get<int64_t>();
    episodes = c.at("episodes").get<int64_t>();
    level_episodes = c.at("level_episodes").get<std::vector<int64_t>>();
    duration_before = c.at("duration_s").get<double>();
    windows.assign(levels, {});
    for (int t = 0; t < levels; ++t) {
      for (const auto& e : c.at("windows").at(t)) windows[t].push_back({e[0].get<double>(), e[1].get<double>(), e[2].get<double>()});
    }
    ReplayActions();
    TruncateCsv(Path("log.csv"), update);
    TruncateCsv(Path("eval.csv"), update);
    if (fs::exists(Path("skills.json"))) {
      std::ifstream in(Path("skills.json"));
      nlohmann::json doc = nlohmann::json::parse(in, nullptr, false);
      if (!doc.is_discarded() && doc.contains("snapshots")) {
        for (const auto& s : doc["snapshots"]) {
          if (s.value("update", int64_t{0}) <= update) skills_snapshots.push_back(s);
        }
      }
    }
  }

  // Brings the envs to the checkpoint's state by replaying the logged actions from the reset.
  void ReplayActions() {
    const std::string path = Path("actions.bin");
    std::error_code ec;
    const auto size = fs::exists(path) ? static_cast<int64_t>(fs::file_size(path, ec)) : 0;
    if (size < frames) {
      throw RunError("cannot resume: " + path + " holds " + std::to_string(size) + " actions but the checkpoint is at " +
                     std::to_string(frames) + " frames");
    }
    std::ifstream in(path, std::ios::binary);
    std::vector<uint8_t> row(n);
    for (int64_t s = 0; s < frames / n; ++s) {
      in.read(reinterpret_cast<char*>(row.data()), n);
      for (int i = 0; i < n; ++i) actions_i32[i] = row[i];
      env->Step(actions_i32.data(), buf);
    }
    in.close();
    fs::resize_file(path, static_cast<uintmax_t>(frames));
  }

  // ---------------------------------------------------------------------------------------------
  UpdateStats Step() {
    const auto t0 = Clock::now();
    const int64_t m = model->memory_size();
    const auto fopt = at::TensorOptions().device(device);
    // Rollout storage, time-major.
    at::Tensor st_images = at::empty({steps, n, view, view, 3}, at::kByte);
    at::Tensor st_tokens = at::empty({steps, n, width}, at::kInt);
    at::Tensor st_lengths = at::empty({steps, n}, at::kInt);
    at::Tensor st_actions = at::empty({steps, n}, at::kLong);
    at::Tensor st_memory = at::empty({steps, n, m}, fopt);
    at::Tensor st_mask = at::empty({steps, n}, fopt);
    at::Tensor st_values = at::empty({steps, n}, fopt);
    at::Tensor st_logp = at::empty({steps, n}, fopt);
    at::Tensor st_rewards = at::empty({steps, n}, at::kFloat);
    at::Tensor st_dones = at::empty({steps, n}, at::kFloat);
    at::Tensor st_teacher_logp, st_teacher_values;  // what the teachers do on the same steps
    if (teachers) {
      st_teacher_logp = at::empty({steps, n, agents::kNumActions}, fopt);
      st_teacher_values = at::empty({steps, n}, fopt);
      teachers->ClearCaches();
    }
    std::vector<uint8_t> action_bytes(static_cast<size_t>(steps) * n);

    model->train();
    instr_cache.Clear();  // weights may have changed since (update, checkpoint load)
    {
      RECORD_USER_SCOPE("skillgrid::rollout");  // phase marker for profiler traces
      // Inference mode, not just no-grad: ops skip autograd's dispatch and version counters,
      // ~15-25 % of a small model's rollout step.
      c10::InferenceMode inference;
      std::optional<PhaseProfile::Scope> phase;
      for (int t = 0; t < steps; ++t) {
        phase.emplace(profile.get(), "rollout.net");
        st_images[t].copy_(at::from_blob(images.data(), {n, view, view, 3}, at::kByte));
        st_tokens[t].copy_(at::from_blob(tokens.data(), {n, width}, at::kInt));
        st_lengths[t].copy_(at::from_blob(lengths.data(), {n}, at::kInt));
        const agents::Observation host_obs = HostObservation();
        const agents::Observation obs = host_obs.To(device);
        const at::Tensor mem_in = memory * mask.unsqueeze(1);
        const agents::PolicyOutput out = model->Act(obs, mem_in, env_batch, instr_cache.Lookup(*model, host_obs, obs));
        const at::Tensor action = agents::SampleActions(out.log_probs);
        st_memory[t].copy_(mem_in);
        st_mask[t].copy_(mask);
        st_values[t].copy_(out.values);
        st_logp[t].copy_(out.log_probs.gather(1, action.unsqueeze(1)).squeeze(1));
        if (teachers) {
          const TeacherOutput taught = teachers->Step(st_images[t], st_tokens[t], st_lengths[t], mask);
          st_teacher_logp[t].copy_(taught.log_probs);
          st_teacher_values[t].copy_(taught.values);
        }
        const at::Tensor a_cpu = action.to(at::kCPU).contiguous();
        st_actions[t].copy_(a_cpu);
        const int64_t* ap = a_cpu.data_ptr<int64_t>();
        for (int i = 0; i < n; ++i) {
          actions_i32[i] = static_cast<int32_t>(ap[i]);
          action_bytes[static_cast<size_t>(t) * n + i] = static_cast<uint8_t>(ap[i]);
        }
        phase.emplace(profile.get(), "rollout.env");  // closes rollout.net first
        env->Step(actions_i32.data(), buf);
        std::vector<float> next_mask(n);
        float* rw = st_rewards[t].data_ptr<float>();
        float* dn = st_dones[t].data_ptr<float>();
        at::Tensor values_cpu;
        if (cfg.bootstrap_truncated) values_cpu = out.values.to(at::kCPU).contiguous();
        for (int i = 0; i < n; ++i) {
          const bool done = terminated[i] || truncated[i];
          rw[i] = static_cast<float>(rewards[i] * cfg.reward_scale);
          if (cfg.bootstrap_truncated && truncated[i] && !terminated[i]) {
            // The auto-reset hides the final observation: bootstrap from V(s_t) instead.
            rw[i] += static_cast<float>(cfg.gamma) * values_cpu.data_ptr<float>()[i];
          }
          dn[i] = done ? 1.0f : 0.0f;
          next_mask[i] = done ? 0.0f : 1.0f;
          if (done) RecordEpisode(i);
        }
        memory = out.memory;
        mask = at::from_blob(next_mask.data(), {n}, at::kFloat).to(device, /*non_blocking=*/false, /*copy=*/true);
        phase.reset();
      }
    }
    std::optional<PhaseProfile::Scope> tail_phase(std::in_place, profile.get(), "rollout.tail");
    at::Tensor last_values;
    {
      c10::InferenceMode inference;
      const agents::Observation host_obs = HostObservation();
      const agents::Observation obs = host_obs.To(device);
      last_values = model->Act(obs, memory * mask.unsqueeze(1), env_batch, instr_cache.Lookup(*model, host_obs, obs)).values;
      instr_cache.Clear();  // the update below changes the weights
    }
    const auto t1 = Clock::now();
    if (has_dir) actions_log.write(reinterpret_cast<const char*>(action_bytes.data()),
                                   static_cast<std::streamsize>(action_bytes.size()));

    const GaeResult gae = ComputeGae(st_rewards.to(device), st_values, st_dones.to(device), last_values, cfg.gamma,
                                     cfg.gae_lambda);
    // Env-major flattening: each env's steps are contiguous (row = env * steps + t).
    auto flat = [](const at::Tensor& x) {
      std::vector<int64_t> shape = {x.size(0) * x.size(1)};
      for (int64_t d = 2; d < x.dim(); ++d) shape.push_back(x.size(d));
      return x.transpose(0, 1).contiguous().view(shape);
    };
    Batch b;
    b.actions = flat(st_actions).to(device);
    b.memory = flat(st_memory);
    b.mask = flat(st_mask);
    b.values = flat(st_values);
    b.logp = flat(st_logp);
    b.advantages = flat(gae.advantages);
    b.returns = flat(gae.returns);
    b.tasks = env_tasks.repeat_interleave(steps);
    b.obs = agents::MakeObservation(flat(st_images), flat(st_tokens), flat(st_lengths), b.tasks).To(device);
    if (teachers) {
      b.teacher_logp = flat(st_teacher_logp);
      b.teacher_values = flat(st_teacher_values);
    }

    tail_phase.reset();
    UpdateStats s = Optimise(b);
    const auto t2 = Clock::now();

    ++update;
    frames += static_cast<int64_t>(n) * steps;
    s.update = update;
    s.frames = frames;
    s.episodes = episodes;
    s.rollout_s = std::chrono::duration<double>(t1 - t0).count();
    s.optimise_s = std::chrono::duration<double>(t2 - t1).count();
    s.fps = static_cast<double>(n) * steps / std::chrono::duration<double>(t2 - t0).count();
    s.duration_s = duration_before + std::chrono::duration<double>(t2 - session_start).count();
    FillLevelStats(&s);
    WriteLogRow(s);
    last = s;
    return s;
  }

  struct Batch {
    at::Tensor tasks;  // CPU
    // Every row's observation on the device, its instructions deduplicated once per update
    // (per minibatch, host deduplication and copies took ~25 ms of a GPU's 81,920-row pass).
    agents::Observation obs;
    at::Tensor actions, memory, mask, values, logp, advantages, returns;  // device
    at::Tensor teacher_logp, teacher_values;  // device, defined when distilling: (rows, A), (rows)
  };

  // What one worker's share of a minibatch gave, each figure already weighted by its share.
  struct PartResult {
    double loss = 0, policy_loss = 0, value_loss = 0, entropy = 0, value_mean = 0, approx_kl = 0, clip_fraction = 0;
    // Distillation only, unweighted: the KL summed over the part's rows of each level, and their count.
    std::vector<double> level_kl_sum, level_rows;

    PartResult& operator+=(const PartResult& o) {
      level_kl_sum.resize(std::max(level_kl_sum.size(), o.level_kl_sum.size()), 0.0);
      level_rows.resize(std::max(level_rows.size(), o.level_rows.size()), 0.0);
      for (size_t i = 0; i < o.level_kl_sum.size(); ++i) level_kl_sum[i] += o.level_kl_sum[i];
      for (size_t i = 0; i < o.level_rows.size(); ++i) level_rows[i] += o.level_rows[i];
      loss += o.loss;
      policy_loss += o.policy_loss;
      value_loss += o.value_loss;
      entropy += o.entropy;
      value_mean += o.value_mean;
      approx_kl += o.approx_kl;
      clip_fraction += o.clip_fraction;
      return *this;
    }
  };

  // Data-parallel update: worker 0 runs on `model`, worker k > 0 on replicas[k - 1], a copy
  // refreshed from `model` before every minibatch.
  int update_workers = 1;
  std::vector<agents::ActorCritic> replicas;
  std::unique_ptr<envs::ThreadPool> update_pool;

  // Forward, loss and (when the loss is finite) backward of the chunks `starts` of a minibatch
  // on `net`; the loss is scaled by `weight`, the part's share of the minibatch, so the parts'
  // gradients sum to the whole minibatch's.
  PartResult ForwardBackward(agents::ActorCriticImpl& net, const Batch& b, const at::Tensor& starts,
                             const at::Tensor& rows, const at::Tensor& adv, double weight, bool add_prior,
                             const LossCoefficients& coef, PhaseProfile* prof) {
    std::optional<PhaseProfile::Scope> phase(std::in_place, prof, "update.gather");
    const int64_t r = cfg.recurrence, c = starts.size(0);
    const at::Tensor rows_d = rows.to(device);
    const at::Tensor starts_d = starts.to(device);
    const at::Tensor& tasks_cpu = b.tasks;
    const agents::Observation obs = b.obs.SelectRows(rows_d);
    const skills::TaskBatch batch_all = skills::TaskBatch::FromTaskIds(obs.task_ids);
    const skills::TaskBatch batch_step = skills::TaskBatch::FromTaskIds(tasks_cpu.index_select(0, starts).to(device));

    phase.emplace(prof, "update.forward");
    const agents::Encoded enc = net.Encode(obs, batch_all);
    const at::Tensor gates = net.MemoryGates(enc, batch_all).view({c, r, -1});
    const at::Tensor mem_all = UnrollMemory(net, gates, b.memory.index_select(0, starts_d),
                                            b.mask.index_select(0, rows_d).view({c, r}), batch_step);
    const agents::PolicyOutput out = net.Heads(enc, mem_all, batch_all);

    const at::Tensor actions = b.actions.index_select(0, rows_d);
    const at::Tensor ret = b.returns.index_select(0, rows_d);
    const LossTerms terms = cfg.algo == "ppo"
                                ? PpoLoss(out.log_probs, out.values, actions, b.logp.index_select(0, rows_d),
                                          b.values.index_select(0, rows_d), adv, ret, coef)
                                : A2cLoss(out.log_probs, out.values, actions, adv, ret, coef);
    at::Tensor loss = cfg.rl_coef == 1.0 ? terms.loss : terms.loss * cfg.rl_coef;
    at::Tensor row_kl;
    if (b.teacher_logp.defined()) {
      row_kl = DistillationKl(out.log_probs, b.teacher_logp.index_select(0, rows_d), cfg.distill_temperature);
      loss = loss + cfg.DistillCoefAt(frames) * row_kl.mean();  // `frames` counts up after the update
      if (cfg.distill_value_coef > 0.0) {
        loss = loss + cfg.distill_value_coef * (out.values - b.teacher_values.index_select(0, rows_d)).pow(2).mean();
      }
    }
    if (weight != 1.0) loss = loss * weight;
    if (add_prior && cfg.ibp_weight > 0.0) {
      for (const auto& z : net.RouterParameters()) {
        loss = loss + cfg.ibp_weight * NegLogIbpPrior(z.view({z.size(0), -1}));
      }
    }
    PartResult p;
    p.loss = loss.item<double>();
    p.policy_loss = weight * terms.policy_loss.item<double>();
    p.value_loss = weight * terms.value_loss.item<double>();
    p.entropy = weight * terms.entropy.item<double>();
    p.value_mean = weight * out.values.mean().item<double>();
    p.approx_kl = weight * terms.approx_kl;
    p.clip_fraction = weight * terms.clip_fraction;
    if (row_kl.defined()) {
      const at::Tensor row_tasks = tasks_cpu.index_select(0, rows);
      const at::Tensor sums = at::zeros({levels}, at::kDouble).index_add_(0, row_tasks, row_kl.detach().to(at::kCPU, at::kDouble));
      const at::Tensor counts = at::bincount(row_tasks, {}, levels).to(at::kDouble);
      p.level_kl_sum.assign(sums.data_ptr<double>(), sums.data_ptr<double>() + levels);
      p.level_rows.assign(counts.data_ptr<double>(), counts.data_ptr<double>() + levels);
    }
    phase.emplace(prof, "update.backward");
    if (std::isfinite(p.loss)) loss.backward();  // a non-finite loss stops the update (Optimise)
    return p;
  }

  // A network like the run's (options, convolution precision, device) with fresh weights. The
  // draws of those weights stay out of the run's random stream.
  agents::ActorCritic NewNetworkLike() {
    at::Generator gen = CpuGenerator();
    const at::Tensor state = gen.get_state();
    agents::ActorCritic net(model->options);
    gen.set_state(state);
    net->SetConvPrecision(model->ConvPrecision());
    net->to(device);
    return net;
  }

  // Gives `net` (from NewNetworkLike) the run network's parameters, buffers, frozen flags and
  // train/eval mode, with no gradients.
  void CopyNetworkInto(agents::ActorCriticImpl& net) {
    at::NoGradGuard no_grad;
    net.train(model->is_training());
    const auto from_params = model->parameters(), from_buffers = model->buffers();
    auto params = net.parameters();
    auto buffers = net.buffers();
    TORCH_CHECK(params.size() == from_params.size() && buffers.size() == from_buffers.size(),
                "copy of the network has ", params.size(), " parameters and ", buffers.size(), " buffers, the network ",
                from_params.size(), " and ", from_buffers.size());
    auto copy = [](at::Tensor to, const at::Tensor& from) {
      if (to.sizes() == from.sizes()) {
        to.copy_(from);
      } else {
        to.set_data(from.clone());  // a router that grew (new tasks)
      }
    };
    for (size_t i = 0; i < params.size(); ++i) {
      copy(params[i], from_params[i]);
      params[i].set_requires_grad(from_params[i].requires_grad());  // frozen stays frozen
      params[i].mutable_grad() = at::Tensor();
    }
    for (size_t i = 0; i < buffers.size(); ++i) copy(buffers[i], from_buffers[i]);
  }

  // Brings the replicas' parameters and buffers to the master's values and clears their grads.
  void SyncReplicas() {
    if (replicas.size() + 1 < static_cast<size_t>(update_workers)) {
      while (replicas.size() + 1 < static_cast<size_t>(update_workers)) replicas.push_back(NewNetworkLike());
      update_pool = std::make_unique<envs::ThreadPool>(update_workers);
    }
    for (auto& replica : replicas) CopyNetworkInto(*replica);
  }

  // Adds the replicas' gradients into the master's (fixed order: reproducible), and averages
  // floating buffers that the parts changed (BatchNorm running statistics).
  void ReduceReplicas() {
    at::NoGradGuard no_grad;
    const auto master_params = model->parameters();
    const auto master_buffers = model->buffers();
    for (auto& replica : replicas) {
      const auto params = replica->parameters();
      for (size_t i = 0; i < params.size(); ++i) {
        const at::Tensor& g = params[i].grad();
        if (!g.defined()) continue;
        at::Tensor master = master_params[i];
        if (master.grad().defined()) {
          master.mutable_grad().add_(g);
        } else {
          master.mutable_grad() = g.clone();
        }
      }
    }
    for (size_t i = 0; i < master_buffers.size(); ++i) {
      at::Tensor m = master_buffers[i];
      if (!at::isFloatingType(m.scalar_type())) continue;
      bool changed = false;
      for (auto& replica : replicas) changed = changed || !at::equal(replica->buffers()[i], m);
      if (!changed) continue;
      for (auto& replica : replicas) m.add_(replica->buffers()[i]);
      m.div_(static_cast<double>(replicas.size() + 1));
    }
  }

  UpdateStats Optimise(const Batch& b) {
    const int64_t total = static_cast<int64_t>(n) * steps;
    const int64_t r = cfg.recurrence;
    const bool ppo = cfg.algo == "ppo";
    const int epochs = ppo ? cfg.epochs : 1;
    const int64_t chunks_per_batch = ppo ? cfg.batch_size / r : total / r;
    const int64_t num_chunks = total / r;
    LossCoefficients coef;
    coef.clip = cfg.clip;
    coef.clip_value_loss = cfg.clip_value_loss;
    coef.entropy_coef = cfg.entropy_coef;
    coef.value_coef = cfg.value_coef;
    // More workers than chunks would leave some idle.
    update_workers = static_cast<int>(std::min<int64_t>(cfg.ResolvedUpdateWorkers(), chunks_per_batch));
    PartResult totals;  // summed over minibatches
    double grad_norm_total = 0.0;
    int count = 0;
    // Adam on CPU floats runs fused (one pass per parameter, the clip folded in as a scale).
    auto* adam = dynamic_cast<torch::optim::Adam*>(optimizer.get());
    const bool fused = adam != nullptr && CanFuseAdam(*adam);
    // Elsewhere (a GPU) the same step with multi-tensor operators: ~2,000 launches per minibatch
    // fewer than clip_grad_norm_ and Adam's per-parameter ops.
    const bool multi_tensor = !fused && adam != nullptr && CanMultiTensorAdam(*adam);
    const at::Tensor offsets = at::arange(r, at::kLong);
    const at::Tensor tasks_cpu = b.tasks;
    for (int epoch = 0; epoch < epochs; ++epoch) {
      const at::Tensor perm = (ppo ? at::randperm(num_chunks, at::kLong) : at::arange(num_chunks, at::kLong)) * r;
      for (int64_t first = 0; first + chunks_per_batch <= num_chunks; first += chunks_per_batch) {
        at::Tensor starts = perm.narrow(0, first, chunks_per_batch);
        // Group chunks by task (stable), so every routed layer sees task blocks without permuting.
        const at::Tensor chunk_tasks = tasks_cpu.index_select(0, starts);
        const at::Tensor order = std::get<1>(chunk_tasks.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false));
        starts = starts.index_select(0, order);
        const at::Tensor rows = (starts.unsqueeze(1) + offsets.unsqueeze(0)).reshape({-1});  // chunk-major
        const int64_t c = starts.size(0);
        RECORD_USER_SCOPE("skillgrid::minibatch");  // phase marker for profiler traces
        // Phase parts on the single-worker path (the GPU's); workers would overlap them, so with
        // several the whole minibatch is one phase.
        std::optional<PhaseProfile::Scope> prep_phase(std::in_place, profile.get(),
                                                      update_workers == 1 ? "update.prep" : "update.workers");

        // Advantages are normalised over the whole minibatch, before it is split.
        at::Tensor adv = b.advantages.index_select(0, rows.to(device));
        if (cfg.normalize_advantages) adv = (adv - adv.mean()) / (adv.std() + 1e-8);
        optimizer->zero_grad();
        std::vector<PartResult> parts(static_cast<size_t>(update_workers));
        if (update_workers == 1) {
          prep_phase.reset();
          parts[0] = ForwardBackward(*model, b, starts, rows, adv, 1.0, true, coef, profile.get());
        } else {
          SyncReplicas();
          // Each worker draws its routing noise from its own generator. Its seed comes from the
          // run's seed and position, not from the run's generator, whose stream (minibatch order,
          // actions) thus stays the same for every worker count.
          std::vector<uint64_t> seeds(static_cast<size_t>(update_workers));
          for (int k = 0; k < update_workers; ++k) {
            seeds[static_cast<size_t>(k)] = WorkerSeed(cfg.seed, update, count, k);
          }
          update_pool->ParallelFor([&](int k) {
            // OpenMP's thread count is per thread: give the pool's threads the configured one.
            at::init_num_threads();
            const int64_t lo = c * k / update_workers, hi = c * (k + 1) / update_workers;
            const skills::ScopedRoutingGenerator generator(
                at::make_generator<at::CPUGeneratorImpl>(seeds[static_cast<size_t>(k)]));
            agents::ActorCriticImpl& net = k == 0 ? *model : *replicas[static_cast<size_t>(k - 1)];
            parts[static_cast<size_t>(k)] =
                ForwardBackward(net, b, starts.narrow(0, lo, hi - lo), rows.narrow(0, lo * r, (hi - lo) * r),
                                adv.narrow(0, lo * r, (hi - lo) * r), static_cast<double>(hi - lo) / static_cast<double>(c),
                                /*add_prior=*/k == 0, coef, /*prof=*/nullptr);
          });
          ReduceReplicas();
        }
        std::optional<PhaseProfile::Scope> optim_phase;
        if (update_workers == 1) optim_phase.emplace(profile.get(), "update.optim");
        PartResult sum;
        for (const PartResult& p : parts) sum += p;
        if (!std::isfinite(sum.loss)) {
          throw TrainingError("loss is " + Num(sum.loss) + " at update " + std::to_string(update + 1) + " (policy " +
                              Num(sum.policy_loss) + ", value " + Num(sum.value_loss) + ", entropy " +
                              Num(sum.entropy) +
                              "); stopping before the optimiser step, the run directory keeps its last checkpoint");
        }
        const double grad_norm = fused          ? GradientNorm(all_params)
                                 : multi_tensor ? MultiTensorGradientNorm(all_params)
                                                : torch::nn::utils::clip_grad_norm_(all_params, cfg.max_grad_norm);
        if (!std::isfinite(grad_norm)) {
          throw TrainingError("gradient norm is " + Num(grad_norm) + " at update " + std::to_string(update + 1) +
                              "; stopping before the optimiser step, the run directory keeps its last checkpoint");
        }
        // clip_grad_norm_'s rule: scale by max_norm / (norm + 1e-6) when that is below 1.
        const double clip = std::min(1.0, cfg.max_grad_norm / (grad_norm + 1e-6));
        if (fused) {
          FusedAdamStep(*adam, clip);
        } else if (multi_tensor) {
          MultiTensorAdamStep(*adam, clip);
        } else {
          optimizer->step();  // clip_grad_norm_ has scaled the gradients
        }
        totals += sum;
        grad_norm_total += grad_norm;
        ++count;
      }
    }
    const double minibatches = std::max(count, 1);
    UpdateStats s;
    s.policy_loss = totals.policy_loss / minibatches;
    s.value_loss = totals.value_loss / minibatches;
    s.entropy = totals.entropy / minibatches;
    s.value_mean = totals.value_mean / minibatches;
    s.approx_kl = totals.approx_kl / minibatches;
    s.clip_fraction = totals.clip_fraction / minibatches;
    s.grad_norm = grad_norm_total / minibatches;
    if (teachers) {
      s.distill_coef = cfg.DistillCoefAt(frames);
      double kl = 0.0, rows_total = 0.0;
      s.level_kl.assign(levels, std::nan(""));
      for (size_t t = 0; t < totals.level_kl_sum.size(); ++t) {
        kl += totals.level_kl_sum[t];
        rows_total += totals.level_rows[t];
        if (totals.level_rows[t] > 0) s.level_kl[t] = totals.level_kl_sum[t] / totals.level_rows[t];
      }
      s.distill_kl = rows_total > 0 ? kl / rows_total : std::nan("");
    }
    return s;
  }

  // The levels of --eval-unseen on a copy of the network with one task added for them, routed
  // as --unseen-routing; the trained network and the run's random stream stay untouched.
  Evaluation EvaluateUnseen() {
    agents::ActorCritic zero_shot = NewNetworkLike();
    CopyNetworkInto(*zero_shot);
    const int64_t task = UnseenRouting::Parse(cfg.unseen_routing, cfg.levels).TaskIn(*zero_shot, cfg.levels);
    const std::vector<int64_t> tasks(cfg.eval_unseen.size(), task);
    return EvaluatePolicy(zero_shot, cfg.eval_unseen, cfg.eval_episodes, cfg.eval_seed, /*argmax=*/true, threads, tasks);
  }

  double EvaluateNow() {
    const Evaluation e = EvaluatePolicy(model, cfg.levels, cfg.eval_episodes, cfg.eval_seed, /*argmax=*/true, threads);
    const Evaluation unseen = cfg.eval_unseen.empty() ? Evaluation() : EvaluateUnseen();
    if (has_dir) {
      const std::string path = Path("eval.csv");
      if (!fs::exists(path)) {
        std::vector<std::string> h = {"update", "frames", "mean_success"};
        auto add_level_columns = [&h](const std::vector<std::string>& levels) {
          for (const char* what : {"success_", "return_", "length_"})
            for (const auto& l : levels) h.push_back(what + ShortLevelName(l));
        };
        add_level_columns(cfg.levels);
        if (!cfg.eval_unseen.empty()) {
          h.push_back("mean_unseen_success");
          add_level_columns(cfg.eval_unseen);
        }
        WriteFileAtomically(path, JoinCsv(h));
      }
      std::vector<std::string> f = {std::to_string(update), std::to_string(frames), Num(e.success_rate)};
      auto add_level_values = [&f](const Evaluation& ev) {
        for (const auto& l : ev.levels) f.push_back(Num(l.success_rate));
        for (const auto& l : ev.levels) f.push_back(Num(l.mean_return));
        for (const auto& l : ev.levels) f.push_back(Num(l.mean_length));
      };
      add_level_values(e);
      if (!cfg.eval_unseen.empty()) {
        f.push_back(Num(unseen.success_rate));
        add_level_values(unseen);
      }
      std::ofstream out(path, std::ios::app);
      out << JoinCsv(f);
    }
    return e.success_rate;
  }
};

// -----------------------------------------------------------------------------------------------
std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(agents::ActorCriticImpl& model, const TrainConfig& cfg) {
  const auto routers = model.RouterParameters();
  if (cfg.optimizer == "adam") {
    auto opts = [&](double lr) {
      return torch::optim::AdamOptions(lr).eps(cfg.optim_eps).betas({cfg.adam_beta1, cfg.adam_beta2});
    };
    std::vector<torch::optim::OptimizerParamGroup> groups;
    // No network group when only the routing trains (MHR-z adaptation): the routers are then group 0.
    if (!cfg.train_only_routing) {
      groups.emplace_back(model.NetworkParameters(), std::make_unique<torch::optim::AdamOptions>(opts(cfg.lr)));
    }
    if (!routers.empty()) groups.emplace_back(routers, std::make_unique<torch::optim::AdamOptions>(opts(cfg.router_lr)));
    return std::make_unique<torch::optim::Adam>(std::move(groups), opts(cfg.lr));
  }
  auto opts = [&](double lr) { return torch::optim::RMSpropOptions(lr).eps(cfg.optim_eps).alpha(cfg.rmsprop_alpha); };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (!cfg.train_only_routing) {
    groups.emplace_back(model.NetworkParameters(), std::make_unique<torch::optim::RMSpropOptions>(opts(cfg.lr)));
  }
  if (!routers.empty()) groups.emplace_back(routers, std::make_unique<torch::optim::RMSpropOptions>(opts(cfg.router_lr)));
  return std::make_unique<torch::optim::RMSprop>(std::move(groups), opts(cfg.lr));
}

at::Tensor UnrollMemory(agents::ActorCriticImpl& model, const at::Tensor& gates, at::Tensor memory,
                        const at::Tensor& masks, const skills::TaskBatch& step_batch) {
  const int64_t rows = gates.size(0) * gates.size(1);
  return model.UnrollMemory(gates, memory, masks, step_batch).view({rows, -1});
}

Trainer::Trainer(const TrainConfig& config, bool resume) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.cfg = config;
  s.cfg.Validate();
  s.threads = s.cfg.ResolvedThreads();
  CheckDeviceAvailable(s.cfg.device);
  s.device = at::Device(s.cfg.device);
  at::set_num_threads(s.cfg.ResolvedTorchThreads());
  // One BLAS thread: torch's OpenMP workers spin between parallel regions, and a second BLAS
  // pool competing with them made 1280x128x512 matmuls 2-6x slower on 2 cores (measured).
  skills::SetBlasThreads(1);
  s.has_dir = !s.cfg.run_dir.empty();

  std::string resume_from;
  if (s.has_dir) {
    const auto checkpoints = ListCheckpoints(s.cfg.run_dir);
    if (resume) {
      if (!fs::exists(s.Path("config.json"))) {
        throw RunError("cannot resume: " + s.cfg.run_dir + " holds no run (no config.json)");
      }
      if (!checkpoints.empty()) resume_from = checkpoints.back();
    } else if (!checkpoints.empty() || fs::exists(s.Path("log.csv"))) {
      throw RunError("run directory " + s.cfg.run_dir +
                     " already holds a run; pass --resume to continue it, or choose another --run-dir");
    }
    fs::create_directories(fs::path(s.cfg.run_dir) / "checkpoints");
  }

  if (s.cfg.precision == "bf16" && s.device.is_cpu() && skills::WinogradConvPreferred()) {
    // Recorded in config.json: a resumed run keeps the tile it started with.
    if (s.cfg.winograd_tile.empty()) s.cfg.winograd_tile = skills::WinogradTileName(skills::WinogradBf16Tile());
    s.winograd_tile.emplace(*skills::ParseWinogradTile(s.cfg.winograd_tile));
  }
  at::manual_seed(s.cfg.seed);
  s.model = agents::ActorCritic(s.MakeModelOptions());
  s.model->SetConvPrecision(skills::ParseConvPrecision(s.cfg.precision));
  s.model->to(s.device);
  if (!s.cfg.init_from.empty() && resume_from.empty()) s.InitFrom(s.cfg.init_from);  // resuming loads its own
  if (s.cfg.train_only_routing) skills::FreezeAllButRouting(*s.model);
  s.BuildOptimizer();
  s.BuildEnv();
  if (s.cfg.distilling()) {
    for (const auto& source : s.cfg.teachers) {
      // A run taught by its own checkpoints would learn from a moving target, and differently
      // after a resume.
      const fs::path teacher = fs::weakly_canonical(source);
      if (s.has_dir && (teacher == fs::weakly_canonical(s.cfg.run_dir) ||
                        teacher.parent_path() == fs::weakly_canonical(fs::path(s.cfg.run_dir) / "checkpoints"))) {
        throw RunError("--teacher " + source + " is this run's own directory; give another run as the teacher");
      }
    }
    std::vector<int> env_tasks(static_cast<size_t>(s.n));
    for (int i = 0; i < s.n; ++i) env_tasks[static_cast<size_t>(i)] = s.env->task_of(i);
    s.teachers = std::make_unique<TeacherSet>(s.cfg.teachers, s.cfg.levels, env_tasks, s.device);
  }
  s.level_episodes.assign(s.levels, 0);
  s.windows.assign(s.levels, {});
  if (!resume_from.empty()) {
    s.LoadCheckpoint(resume_from);
  } else if (s.has_dir && resume) {
    // Killed before its first checkpoint: start over in place.
    TruncateCsv(s.Path("log.csv"), 0);
    TruncateCsv(s.Path("eval.csv"), 0);
  }
  if (s.has_dir) {
    WriteFileAtomically(s.Path("config.json"), s.cfg.ToJson().dump(2) + "\n");
    s.OpenLogs(/*fresh=*/resume_from.empty());
  }
  s.session_start = Clock::now();
}

Trainer::~Trainer() = default;

void Trainer::Train(const UpdateCallback& on_update) {
  Impl& s = *impl_;
  const int64_t total = s.cfg.total_updates();
  s.stop_reason = StopReason::kNone;
  if (s.update >= total) {
    s.stop_reason = StopReason::kFrames;
  } else if (s.cfg.max_minutes > 0.0 && s.duration_before >= s.cfg.max_minutes * 60.0) {
    s.stop_reason = StopReason::kTimeBudget;  // a resumed run whose earlier sessions used it up
  }
  while (s.stop_reason == StopReason::kNone) {
    const UpdateStats stats = s.Step();
    if (s.cfg.eval_interval > 0 && s.update % s.cfg.eval_interval == 0) s.EvaluateNow();
    // The stop flag and the budget are read once per update, after its evaluation, so the last
    // update is saved.
    if (s.stop_flag != nullptr && s.stop_flag->load()) {
      s.stop_reason = StopReason::kStopFlag;
    } else if (s.update >= total) {
      s.stop_reason = StopReason::kFrames;
    } else if (TimeBudgetSpent()) {
      s.stop_reason = StopReason::kTimeBudget;
    }
    if (s.update % s.cfg.save_interval == 0 || s.stop_reason != StopReason::kNone) s.SaveCheckpoint();
    if (on_update) on_update(stats);
  }
}

void Trainer::SetStopFlag(const std::atomic<bool>* stop) { impl_->stop_flag = stop; }
StopReason Trainer::stop_reason() const { return impl_->stop_reason; }

double Trainer::ElapsedSeconds() const {
  return impl_->duration_before + std::chrono::duration<double>(Clock::now() - impl_->session_start).count();
}

bool Trainer::TimeBudgetSpent() const {
  return impl_->cfg.max_minutes > 0.0 && ElapsedSeconds() >= impl_->cfg.max_minutes * 60.0;
}

UpdateStats Trainer::Step() { return impl_->Step(); }
void Trainer::SaveCheckpoint() { impl_->SaveCheckpoint(); }
double Trainer::EvaluateNow() { return impl_->EvaluateNow(); }
const TrainConfig& Trainer::config() const { return impl_->cfg; }
agents::ActorCritic Trainer::model() const { return impl_->model; }
int64_t Trainer::updates() const { return impl_->update; }
int64_t Trainer::frames() const { return impl_->frames; }
const UpdateStats& Trainer::last_stats() const { return impl_->last; }
PhaseProfile& Trainer::EnablePhaseProfile() {
  if (!impl_->profile) impl_->profile = std::make_unique<PhaseProfile>(impl_->device);
  return *impl_->profile;
}
std::vector<std::string> Trainer::TeacherDescriptions() const {
  return impl_->teachers ? impl_->teachers->Describe() : std::vector<std::string>{};
}

std::string ProgressLine(const TrainConfig& config, const UpdateStats& s) {
  std::ostringstream o;
  const int64_t target = config.total_updates() * config.frames_per_update();
  double eta = s.fps > 0 ? (target - s.frames) / s.fps : 0.0;
  // The time budget ends the run first when the frames would take longer.
  const bool budget_binds = config.max_minutes > 0 && config.max_minutes * 60.0 - s.duration_s < eta;
  if (budget_binds) eta = config.max_minutes * 60.0 - s.duration_s;
  const int eta_s = static_cast<int>(std::max(0.0, eta));
  char head[200];
  std::snprintf(head, sizeof(head), "frames %lld/%lld (%.1f%%) | %.0f fps | ETA %dh%02dm%02ds%s | episodes %lld | success %.3f |",
                static_cast<long long>(s.frames), static_cast<long long>(target), 100.0 * s.frames / std::max<int64_t>(target, 1),
                s.fps, eta_s / 3600, (eta_s / 60) % 60, eta_s % 60, budget_binds ? " (time budget)" : "",
                static_cast<long long>(s.episodes), s.mean_success);
  o << head;
  for (size_t i = 0; i < config.levels.size() && i < s.success.size(); ++i) {
    char cell[64];
    if (std::isnan(s.success[i])) {
      std::snprintf(cell, sizeof(cell), " %s -", ShortLevelName(config.levels[i]).c_str());
    } else {
      std::snprintf(cell, sizeof(cell), " %s %.2f", ShortLevelName(config.levels[i]).c_str(), s.success[i]);
    }
    o << cell;
  }
  if (config.distilling() && !std::isnan(s.distill_kl)) {
    char cell[64];
    std::snprintf(cell, sizeof(cell), " | KL %.3f", s.distill_kl);
    o << cell;
  }
  return o.str();
}

}  // namespace skillgrid::training
