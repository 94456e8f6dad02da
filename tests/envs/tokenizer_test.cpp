// Tests for envs/tokenizer.cpp.
#include "envs/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "envs/state_io.h"

namespace skillgrid::envs {
namespace {

TEST(TokenizerTest, VocabularyIsTheGrammarsWords) {
  EXPECT_EQ(MissionTokenizer::VocabSize(), 33);
  std::set<std::string> words(MissionTokenizer::Words().begin(), MissionTokenizer::Words().end());
  EXPECT_EQ(words.size(), 33u);  // no duplicates
  EXPECT_EQ(MissionTokenizer::WordId("go"), 1);
  EXPECT_EQ(MissionTokenizer::WordId("right"), 32);
  EXPECT_EQ(MissionTokenizer::WordId("<pad>"), -1);
}

TEST(TokenizerTest, EncodesPadsAndDropsTheComma) {
  int32_t ids[10];
  const int n = MissionTokenizer::Encode("open the red door, then go to a ball", ids, 10);
  EXPECT_EQ(n, 9);
  EXPECT_EQ(MissionTokenizer::Decode(ids, 10), "open the red door then go to a ball");
  EXPECT_EQ(ids[9], 0);
  EXPECT_EQ(ids[0], MissionTokenizer::WordId("open"));
}

TEST(TokenizerTest, UnknownWordAndOverflowAreErrors) {
  int32_t ids[4];
  try {
    MissionTokenizer::Encode("go to the pink ball", ids, 4);
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'pink'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(MissionTokenizer::Encode("go to the red ball", ids, 4), InputError);
}

TEST(TokenizerTest, CoversEveryRecordedMission) {
  std::ifstream in(std::string(SKILLGRID_SHARED_DIR) + "/conformance/babyai_public.jsonl");
  ASSERT_TRUE(in.good());
  std::string line;
  int missions = 0;
  while (std::getline(in, line)) {
    const std::string mission = nlohmann::json::parse(line)["initial"]["mission"];
    const std::vector<int32_t> ids = MissionTokenizer::Encode(mission);
    EXPECT_FALSE(ids.empty());
    ++missions;
  }
  EXPECT_EQ(missions, 574);
}

}  // namespace
}  // namespace skillgrid::envs
