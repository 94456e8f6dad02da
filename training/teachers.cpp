#include "training/teachers.h"

#include <algorithm>
#include <sstream>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "training/checkpoint.h"
#include "training/config.h"

namespace skillgrid::training {

TeacherSet::TeacherSet(const std::vector<std::string>& sources, const std::vector<std::string>& levels,
                       const std::vector<int>& env_tasks, const at::Device& device)
    : device_(device), num_envs_(static_cast<int64_t>(env_tasks.size())) {
  // Building a network draws initial weights; keep those draws out of the run's stream.
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  const at::Tensor rng_state = gen.get_state();
  std::vector<std::vector<std::string>> teacher_levels;
  for (const auto& source : sources) {
    Teacher t;
    t.checkpoint = ResolveCheckpoint(source, "--teacher");
    LoadedModel loaded = LoadModel(t.checkpoint, device.str());
    t.model = loaded.model;
    for (auto& p : t.model->parameters()) p.set_requires_grad(false);
    std::vector<std::string> trained_on;
    try {
      trained_on = loaded.meta.at("config").at("levels").get<std::vector<std::string>>();
    } catch (const std::exception&) {
      throw RunError("--teacher " + t.checkpoint + ": its metadata names no training levels");
    }
    teacher_levels.push_back(trained_on);
    teachers_.push_back(std::move(t));
  }
  gen.set_state(rng_state);

  // Level -> (teacher, the teacher's task id of that level).
  std::vector<std::pair<size_t, int64_t>> teacher_of(levels.size());
  for (size_t l = 0; l < levels.size(); ++l) {
    bool found = false;
    for (size_t k = 0; k < teachers_.size() && !found; ++k) {
      const auto& tl = teacher_levels[k];
      const auto it = std::find(tl.begin(), tl.end(), levels[l]);
      if (it == tl.end()) continue;
      teacher_of[l] = {k, static_cast<int64_t>(it - tl.begin())};
      teachers_[k].taught.push_back(ShortLevelName(levels[l]));
      found = true;
    }
    if (!found) {
      throw RunError("--teacher: no teacher was trained on " + levels[l] +
                     " (give a teacher for every level of --levels)");
    }
  }
  for (size_t k = 0; k < teachers_.size(); ++k) {
    if (teachers_[k].taught.empty()) {
      throw RunError("--teacher " + teachers_[k].checkpoint +
                     " teaches none of the levels (an earlier teacher covers all of its levels, or it trained on others)");
    }
  }
  std::vector<std::vector<int64_t>> rows(teachers_.size()), tasks(teachers_.size());
  for (size_t i = 0; i < env_tasks.size(); ++i) {
    const auto& [k, task] = teacher_of.at(static_cast<size_t>(env_tasks[i]));
    rows[k].push_back(static_cast<int64_t>(i));
    tasks[k].push_back(task);
  }
  for (size_t k = 0; k < teachers_.size(); ++k) {
    Teacher& t = teachers_[k];
    const auto n = static_cast<int64_t>(rows[k].size());
    t.env_rows_cpu = at::tensor(rows[k], at::kLong).view({n});
    t.env_rows = t.env_rows_cpu.to(device);
    t.task_ids = at::tensor(tasks[k], at::kLong).view({n});
    t.batch = skills::TaskBatch::FromTaskIds(t.task_ids.to(device));
    t.memory = at::zeros({n, t.model->memory_size()}, at::TensorOptions().device(device));
  }
}

TeacherOutput TeacherSet::Step(const at::Tensor& images, const at::Tensor& tokens, const at::Tensor& lengths,
                               const at::Tensor& mask) {
  TeacherOutput out;
  out.log_probs = at::zeros({num_envs_, agents::kNumActions}, at::TensorOptions().device(device_));
  out.values = at::zeros({num_envs_}, at::TensorOptions().device(device_));
  for (Teacher& t : teachers_) {
    if (t.env_rows_cpu.size(0) == 0) continue;  // its levels have no env in this run
    const agents::Observation host =
        agents::MakeObservation(images.index_select(0, t.env_rows_cpu), tokens.index_select(0, t.env_rows_cpu),
                                lengths.index_select(0, t.env_rows_cpu), t.task_ids);
    const agents::Observation obs = host.To(device_);
    const at::Tensor memory_in = t.memory * mask.index_select(0, t.env_rows).unsqueeze(1);
    const agents::PolicyOutput step = t.model->Act(obs, memory_in, t.batch, t.instructions.Lookup(*t.model, host, obs));
    out.log_probs.index_copy_(0, t.env_rows, step.log_probs);
    out.values.index_copy_(0, t.env_rows, step.values);
    t.memory = step.memory;
  }
  return out;
}

void TeacherSet::ClearCaches() {
  for (Teacher& t : teachers_) t.instructions.Clear();
}

void TeacherSet::set_memory(size_t k, const at::Tensor& memory) {
  Teacher& t = teachers_.at(k);
  if (memory.sizes() != t.memory.sizes()) {
    std::ostringstream msg;
    msg << "checkpoint: teacher " << k << "'s memory is " << memory.sizes() << " there and " << t.memory.sizes()
        << " here (other teachers or env count than the run's own config.json?)";
    throw RunError(msg.str());
  }
  t.memory = memory.to(device_);
}

std::vector<std::string> TeacherSet::Describe() const {
  std::vector<std::string> lines;
  for (const Teacher& t : teachers_) {
    std::string taught;
    for (const auto& l : t.taught) taught += (taught.empty() ? "" : ", ") + l;
    int64_t parameters = 0;  // NumParameters() counts trainable ones, and a teacher has none
    for (const auto& p : t.model->parameters()) parameters += p.numel();
    lines.push_back(t.checkpoint + " (" + t.model->options.arch() + ", router " + t.model->options.routing().router() +
                    ", " + std::to_string(parameters) + " parameters) teaches " + taught);
  }
  return lines;
}

}  // namespace skillgrid::training
