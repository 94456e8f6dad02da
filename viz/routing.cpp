// Routing snapshots: JSON parsing and writing, skills.json layouts.
#include "viz/routing.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace skillgrid::viz {
namespace {

std::runtime_error Error(const std::string& what) { return std::runtime_error(what); }

// Reads a T x S matrix into m->weights, checking shape against m->task_names.
void ReadMatrix(const nlohmann::json& rows, RoutingMatrix* m) {
  if (!rows.is_array()) throw Error("layer '" + m->layer + "': matrix is not an array of rows");
  if (static_cast<int>(rows.size()) != m->num_tasks()) {
    throw Error("layer '" + m->layer + "' head " + std::to_string(m->head) + ": " +
                std::to_string(rows.size()) + " rows for " + std::to_string(m->num_tasks()) +
                " tasks");
  }
  m->num_skills = rows.empty() ? 0 : static_cast<int>(rows[0].size());
  m->weights.clear();
  for (const auto& row : rows) {
    if (!row.is_array() || static_cast<int>(row.size()) != m->num_skills) {
      throw Error("layer '" + m->layer + "': rows have different lengths");
    }
    for (const auto& v : row) {
      if (!v.is_number()) throw Error("layer '" + m->layer + "': a weight is not a number");
      m->weights.push_back(v.get<float>());
    }
  }
}

}  // namespace

std::vector<std::string> RoutingSnapshot::LayerNames() const {
  std::vector<std::string> names;
  for (const auto& m : matrices) {
    if (names.empty() || names.back() != m.layer) names.push_back(m.layer);
  }
  return names;
}

int RoutingSnapshot::Find(const std::string& layer, int head) const {
  for (size_t i = 0; i < matrices.size(); ++i) {
    if (matrices[i].layer == layer && matrices[i].head == head) return static_cast<int>(i);
  }
  return -1;
}

RoutingSnapshot RoutingSnapshotFromJson(const nlohmann::json& j,
                                        const std::vector<std::string>& default_tasks) {
  if (!j.is_object()) throw Error("routing snapshot is not a JSON object");
  RoutingSnapshot snap;
  for (const char* key : {"frames", "num_frames", "step"}) {
    if (j.contains(key) && j[key].is_number()) {
      snap.frames = j[key].get<int64_t>();
      break;
    }
  }
  std::vector<std::string> tasks = default_tasks;
  for (const char* key : {"tasks", "levels"}) {
    if (j.contains(key) && j[key].is_array()) {
      tasks = j[key].get<std::vector<std::string>>();
      break;
    }
  }
  // The layers: an array of layer objects, or an object mapping layer names to a layer object,
  // a T x S matrix or an h x T x S array; under "layers" or "routing", or the snapshot itself.
  const nlohmann::json* layers = nullptr;
  if (j.contains("layers")) {
    layers = &j["layers"];
  } else if (j.contains("routing")) {
    layers = &j["routing"];
  } else {
    layers = &j;
  }
  std::vector<std::pair<std::string, const nlohmann::json*>> entries;
  if (layers->is_array()) {
    for (const auto& layer : *layers) entries.emplace_back("", &layer);
  } else if (layers->is_object()) {
    for (auto it = layers->begin(); it != layers->end(); ++it) {
      const auto& v = it.value();
      const bool matrix = v.is_array() && !v.empty() && v[0].is_array();
      if (matrix || (v.is_object() && layers != &j)) {
        entries.emplace_back(it.key(), &it.value());
      }
    }
  }
  if (entries.empty()) throw Error("routing snapshot has no layers");
  for (const auto& [key, entry] : entries) {
    const nlohmann::json& layer = *entry;
    RoutingMatrix base;
    base.task_names = tasks;
    const nlohmann::json* data = nullptr;
    bool stacked = false;  // h x T x S
    if (layer.is_object()) {
      base.layer = layer.value("name", key);
      base.router = layer.value("router", "");
      if (layer.contains("tasks")) base.task_names = layer["tasks"].get<std::vector<std::string>>();
      if (layer.contains("heads")) {
        data = &layer["heads"];
        stacked = true;
      } else if (layer.contains("matrix")) {
        data = &layer["matrix"];
      } else {
        throw Error("layer '" + base.layer + "' has neither \"heads\" nor \"matrix\"");
      }
    } else {
      base.layer = key;
      data = &layer;
      stacked = layer.is_array() && !layer.empty() && layer[0].is_array() && !layer[0].empty() &&
                layer[0][0].is_array();
    }
    if (base.layer.empty()) base.layer = "layer" + std::to_string(snap.LayerNames().size());
    if (!data->is_array() || data->empty()) throw Error("layer '" + base.layer + "' is empty");
    const size_t rows = stacked ? (*data)[0].size() : data->size();
    if (base.task_names.empty()) {
      for (size_t t = 0; t < rows; ++t) base.task_names.push_back("task" + std::to_string(t + 1));
    }
    if (stacked) {
      base.num_heads = static_cast<int>(data->size());
      for (size_t h = 0; h < data->size(); ++h) {
        RoutingMatrix m = base;
        m.head = static_cast<int>(h);
        ReadMatrix((*data)[h], &m);
        snap.matrices.push_back(std::move(m));
      }
    } else {
      RoutingMatrix m = base;
      ReadMatrix(*data, &m);
      snap.matrices.push_back(std::move(m));
    }
  }
  return snap;
}

nlohmann::json RoutingSnapshotToJson(const RoutingSnapshot& snapshot) {
  nlohmann::json j;
  if (snapshot.frames >= 0) j["frames"] = snapshot.frames;
  j["tasks"] = snapshot.matrices.empty() ? std::vector<std::string>{}
                                         : snapshot.matrices[0].task_names;
  j["layers"] = nlohmann::json::array();
  for (const auto& name : snapshot.LayerNames()) {
    nlohmann::json layer;
    layer["name"] = name;
    nlohmann::json heads = nlohmann::json::array();
    for (const auto& m : snapshot.matrices) {
      if (m.layer != name) continue;
      if (!m.router.empty()) layer["router"] = m.router;
      nlohmann::json rows = nlohmann::json::array();
      for (int t = 0; t < m.num_tasks(); ++t) {
        rows.push_back(std::vector<float>(m.weights.begin() + t * m.num_skills,
                                          m.weights.begin() + (t + 1) * m.num_skills));
      }
      heads.push_back(std::move(rows));
    }
    layer["heads"] = std::move(heads);
    j["layers"].push_back(std::move(layer));
  }
  return j;
}

std::vector<RoutingSnapshot> LoadRoutingSnapshots(const std::string& path,
                                                  const std::vector<std::string>& default_tasks) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open '" + path + "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::vector<RoutingSnapshot> out;
  try {
    nlohmann::json j;
    bool whole = true;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error&) {
      whole = false;
    }
    if (whole) {
      if (j.is_array()) {
        for (const auto& s : j) out.push_back(RoutingSnapshotFromJson(s, default_tasks));
      } else if (j.is_object() && j.contains("snapshots")) {
        // The trainer's layout: {"levels": [...], "router": ..., "snapshots": [...]}.
        std::vector<std::string> tasks = default_tasks;
        for (const char* key : {"tasks", "levels"}) {
          if (j.contains(key) && j[key].is_array()) tasks = j[key].get<std::vector<std::string>>();
        }
        const std::string router = j.value("router", "");
        for (const auto& s : j["snapshots"]) {
          out.push_back(RoutingSnapshotFromJson(s, tasks));
          for (auto& m : out.back().matrices) {
            if (m.router.empty()) m.router = router;
          }
        }
      } else {
        out.push_back(RoutingSnapshotFromJson(j, default_tasks));
      }
    } else {  // JSON Lines; a torn last line (a snapshot being appended) is skipped
      std::istringstream lines(text);
      std::string line;
      while (std::getline(lines, line)) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        nlohmann::json s;
        try {
          s = nlohmann::json::parse(line);
        } catch (const nlohmann::json::parse_error& e) {
          if (lines.peek() == EOF) break;
          throw Error(std::string("invalid JSON line: ") + e.what());
        }
        out.push_back(RoutingSnapshotFromJson(s, default_tasks));
      }
    }
  } catch (const std::exception& e) {
    throw Error(path + ": " + e.what());
  }
  if (out.empty()) throw Error(path + ": no routing snapshot");
  return out;
}

RoutingSnapshot LoadLatestRoutingSnapshot(const std::string& path,
                                          const std::vector<std::string>& default_tasks) {
  return LoadRoutingSnapshots(path, default_tasks).back();
}

std::string ShortTaskName(const std::string& name) {
  std::string s = name;
  if (s.rfind("BabyAI-", 0) == 0) s = s.substr(7);
  const size_t dash = s.rfind("-v");
  if (dash != std::string::npos && dash + 2 < s.size() &&
      std::all_of(s.begin() + dash + 2, s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    s = s.substr(0, dash);
  }
  return s;
}

std::vector<int> FiringSkills(const RoutingMatrix& m, int task, float fraction) {
  std::vector<int> out;
  if (task < 0 || task >= m.num_tasks() || m.num_skills == 0) return out;
  float max_w = 0.0f;
  for (int s = 0; s < m.num_skills; ++s) max_w = std::max(max_w, m.at(task, s));
  if (max_w <= 0.0f) return out;
  for (int s = 0; s < m.num_skills; ++s) {
    if (m.at(task, s) > 0.0f && m.at(task, s) >= fraction * max_w) out.push_back(s);
  }
  return out;
}

}  // namespace skillgrid::viz
