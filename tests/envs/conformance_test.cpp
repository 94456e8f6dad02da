// Tests for envs/conformance.cpp: replay verdicts on good and corrupted trace lines.
#include "envs/conformance.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

namespace skillgrid::envs {
namespace {

using nlohmann::json;

std::vector<std::string> TraceLines() {
  std::ifstream in(std::string(SKILLGRID_SHARED_DIR) + "/conformance/babyai_public.jsonl");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

TEST(ConformanceTest, RecordedEpisodesPass) {
  const std::vector<std::string> lines = TraceLines();
  ASSERT_EQ(lines.size(), 574u);
  for (size_t k = 0; k < lines.size(); k += 37) {
    const TraceVerdict v = ReplayTraceLine(lines[k]);
    EXPECT_TRUE(v.passed) << v.Describe();
  }
}

// Corrupted lines fail with a verdict naming the problem; nothing crashes.
TEST(ConformanceTest, CorruptedLinesFailWithAReason) {
  const std::vector<std::string> lines = TraceLines();
  const json base = json::parse(lines[0]);
  struct Case {
    std::function<std::string()> make;
    std::string field;
    std::string in_message;
  };
  auto edit = [&](std::function<void(json&)> f) {
    return [f, base] {
      json e = base;
      f(e);
      return e.dump();
    };
  };
  const std::vector<Case> cases = {
      {[&] { return lines[0].substr(0, lines[0].size() / 2); }, "input", "malformed JSON"},
      {[&] { return std::string("[1, 2, 3]"); }, "input", "JSON object"},
      {edit([](json& e) { e["steps"][2]["action"] = 7; }), "input", "outside 0..6"},
      {edit([](json& e) { e["steps"][2]["action"] = "left"; }), "input", "outside 0..6"},
      {edit([](json& e) { e["initial"]["cells"][4]["color"] = "mauve"; }), "input", "mauve"},
      {edit([](json& e) { e["initial"]["cells"][4]["x"] = 1000; }), "input", "outside"},
      {edit([](json& e) { e["initial"]["mission"] = "go to the red dragon"; }), "input",
       "dragon"},
      {edit([](json& e) { e["initial"]["instr"]["kind"] = "dance"; }), "input", "dance"},
      {edit([](json& e) { e["steps"][1]["image"][5] = 9; }), "", "image[5]"},
      {edit([](json& e) { e["steps"][1]["direction"] = 3 - e["steps"][1]["direction"].get<int>(); }),
       "direction", ""},
      {edit([](json& e) { e["steps"].back()["reward"] = 0.5; }), "reward", ""},
      {edit([](json& e) { e["steps"].back()["truncated"] = !e["steps"].back()["truncated"].get<bool>(); }),
       "truncated", ""},
      {edit([](json& e) { e["initial"].erase("instr"); }), "input", "instr"},
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    const TraceVerdict v = ReplayTraceLine(cases[k].make());
    EXPECT_FALSE(v.passed) << "case " << k;
    if (!cases[k].field.empty()) {
      EXPECT_EQ(v.field, cases[k].field) << "case " << k;
    }
    EXPECT_NE(v.Describe().find(cases[k].in_message), std::string::npos)
        << "case " << k << ": " << v.Describe();
    EXPECT_EQ(v.Describe().find('\n'), std::string::npos);
  }
}

TEST(ConformanceTest, CliPrintsCountsAndExitsNonZeroOnFailure) {
  const std::vector<std::string> lines = TraceLines();
  const std::string path = testing::TempDir() + "/mixed.jsonl";
  {
    std::ofstream out(path);
    out << lines[0] << "\n" << lines[1].substr(0, 100) << "\n" << lines[2] << "\n";
  }
  const std::string cmd = std::string(SKILLGRID_CLI) + " replay --traces " + path + " > " + path +
                          ".out 2>&1";
  const int status = std::system(cmd.c_str());
  EXPECT_NE(status, 0);
  std::ifstream in(path + ".out");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(all.find("2 passed, 1 failed"), std::string::npos) << all;
  EXPECT_NE(all.find("FAIL line 2"), std::string::npos) << all;
}

}  // namespace
}  // namespace skillgrid::envs
