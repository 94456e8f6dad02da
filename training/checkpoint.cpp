#include "training/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include <torch/serialize.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "skills/skill_conv_embedding.h"
#include "training/config.h"

namespace skillgrid::training {

namespace fs = std::filesystem;

std::string CheckpointPath(const std::string& run_dir, int64_t update) {
  char name[64];
  std::snprintf(name, sizeof(name), "ckpt_%08lld.pt", static_cast<long long>(update));
  return (fs::path(run_dir) / "checkpoints" / name).string();
}

std::vector<std::string> ListCheckpoints(const std::string& run_dir) {
  std::vector<std::pair<long long, std::string>> found;
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    long long update = 0;
    char tail[8] = {0};
    if (name.size() == 16 && std::sscanf(name.c_str(), "ckpt_%8lld.%2s", &update, tail) == 2 &&
        std::string(tail) == "pt") {
      found.emplace_back(update, entry.path().string());
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

std::string ResolveCheckpoint(const std::string& source, const std::string& flag) {
  if (std::filesystem::is_directory(source)) {
    const auto checkpoints = ListCheckpoints(source);
    if (checkpoints.empty()) throw RunError(flag + ": run directory " + source + " holds no checkpoint");
    return checkpoints.back();
  }
  if (!std::filesystem::exists(source)) {
    throw RunError(flag + ": " + source + " does not exist (give a run directory or a checkpoint file)");
  }
  return source;
}

void PruneCheckpoints(const std::string& run_dir, int keep) {
  const auto all = ListCheckpoints(run_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) {
    std::error_code ec;
    fs::remove(all[i], ec);
  }
}

void SaveArchiveAtomically(torch::serialize::OutputArchive& archive, const std::string& path) {
  const std::string tmp = path + ".tmp";
  fs::create_directories(fs::path(path).parent_path());
  archive.save_to(tmp);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw RunError("cannot move " + tmp + " to " + path + ": " + ec.message());
}

void WriteJson(torch::serialize::OutputArchive& archive, const std::string& key, const nlohmann::json& j) {
  const std::string text = j.dump();
  at::Tensor t = at::empty({static_cast<int64_t>(text.size())}, at::kByte);
  std::copy(text.begin(), text.end(), reinterpret_cast<char*>(t.data_ptr<uint8_t>()));
  archive.write(key, t);
}

nlohmann::json ReadJson(torch::serialize::InputArchive& archive, const std::string& key) {
  at::Tensor t;
  archive.read(key, t);
  t = t.to(at::kCPU).contiguous();
  const std::string text(reinterpret_cast<const char*>(t.data_ptr<uint8_t>()), static_cast<size_t>(t.numel()));
  return nlohmann::json::parse(text);
}

nlohmann::json ReadCheckpointMeta(const std::string& path) {
  if (!fs::exists(path)) throw RunError("checkpoint " + path + " does not exist");
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path, at::Device(at::kCPU));  // also a CUDA run's checkpoint, on any build
    nlohmann::json meta = ReadJson(archive, "meta_json");
    if (meta.value("format", "") != "skillgrid-checkpoint-1") {
      throw RunError("checkpoint " + path + " is not a skillgrid checkpoint (format '" + meta.value("format", "") + "')");
    }
    return meta;
  } catch (const RunError&) {
    throw;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    msg = msg.substr(0, msg.find('\n'));
    throw RunError("cannot read checkpoint " + path + ": " + msg);
  }
}

void CheckSameArchitecture(const nlohmann::json& checkpoint_model, const agents::ModelOptions& expected,
                           const std::string& checkpoint_path) {
  const nlohmann::json want = expected.ToJson();
  if (checkpoint_model == want) return;
  auto describe = [](const nlohmann::json& m) {
    const auto& r = m.at("routing");
    return m.at("arch").get<std::string>() + " (router " + r.at("router").get<std::string>() + ", " +
           std::to_string(r.at("n_skills").get<int64_t>()) + " " + r.at("inventory").get<std::string>() +
           " skills, " + std::to_string(r.at("n_tasks").get<int64_t>()) + " tasks, memory " +
           std::to_string(m.at("memory_dim").get<int64_t>()) + ")";
  };
  std::string have_desc, want_desc;
  try {
    have_desc = describe(checkpoint_model);
    want_desc = describe(want);
  } catch (const std::exception&) {
    have_desc = checkpoint_model.dump();
    want_desc = want.dump();
  }
  if (have_desc == want_desc) {
    have_desc = checkpoint_model.dump();
    want_desc = want.dump();
  }
  throw RunError("checkpoint " + checkpoint_path + " holds a model of another architecture: " + have_desc +
                 ", but the run asks for " + want_desc);
}

LoadedModel LoadModel(const std::string& checkpoint_path, const std::string& device, const std::string& precision) {
  CheckDeviceAvailable(device);
  LoadedModel out;
  out.meta = ReadCheckpointMeta(checkpoint_path);
  agents::ModelOptions options("small");
  try {
    options = agents::ModelOptions::FromJson(out.meta.at("model"));
    out.model = agents::ActorCritic(options);
  } catch (const std::exception& e) {
    throw RunError("checkpoint " + checkpoint_path + " describes a model this build cannot create: " + e.what());
  }
  // Checkpoints from before --precision existed trained in fp32.
  const nlohmann::json& run_config = out.meta.contains("config") ? out.meta["config"] : nlohmann::json::object();
  const std::string conv_precision = !precision.empty() ? precision : run_config.value("precision", std::string("fp32"));
  CheckPrecision(conv_precision, options.arch());
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(checkpoint_path, at::Device(at::kCPU));  // moved to `device` below
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    out.model->load(model_archive);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    msg = msg.substr(0, msg.find('\n'));
    throw RunError("cannot load the weights of " + checkpoint_path + ": " + msg);
  }
  out.model->SetConvPrecision(skills::ParseConvPrecision(conv_precision));
  out.model->to(at::Device(device));
  out.model->eval();
  return out;
}

}  // namespace skillgrid::training
