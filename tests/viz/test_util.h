// Helpers of the viz tests: temporary directories, fixture runs, running the CLI.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/cli_util.h"
#include "viz/routing.h"

namespace skillgrid::viz::testing {

/// A fresh directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  /// Creates <tmp>/skillgrid_viz_<name>_<pid>.
  explicit TempDir(const std::string& name) {
    path_ = std::filesystem::temp_directory_path() /
            ("skillgrid_viz_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  /// A path inside the directory.
  std::string operator/(const std::string& leaf) const { return (path_ / leaf).string(); }
  /// The directory.
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

/// Writes `text` to `path`.
inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

/// The known routing snapshot of the fixtures: 3 tasks, layers "actor.0" (2 heads) and
/// "critic.0" (1 head), 4 skills, values chosen to hit distinct colours.
inline RoutingSnapshot FixtureSnapshot(const std::vector<std::string>& tasks) {
  RoutingSnapshot snap;
  snap.frames = 4096;
  const float a[3][4] = {{1.0f, 0.0f, 0.25f, 0.5f}, {0.9f, 0.1f, 0.2f, 0.6f}, {0.0f, 1.0f, 0.75f, 0.1f}};
  const float b[3][4] = {{0.1f, 0.2f, 0.3f, 0.4f}, {0.5f, 0.6f, 0.7f, 0.8f}, {0.9f, 1.0f, 0.0f, 0.05f}};
  const float c[3][4] = {{0.0f, 0.0f, 1.0f, 1.0f}, {0.0f, 1.0f, 0.0f, 1.0f}, {1.0f, 0.0f, 0.0f, 0.0f}};
  auto make = [&](const std::string& layer, int head, int heads, const float (*v)[4]) {
    RoutingMatrix m;
    m.layer = layer;
    m.head = head;
    m.num_heads = heads;
    m.router = "poly";
    m.num_skills = 4;
    for (size_t t = 0; t < tasks.size(); ++t) {
      m.task_names.push_back(tasks[t]);
      for (int s = 0; s < 4; ++s) m.weights.push_back(v[t % 3][s]);
    }
    return m;
  };
  snap.matrices.push_back(make("actor.0", 0, 2, a));
  snap.matrices.push_back(make("actor.0", 1, 2, b));
  snap.matrices.push_back(make("critic.0", 0, 1, c));
  return snap;
}

/// Writes a fixture run: config.json naming `levels` and `router`, and (unless router is
/// "none") skills.json with FixtureSnapshot. Returns the snapshot written.
inline RoutingSnapshot WriteFixtureRun(const std::string& dir, const std::vector<std::string>& levels,
                                       const std::string& router = "poly") {
  nlohmann::json config = {{"levels", levels}, {"agent", {{"router", router}}}};
  WriteFile(dir + "/config.json", config.dump(2));
  RoutingSnapshot snap = FixtureSnapshot(levels);
  if (router != "none") WriteFile(dir + "/skills.json", RoutingSnapshotToJson(snap).dump());
  return snap;
}

using cli_test::CommandResult;
using cli_test::RunCommand;

/// The CLI binary under test.
inline std::string Cli() { return SKILLGRID_CLI; }

}  // namespace skillgrid::viz::testing
