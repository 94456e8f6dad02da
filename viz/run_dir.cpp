// Run directories.
#include "viz/run_dir.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace skillgrid::viz {
namespace {

namespace fs = std::filesystem;

// Depth-first search for the first value under `key`.
const nlohmann::json* FindKey(const nlohmann::json& j, const std::string& key) {
  if (j.is_object()) {
    auto it = j.find(key);
    if (it != j.end()) return &*it;
    for (const auto& v : j) {
      if (const auto* r = FindKey(v, key)) return r;
    }
  }
  return nullptr;
}

std::vector<std::string> SplitLevels(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string item = s.substr(i, j - i);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) out.push_back(item);
    i = j + 1;
  }
  return out;
}

// The last run of digits in a file name (a step or frame count), or -1.
long long NameNumber(const std::string& name) {
  long long value = -1;
  size_t i = 0;
  while (i < name.size()) {
    if (std::isdigit(static_cast<unsigned char>(name[i]))) {
      size_t j = i;
      while (j < name.size() && std::isdigit(static_cast<unsigned char>(name[j]))) ++j;
      try {
        value = std::stoll(name.substr(i, std::min<size_t>(j - i, 18)));
      } catch (...) {
        value = -1;
      }
      i = j;
    } else {
      ++i;
    }
  }
  return value;
}

}  // namespace

RunInfo ReadRunDir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw std::runtime_error("run directory '" + dir + "' does not exist");
  RunInfo run;
  run.dir = dir;
  const fs::path config_path = fs::path(dir) / "config.json";
  if (fs::exists(config_path, ec)) {
    std::ifstream in(config_path);
    try {
      run.config = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(config_path.string() + " is not valid JSON");
    }
    for (const char* key : {"levels", "tasks"}) {
      if (const auto* v = FindKey(run.config, key)) {
        if (v->is_array()) {
          for (const auto& x : *v) {
            if (x.is_string()) run.levels.push_back(x.get<std::string>());
          }
        } else if (v->is_string()) {
          run.levels = SplitLevels(v->get<std::string>());
        }
        if (!run.levels.empty()) break;
      }
    }
    if (const auto* v = FindKey(run.config, "router"); v && v->is_string()) {
      run.router = v->get<std::string>();
    }
  }
  const fs::path skills = fs::path(dir) / "skills.json";
  if (fs::exists(skills, ec)) run.skills_path = skills.string();
  std::vector<fs::path> found;
  for (const fs::path& d : {fs::path(dir), fs::path(dir) / "checkpoints"}) {
    if (!fs::is_directory(d, ec)) continue;
    for (const auto& e : fs::directory_iterator(d, ec)) {
      if (!e.is_regular_file(ec)) continue;
      const std::string ext = e.path().extension().string();
      if (ext == ".pt" || ext == ".ckpt") found.push_back(e.path());
    }
  }
  std::sort(found.begin(), found.end(), [](const fs::path& a, const fs::path& b) {
    const long long na = NameNumber(a.filename().string()), nb = NameNumber(b.filename().string());
    if (na != nb) return na < nb;
    return a.filename().string() < b.filename().string();
  });
  for (const auto& p : found) run.checkpoints.push_back(p.string());
  return run;
}

std::string LatestCheckpoint(const RunInfo& run) {
  return run.checkpoints.empty() ? std::string() : run.checkpoints.back();
}

}  // namespace skillgrid::viz
