// Fixed task -> skill allocations (Expert/custom routing): presets and JSON files.
#pragma once

#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

namespace skillgrid::skills {

/// Polytropon's eight BabyAI levels, in the order of its Expert table (short names, e.g. "GoToObj").
const std::vector<std::string>& PolytroponLevels();

/// Polytropon's Expert allocation (Table 2) as a binary (8 x 9) matrix, rows in
/// PolytroponLevels() order. Skill 9 is used by no level, as in the paper.
at::Tensor PolytroponExpertAllocation();

/// The same table in the JSON allocation format read by AllocationFromJson.
nlohmann::json PolytroponExpertJson();

/// Strips the "BabyAI-" prefix and a "-vN" suffix, so "BabyAI-GoToObj-v0" matches "GoToObj".
std::string CanonicalTaskName(const std::string& name);

/// Builds a (T x S) binary allocation, rows in `task_names` order, from JSON of the form
/// {"n_skills": 9, "one_based": true, "tasks": {"GoToObj": [1], "GoTo": [1, 2, 3, 4, 8]}}.
/// Throws (c10::Error) naming the offenders when the file names unknown tasks, misses one of
/// `task_names`, or lists a skill id outside 1..n_skills (0..n_skills-1 when not one_based).
at::Tensor AllocationFromJson(const nlohmann::json& spec, const std::vector<std::string>& task_names);

/// Reads a JSON allocation file (see AllocationFromJson); throws when it cannot be read or parsed.
at::Tensor LoadAllocationFile(const std::string& path, const std::vector<std::string>& task_names);

/// A preset by name for the given tasks: "expert" (Polytropon's table; tasks must be among its
/// levels), "shared" (T x 1 ones) or "private" (I_T).
at::Tensor AllocationPreset(const std::string& preset, const std::vector<std::string>& task_names);

}  // namespace skillgrid::skills
