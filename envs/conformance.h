// Replays episodes recorded from the reference Python Minigrid and compares every step
// (format: ../shared/conformance/README.md).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

namespace skillgrid::envs {

/// The verdict on one recorded episode.
struct TraceVerdict {
  std::string level;     ///< level id of the episode ("?" if unreadable)
  long long seed = -1;   ///< seed of the episode (-1 if unreadable)
  bool passed = false;   ///< every step matched
  int steps = 0;         ///< steps replayed before the verdict
  /// When failed: the step (0 = initial observation, k = after the k-th action), the field,
  /// and the expected and actual values; or, for bad input, `field` = "input" and `actual`
  /// the one-line error.
  int fail_step = -1;
  std::string field;
  std::string expected;
  std::string actual;

  /// One line: "<level> seed <s> step <k> <field>: expected <e>, got <a>".
  std::string Describe() const;
};

/// Replays one trace line (already parsed). Never throws: malformed input becomes a failed
/// verdict whose message names the problem.
TraceVerdict ReplayTrace(const nlohmann::json& episode);

/// Parses and replays one line of a .jsonl trace file (malformed JSON is a failed verdict).
TraceVerdict ReplayTraceLine(const std::string& line);

}  // namespace skillgrid::envs
