#include "training/evaluate.h"

#include <algorithm>

#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>
#include <torch/types.h>

#include "envs/vec_env.h"
#include "skills/task_batch.h"
#include "training/config.h"
#include "training/instruction_cache.h"

namespace skillgrid::training {

namespace {
// Envs per evaluation batch: a multiple of the level count near this.
constexpr int kEvalBatchTarget = 256;
}  // namespace

UnseenRouting UnseenRouting::Parse(const std::string& value, const std::vector<std::string>& trained_levels) {
  UnseenRouting r;
  const std::string as_prefix = "as:";
  if (value.rfind(as_prefix, 0) != 0) {
    try {
      r.added = skills::ParseUnseenTaskRouting(value);
    } catch (const std::invalid_argument&) {
      throw ConfigError("--unseen-routing must be mean, uniform or as:LEVEL (a trained level), got '" + value + "'");
    }
    return r;
  }
  const std::string name = value.substr(as_prefix.size());
  for (const auto& level : trained_levels) {
    if (level == name || ShortLevelName(level) == name) r.as_level = level;
  }
  if (r.as_level.empty()) {
    std::string known;
    for (const auto& level : trained_levels) known += (known.empty() ? "" : ", ") + ShortLevelName(level);
    throw ConfigError("--unseen-routing " + value + ": '" + name + "' is not a trained level (" + known + ")");
  }
  return r;
}

int64_t UnseenRouting::TaskIn(agents::ActorCriticImpl& model, const std::vector<std::string>& trained_levels) const {
  if (as_level.empty()) return skills::AddUnseenTask(model, added);
  const auto it = std::find(trained_levels.begin(), trained_levels.end(), as_level);
  TORCH_CHECK(it != trained_levels.end(), "UnseenRouting: ", as_level, " is not a trained level");
  return it - trained_levels.begin();
}

Evaluation EvaluatePolicy(agents::ActorCritic model, const std::vector<std::string>& levels, int episodes,
                          uint64_t seed, bool argmax, int threads, const std::vector<int64_t>& model_tasks) {
  TORCH_CHECK(model_tasks.empty() || model_tasks.size() == levels.size(), "EvaluatePolicy: ", model_tasks.size(),
              " model task ids for ", levels.size(), " levels");
  const bool was_training = model->is_training();
  model->eval();
  c10::InferenceMode inference;  // lighter than no-grad: no autograd dispatch or version counters
  const at::Device device = model->parameters().front().device();
  const int t = static_cast<int>(levels.size());
  const int per_batch_levels = std::max(1, kEvalBatchTarget / t);  // episodes per level per batch
  std::vector<double> success(t, 0.0), returns(t, 0.0), lengths(t, 0.0);
  InstructionCache instructions;  // eval routing is deterministic: one encoding per mission
  int batch_index = 0;
  for (int done_per_level = 0; done_per_level < episodes; done_per_level += per_batch_levels, ++batch_index) {
    const int e = std::min(per_batch_levels, episodes - done_per_level);
    envs::VecEnvConfig vc;
    vc.levels = levels;
    vc.num_envs = e * t;
    vc.num_threads = std::max(1, threads);
    vc.seed = seed + static_cast<uint64_t>(batch_index) * 0x100000001B3ULL;
    envs::VecEnv env(vc);
    const int n = env.num_envs();
    const int v = env.view_size();
    const int w = vc.max_mission_tokens;
    std::vector<uint8_t> images(static_cast<size_t>(n) * v * v * 3), term(n), trunc(n), succ(n);
    std::vector<int32_t> dirs(n), tokens(static_cast<size_t>(n) * w), lens(n), ep_len(n), actions(n);
    std::vector<float> rewards(n), ep_ret(n);
    envs::VecEnvBuffers buf{images.data(), dirs.data(), tokens.data(), lens.data(), rewards.data(), term.data(),
                            trunc.data(),  ep_ret.data(), ep_len.data(), succ.data()};
    env.Reset(buf);
    std::vector<int64_t> task_ids(n);
    for (int i = 0; i < n; ++i) task_ids[i] = model_tasks.empty() ? env.task_of(i) : model_tasks[env.task_of(i)];
    const at::Tensor tasks = at::from_blob(task_ids.data(), {n}, at::kLong).clone();
    const skills::TaskBatch batch = skills::TaskBatch::FromTaskIds(tasks.to(device));
    at::Tensor memory = at::zeros({n, model->memory_size()}, at::TensorOptions().device(device));
    std::vector<char> finished(n, 0);
    int remaining = n;
    while (remaining > 0) {
      const agents::Observation host =
          agents::MakeObservation(at::from_blob(images.data(), {n, v, v, 3}, at::kByte),
                                  at::from_blob(tokens.data(), {n, w}, at::kInt),
                                  at::from_blob(lens.data(), {n}, at::kInt), tasks);
      const agents::Observation obs = host.To(device);
      const agents::PolicyOutput out = model->Act(obs, memory, batch, instructions.Lookup(*model, host, obs));
      const at::Tensor a = argmax ? out.log_probs.argmax(1) : agents::SampleActions(out.log_probs);
      const at::Tensor a_cpu = a.to(at::kCPU).to(at::kInt).contiguous();
      std::copy(a_cpu.data_ptr<int32_t>(), a_cpu.data_ptr<int32_t>() + n, actions.begin());
      env.Step(actions.data(), buf);
      std::vector<float> keep(n, 1.0f);
      for (int i = 0; i < n; ++i) {
        if (!(term[i] || trunc[i])) continue;
        keep[i] = 0.0f;
        if (finished[i]) continue;
        finished[i] = 1;
        --remaining;
        const int task = env.task_of(i);
        success[task] += succ[i] ? 1.0 : 0.0;
        returns[task] += ep_ret[i];
        lengths[task] += ep_len[i];
      }
      memory = out.memory * at::from_blob(keep.data(), {n, 1}, at::kFloat).to(device);
    }
  }
  Evaluation result;
  for (int i = 0; i < t; ++i) {
    LevelEvaluation l;
    l.level = levels[i];
    l.episodes = episodes;
    l.success_rate = success[i] / episodes;
    l.mean_return = returns[i] / episodes;
    l.mean_length = lengths[i] / episodes;
    result.success_rate += l.success_rate / t;
    result.levels.push_back(l);
  }
  model->train(was_training);
  return result;
}

}  // namespace skillgrid::training
