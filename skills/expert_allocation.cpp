#include "skills/expert_allocation.h"

#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include <c10/util/Exception.h>

namespace skillgrid::skills {
namespace {

// Polytropon Table 2, 1-based skill ids per level.
const std::vector<std::pair<std::string, std::vector<int64_t>>>& ExpertTable() {
  static const std::vector<std::pair<std::string, std::vector<int64_t>>> table = {
      {"GoToObj", {1}},
      {"GoToRedBallGrey", {1, 2}},
      {"GoToRedBall", {1, 2, 3}},
      {"GoToLocal", {1, 2, 3, 4}},
      {"PutNextLocal", {1, 2, 3, 5}},
      {"PickupLoc", {1, 2, 3, 6, 7}},
      {"GoToObjMaze", {1, 8}},
      {"GoTo", {1, 2, 3, 4, 8}},
  };
  return table;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::ostringstream out;
  for (size_t i = 0; i < names.size(); ++i) out << (i ? ", " : "") << names[i];
  return out.str();
}

}  // namespace

const std::vector<std::string>& PolytroponLevels() {
  static const std::vector<std::string> levels = [] {
    std::vector<std::string> names;
    for (const auto& [name, skills] : ExpertTable()) names.push_back(name);
    return names;
  }();
  return levels;
}

nlohmann::json PolytroponExpertJson() {
  nlohmann::json tasks = nlohmann::json::object();
  for (const auto& [name, skills] : ExpertTable()) tasks[name] = skills;
  return {{"n_skills", 9}, {"one_based", true}, {"tasks", tasks}};
}

at::Tensor PolytroponExpertAllocation() { return AllocationFromJson(PolytroponExpertJson(), PolytroponLevels()); }

std::string CanonicalTaskName(const std::string& name) {
  static const std::regex wrapped("^(?:BabyAI-)?(.*?)(?:-v[0-9]+)?$");
  std::smatch match;
  return std::regex_match(name, match, wrapped) ? match[1].str() : name;
}

at::Tensor AllocationFromJson(const nlohmann::json& spec, const std::vector<std::string>& task_names) {
  TORCH_CHECK(spec.is_object() && spec.contains("n_skills") && spec.contains("tasks") && spec["tasks"].is_object(),
              "allocation JSON: expected {\"n_skills\": S, \"tasks\": {name: [skill ids]}}, got ", spec.dump());
  const int64_t n_skills = spec["n_skills"].get<int64_t>();
  TORCH_CHECK(n_skills >= 1, "allocation JSON: n_skills must be >= 1, got ", n_skills);
  const bool one_based = spec.value("one_based", true);
  const int64_t first_id = one_based ? 1 : 0;

  std::map<std::string, int64_t> row_of;
  for (size_t i = 0; i < task_names.size(); ++i) row_of[CanonicalTaskName(task_names[i])] = static_cast<int64_t>(i);

  auto allocation = at::zeros({static_cast<int64_t>(task_names.size()), n_skills});
  std::vector<bool> seen(task_names.size(), false);
  std::vector<std::string> unknown;
  for (const auto& [name, skills] : spec["tasks"].items()) {
    const auto row = row_of.find(CanonicalTaskName(name));
    if (row == row_of.end()) {
      unknown.push_back(name);
      continue;
    }
    TORCH_CHECK(skills.is_array(), "allocation JSON: task ", name, " must map to an array of skill ids, got ", skills.dump());
    seen[static_cast<size_t>(row->second)] = true;
    for (const auto& id_json : skills) {
      const int64_t id = id_json.get<int64_t>();
      TORCH_CHECK(id >= first_id && id < first_id + n_skills, "allocation JSON: task ", name, " lists skill id ", id,
                  ", outside ", first_id, "..", first_id + n_skills - 1);
      allocation[row->second][id - first_id] = 1.0;
    }
  }
  TORCH_CHECK(unknown.empty(), "allocation JSON names unknown tasks: ", JoinNames(unknown),
              " (known tasks: ", JoinNames(task_names), ")");
  std::vector<std::string> missing;
  for (size_t i = 0; i < task_names.size(); ++i)
    if (!seen[i]) missing.push_back(task_names[i]);
  TORCH_CHECK(missing.empty(), "allocation JSON has no entry for tasks: ", JoinNames(missing));
  return allocation;
}

at::Tensor LoadAllocationFile(const std::string& path, const std::vector<std::string>& task_names) {
  std::ifstream in(path);
  TORCH_CHECK(in.good(), "allocation file ", path, " cannot be opened");
  nlohmann::json spec;
  try {
    in >> spec;
  } catch (const nlohmann::json::exception& error) {
    TORCH_CHECK(false, "allocation file ", path, " is not valid JSON: ", error.what());
  }
  return AllocationFromJson(spec, task_names);
}

at::Tensor AllocationPreset(const std::string& preset, const std::vector<std::string>& task_names) {
  const auto n_tasks = static_cast<int64_t>(task_names.size());
  if (preset == "expert") {
    // Keep only the requested levels, so a run over a subset of the eight levels works.
    auto spec = PolytroponExpertJson();
    nlohmann::json requested = nlohmann::json::object();
    for (const auto& name : task_names) {
      const auto canonical = CanonicalTaskName(name);
      if (spec["tasks"].contains(canonical)) requested[canonical] = spec["tasks"][canonical];
    }
    spec["tasks"] = requested;
    return AllocationFromJson(spec, task_names);
  }
  if (preset == "shared") return at::ones({n_tasks, 1});
  if (preset == "private") return at::eye(n_tasks);
  TORCH_CHECK(false, "unknown allocation preset '", preset, "' (expected expert, shared or private)");
}

}  // namespace skillgrid::skills
